"""Local-file uploads (the SDKs' `*Advance` methods) and the proxy's own TLS listener.

An `*Advance` call asks `AuthorizeFileUpload` for an OSS PostObject policy, uploads the file to
`{Bucket}.{Endpoint}`, then names `http://{Bucket}.{Endpoint}/{ObjectKey}` as the image URL. The proxy
answers with `upload_host` as the Endpoint, so `{Bucket}.{upload_host}` must resolve to the proxy (one
wildcard or single-name certificate covers it). The current SDKs upload over HTTPS whatever their protocol:
the proxy terminates TLS itself (`tls_cert_file`/`tls_key_file` on `tls_port`) or a load balancer does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, Field, field_validator, model_validator


class UploadSettings(BaseModel):
    upload_host: str = Field("up.vision.internal", description="host[:port] that AuthorizeFileUpload's "
                             "Endpoint names; {Bucket}.{upload_host} must resolve to the proxy")
    upload_bucket: str = Field("vision-upload", pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
    upload_ttl_seconds: int = Field(1800, ge=1, le=86_400, description="life of an upload policy and of "
                                    "the uploaded object (Aliyun's temporary OSS files last 30 minutes)")
    tls_cert_file: Path | None = None  # PEM chain; re-read when the file changes
    tls_key_file: Path | None = None
    tls_port: int | None = Field(None, ge=0, le=65535, description="where the proxy serves TLS (API and "
                                 "uploads); default 8443 when a certificate is configured")

    @field_validator("upload_host")
    @classmethod
    def _host(cls, host: str) -> str:
        name, _, port = host.lower().partition(":")
        if not name or "/" in host or (port and not port.isdigit()):
            raise ValueError("give host[:port], e.g. up.vision.internal or up.vision.internal:8443")
        return host.lower()

    @model_validator(mode="after")
    def _cert_and_key(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")
        return self

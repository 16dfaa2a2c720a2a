"""Result images and async-job records: the store (local files or S3), URL life, and the job pool."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator


class ResultSettings(BaseModel):
    result_store: Literal["local", "s3"] = "local"
    result_ttl_seconds: int = Field(1800, ge=1, le=604_800, description="result URL life; Aliyun's is 30 min")
    result_cleanup_interval_seconds: float = Field(60.0, gt=0)
    # local: files under data_dir, served at {public_base_url or the caller's scheme://host}/results/<key>
    public_base_url: str | None = None
    data_dir: Path = Path("data")
    result_signing_key: SecretStr | None = None  # unset: a random per-process key (one replica only)
    # s3: credentials from botocore's default chain
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None  # default: aws_region
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"

    # async jobs: a bounded pool; a job not done by its deadline reads TIMEOUT_FAILED
    job_workers: int = Field(2, ge=1)
    job_queue_size: int = Field(100, ge=1)
    job_deadline_seconds: float = Field(300.0, gt=0)
    job_record_ttl_seconds: float = Field(86_400.0, gt=0)

    @field_validator("public_base_url", "s3_endpoint_url")
    @classmethod
    def _base_url(cls, url: str | None) -> str | None:
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError("give scheme://host[:port][/path], with no query or fragment")
        return url.rstrip("/")

    @field_validator("result_signing_key")
    @classmethod
    def _long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value()) < 16:
            raise ValueError("use at least 16 characters (e.g. `openssl rand -base64 32`)")
        return key

    @field_validator("s3_prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        prefix = prefix.strip("/")
        return f"{prefix}/" if prefix else ""

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> Self:
        if self.result_store == "s3" and not self.s3_bucket:
            raise ValueError("result_store is 's3' but s3_bucket (VISION_PROXY_S3_BUCKET) is not set")
        return self

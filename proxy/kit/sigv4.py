"""SigV4 for `execute-api` (and `sagemaker`, for InvokeEndpoint), both ways, with botocore doing the cryptography.

Signing reuses a body hash computed once (API Gateway needs the full payload hash; `UNSIGNED-PAYLOAD`
is refused). Verifying (the local backend's job) rebuilds botocore's canonical request from exactly
the headers the caller says it signed, at the caller's timestamp.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials

SERVICE = "execute-api"  # the default; "sagemaker" signs SageMaker Runtime calls
MAX_SKEW_SECONDS = 300  # API Gateway's clock-skew allowance


class _PrehashedSigV4Auth(SigV4Auth):
    def __init__(self, credentials: Any, service: str, region: str, payload_sha256: str) -> None:
        super().__init__(credentials, service, region)
        self._payload_sha256 = payload_sha256

    def payload(self, request: AWSRequest) -> str:
        return self._payload_sha256


def sign(url: str, body: bytes, body_sha256: str, credentials: ReadOnlyCredentials | Credentials,
         region: str, headers: dict[str, str], host: str | None = None, service: str = SERVICE) -> dict[str, str]:
    """Headers to send, exactly as signed (Host included, so nothing downstream can alter it).

    `host` is the Host to send when it is not `url`'s own: a private API reached through its VPC
    endpoint is signed for the Host API Gateway receives, whatever address the connection goes to.
    """
    request = AWSRequest(method="POST", url=url, data=body, headers={"Host": host or host_header(url), **headers})
    _PrehashedSigV4Auth(credentials, service, region, body_sha256).add_auth(request)
    return dict(request.headers.items())


def host_header(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    default = {"http": ":80", "https": ":443"}.get(parts.scheme, "")
    return host[: -len(default)] if default and host.endswith(default) else host


class SigV4Rejected(Exception):
    """The message mirrors what API Gateway says for a bad or missing signature."""


def verify(method: str, url: str, headers: Any, body_sha256: str, access_key: str, secret_key: str,
           region: str, now: datetime | None = None, service: str = SERVICE) -> None:
    """Raise SigV4Rejected unless the request carries a valid signature for `service` and these keys."""
    auth = headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        raise SigV4Rejected("Missing Authentication Token")
    fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(",") if "=" in p)
    try:
        key_id, day, scope_region, scope_service, terminator = fields["Credential"].split("/")
        signed_names = fields["SignedHeaders"].split(";")
        signature = fields["Signature"]
        timestamp = headers["X-Amz-Date"]
        stamp = datetime.strptime(timestamp, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except (KeyError, ValueError):
        raise SigV4Rejected("Authorization header requires Credential, SignedHeaders and Signature, "
                            "and X-Amz-Date must be present.") from None
    if key_id != access_key:
        raise SigV4Rejected("The security token included in the request is invalid.")
    if (day, scope_region, scope_service, terminator) != (timestamp[:8], region, service, "aws4_request"):
        raise SigV4Rejected(f"Credential should be scoped to a valid region and service '{service}'.")
    if abs(((now or datetime.now(UTC)) - stamp).total_seconds()) > MAX_SKEW_SECONDS:
        raise SigV4Rejected("Signature expired: the request time is outside the allowed skew.")
    if "host" not in signed_names:
        raise SigV4Rejected("'Host' must be a signed header.")
    request = AWSRequest(method=method, url=url,
                         headers={name: ",".join(headers.getall(name, [])) for name in signed_names})
    request.context["timestamp"] = timestamp
    token = headers.get("X-Amz-Security-Token")
    signer = _PrehashedSigV4Auth(Credentials(access_key, secret_key, token), service, region, body_sha256)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if signer.signed_headers(signer.headers_to_sign(request)) != ";".join(signed_names) or \
            not hmac.compare_digest(expected, signature):
        raise SigV4Rejected("The request signature we calculated does not match the signature you "
                            "provided. Check your AWS Secret Access Key and signing method.")

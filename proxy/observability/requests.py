"""Request metrics from each answered request (an Exchange), kept apart from the metric definitions so
that those stay a leaf every layer can import."""

from __future__ import annotations

from ..aliyun.errors import Err
from ..exchange import Exchange
from .metrics import (
    IMAGE_FETCH_FAILURES,
    REQUEST_BYTES,
    REQUEST_SECONDS,
    REQUESTS,
    RESPONSE_BYTES,
    SIGNATURE_CODES,
    SIGNATURE_REJECTIONS,
)

IMAGE_ERRORS = {Err.IMAGE_URL: "url", Err.IMAGE_DOWNLOAD: "download", Err.IMAGE_TIMEOUT: "timeout",
                Err.IMAGE_FORMAT: "format", Err.IMAGE_SIZE: "size", Err.IMAGE_RESOLUTION: "resolution"}


def observe_metrics(ex: Exchange) -> None:
    spec = ex.spec
    product, action, version = (spec.product, spec.action, spec.version) if spec else ("unknown",) * 3
    signature = ex.inbound.signature_kind if ex.inbound else "none"
    code = ex.error.code if ex.error else "OK"
    REQUESTS.labels(product, action, version, signature, code).inc()
    REQUEST_SECONDS.labels(product, action).observe(ex.seconds)
    REQUEST_BYTES.labels(product, action).observe(len(ex.inbound.body) if ex.inbound else 0)
    RESPONSE_BYTES.labels(product, action).observe(len(ex.response.body or b""))  # type: ignore[arg-type]
    if code in SIGNATURE_CODES:
        SIGNATURE_REJECTIONS.labels(code).inc()
    if ex.error and ex.error.kind in IMAGE_ERRORS:
        IMAGE_FETCH_FAILURES.labels(IMAGE_ERRORS[ex.error.kind]).inc()

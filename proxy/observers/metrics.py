"""Request metrics from each answered request (an Exchange). The metric definitions stay apart, in
proxy/observability/metrics.py, a leaf every layer can import."""

from __future__ import annotations

from ..exchange import Exchange
from ..observability.metrics import (
    IMAGE_FETCH_FAILURES,
    REQUEST_BYTES,
    REQUEST_SECONDS,
    REQUESTS,
    RESPONSE_BYTES,
    SIGNATURE_REJECTIONS,
    child,
)


def observe_metrics(ex: Exchange) -> None:
    spec = ex.spec
    product, action, version = (spec.product, spec.action, spec.version) if spec else ("unknown",) * 3
    signature = ex.inbound.signature_kind if ex.inbound else "none"
    code = ex.code or "OK"
    child(REQUESTS, product, action, version, signature, code).inc()
    child(REQUEST_SECONDS, product, action).observe(ex.seconds)
    child(REQUEST_BYTES, product, action).observe(len(ex.inbound.body) if ex.inbound else 0)
    child(RESPONSE_BYTES, product, action).observe(len(ex.body))
    if ex.kind is not None and ex.kind.signature:  # the error table marks authentication failures
        SIGNATURE_REJECTIONS.labels(code).inc()
    if ex.kind is not None and ex.kind.image_kind:  # and which image failure a row reports
        IMAGE_FETCH_FAILURES.labels(ex.kind.image_kind).inc()

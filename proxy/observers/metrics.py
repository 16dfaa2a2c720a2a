"""Request metrics from each answered request (an Exchange). The metric definitions stay apart, in
proxy/observability/metrics.py, a leaf every layer can import."""

from __future__ import annotations

from typing import Any

from ..exchange import Exchange
from ..observability.metrics import (
    IMAGE_FETCH_FAILURES,
    REQUEST_BYTES,
    REQUEST_SECONDS,
    REQUESTS,
    RESPONSE_BYTES,
    SIGNATURE_REJECTIONS,
)

# The label children of one (product, action, version, signature, code), looked up once: `.labels()` costs
# microseconds a call. Label values come from closed sets (proxy/observability/metrics.py), so this stays small.
_children: dict[tuple[str, str, str, str, str], tuple[Any, Any, Any, Any]] = {}


def _bound(key: tuple[str, str, str, str, str]) -> tuple[Any, Any, Any, Any]:
    children = _children.get(key)
    if children is None:
        product, action = key[0], key[1]
        children = _children[key] = (REQUESTS.labels(*key), REQUEST_SECONDS.labels(product, action),
                                     REQUEST_BYTES.labels(product, action), RESPONSE_BYTES.labels(product, action))
    return children


def observe_metrics(ex: Exchange) -> None:
    spec = ex.spec
    product, action, version = (spec.product, spec.action, spec.version) if spec else ("unknown",) * 3
    signature = ex.inbound.signature_kind if ex.inbound else "none"
    code = ex.code or "OK"
    requests, seconds, request_bytes, response_bytes = _bound((product, action, version, signature, code))
    requests.inc()
    seconds.observe(ex.seconds)
    request_bytes.observe(len(ex.inbound.body) if ex.inbound else 0)
    response_bytes.observe(len(ex.body))
    if ex.kind is not None and ex.kind.signature:  # the error table marks authentication failures
        SIGNATURE_REJECTIONS.labels(code).inc()
    if ex.kind is not None and ex.kind.image_kind:  # and which image failure a row reports
        IMAGE_FETCH_FAILURES.labels(ex.kind.image_kind).inc()

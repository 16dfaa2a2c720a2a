"""The payload budget: how many raw image bytes fit in one kit request, and in one kit answer, once base64
and the JSON around them are added. Every number comes from `Settings.kit_limits` (proxy/config/kit.py).

A request's path: the proxy's body `{"img":"<base64>", ...}` must fit API Gateway's body limit, and then,
as the `body` string of the Lambda proxy event (its quotes escaped, plus headers and requestContext), the
Lambda request limit. An answer's path: the handler's JSON, as the `body` string of the Lambda answer
`{"statusCode":..,"headers":{..},"body":".."}`, must fit the Lambda answer limit.
"""

from __future__ import annotations

from ..config import KitLimits

# `{"img":""}` plus room for the short extra fields a route takes (`"scale":4`, `"type":"foreground"`),
# every quote counted twice (escaped as \" inside the event's `body` string).
REQUEST_WRAP_BYTES = 256
# The Lambda answer around the handler's body: statusCode, the kit's three CORS headers (aikits_utils.py
# `lambda_return`), the escaped quotes of `{"result":""}`.
ANSWER_WRAP_BYTES = 1024


def base64_length(raw: int) -> int:
    return 4 * ((raw + 2) // 3)


def _raw_for(base64_room: int) -> int:
    return max(0, base64_room // 4 * 3)


def request_room(limits: KitLimits) -> int:
    """Bytes a request body may have: the gateway's body limit and the Lambda event limit, whichever is less."""
    return min(limits.max_gateway_body_bytes, limits.max_request_bytes - limits.event_overhead_bytes)


def max_image_bytes(limits: KitLimits) -> int:
    """Raw image bytes that fit in one kit request as `{"img": "<base64>"}` (the biggest image to send)."""
    return _raw_for(request_room(limits) - REQUEST_WRAP_BYTES)


def request_fits(body_bytes: int, limits: KitLimits) -> bool:
    """Whether a request body of this many bytes (the JSON the proxy sends) reaches the handler."""
    return body_bytes + 2 * 16 <= request_room(limits)  # a dozen quotes escaped in the event


def max_answer_image_bytes(limits: KitLimits) -> int:
    """Raw bytes of a result image (PNG) that fit in one kit answer as `{"result": "<base64>"}`."""
    return _raw_for(limits.max_response_bytes - ANSWER_WRAP_BYTES)


def answer_read_cap(limits: KitLimits) -> int:
    """The most bytes of a kit answer the proxy reads: the Lambda answer limit plus a margin. More than
    this cannot be a kit answer (the gateway would have said 502): it is never read into memory."""
    return limits.max_response_bytes + limits.answer_margin_bytes

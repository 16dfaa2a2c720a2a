"""The payload budget: how many raw image bytes fit in one kit request once base64 and JSON are added.

The numbers themselves live in `Settings.kit_limits` (defaults: Lambda's 6,291,456-byte request event and
response payload, the tighter of the kit's limits; API Gateway's body limit is 10 MB).
"""

from __future__ import annotations

from typing import Protocol

# The Lambda event around the body (headers, requestContext, the body as an escaped JSON string) and the JSON
# envelope inside it (`{"img":"...","scale":4}`): generous, so a call that fits here fits the kit.
ENVELOPE_BYTES = 16 * 1024


class Limits(Protocol):
    max_request_bytes: int
    max_response_bytes: int


def max_image_bytes(limits: Limits) -> int:
    """Raw image bytes that still fit `limits.max_request_bytes` once base64-encoded (4 bytes per 3) in JSON."""
    return max(0, (limits.max_request_bytes - ENVELOPE_BYTES) // 4 * 3)

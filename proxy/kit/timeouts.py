"""How long one kit call may take: the caller's budget when a caller is waiting, else the kit's own limits.

A sync action's caller gives up at its SDK's read timeout (Tea and aliyun-python-sdk-core: 10 s), so every
kit call made to answer it shares one deadline from the request's arrival (`Settings.kit_timeout_seconds`):
a call that could not finish in time is not started, and no tile outlives the caller. Nobody waits on an
async job's calls (nor on keep-warm or shadow calls), so those get each route's own limit
(`Settings.kit_route_timeouts`): the kit's Lambdas run for at most 19 s (features/lambda/*.ts) behind API
Gateway's 29 s integration timeout, the -ml route is bound by that 29 s too, and SageMaker InvokeEndpoint,
when called directly, gives its container 60 s.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextvars import ContextVar

from ..aliyun.errors import Err

# Monotonic time by which the waiting caller's kit calls must be done; unset outside a caller's request (the
# job workers and the keep-warm task start with their own context, so they never see a caller's deadline).
CALLER_DEADLINE: ContextVar[float | None] = ContextVar("kit_caller_deadline", default=None)
MIN_CALL_SECONDS = 0.2  # less than this left: answer Timeout now rather than start a call bound to be cut


def caller_waits(seconds: float) -> None:
    """Called as a request arrives: its kit calls must finish within `seconds`."""
    CALLER_DEADLINE.set(time.monotonic() + seconds)


def call_timeout(route: str, route_limits: Mapping[str, float], default: float) -> float:
    """Seconds for the next call on `route`: what is left of the caller's budget, capped by the route's limit."""
    limit = route_limits.get(route, default)
    deadline = CALLER_DEADLINE.get()
    if deadline is None:
        return limit
    left = deadline - time.monotonic()
    if left < MIN_CALL_SECONDS:
        raise Err.TIMEOUT()
    return min(left, limit)

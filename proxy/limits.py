"""Per-caller limits: one noisy AccessKeyId must not take every kit call (a SageMaker endpoint is sized
for everyone's traffic together).

Each caller gets a token bucket (`qps` a second, bursts of up to max(1, qps)) and a count of its requests
being answered (`concurrency`). Beyond either it alone is answered 400 `Throttling.User`, Aliyun's code for
user flow control, with `x-acs-retry-after` (tea-openapi then raises ThrottlingException carrying it);
others go on. Checked after authentication, so only configured AccessKeyIds (a bounded set) have state,
and a forged request cannot spend a caller's budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .aliyun.errors import AliyunError, Err
from .config import CallerLimit, Settings
from .observability import metrics


@dataclass
class _Caller:
    limit: CallerLimit
    tokens: float
    updated: float
    inflight: int = 0


@dataclass
class Admission:
    """One admitted request; `release` when it is answered."""

    caller: _Caller
    released: bool = field(default=False)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.caller.inflight -= 1


class CallerLimits:
    def __init__(self, default: CallerLimit, per_caller: dict[str, CallerLimit],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.default = default
        self.per_caller = per_caller
        self.clock = clock
        self._callers: dict[str, _Caller] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> CallerLimits:
        return cls(CallerLimit(qps=settings.caller_qps, concurrency=settings.caller_concurrency),
                   settings.caller_limits)

    def _limit(self, key_id: str) -> CallerLimit:
        own = self.per_caller.get(key_id)
        if own is None:
            return self.default
        return CallerLimit(qps=own.qps or self.default.qps, concurrency=own.concurrency or self.default.concurrency)

    def admit(self, key_id: str | None) -> Admission | None:
        """Admit one request of `key_id` or raise Throttling.User; None (no limits, or no caller: open mode)."""
        if key_id is None:
            return None
        state = self._callers.get(key_id)
        if state is None:
            limit = self._limit(key_id)
            if limit.qps is None and limit.concurrency is None:
                return None
            state = self._callers[key_id] = _Caller(limit, _burst(limit), self.clock())
        limit = state.limit
        if limit.concurrency is not None and state.inflight >= limit.concurrency:
            raise _throttled("concurrency", 1)
        if limit.qps is not None:
            now = self.clock()
            state.tokens = min(_burst(limit), state.tokens + (now - state.updated) * limit.qps)
            state.updated = now
            if state.tokens < 1:
                raise _throttled("qps", math.ceil((1 - state.tokens) / limit.qps))
            state.tokens -= 1
        state.inflight += 1
        return Admission(state)


def _burst(limit: CallerLimit) -> float:
    return max(1.0, limit.qps or 0.0)


def _throttled(which: str, retry_after: int) -> AliyunError:
    metrics.CALLER_THROTTLED.labels(which).inc()
    return Err.THROTTLING_USER(headers={"x-acs-retry-after": str(max(1, retry_after))})

"""Replay protection: each (AccessKeyId, nonce) is accepted once while its timestamp is in the window.

One replica keeps nonces in memory (`MemoryNonceStore`). Several replicas behind one load balancer must
share them, or a request replayed to another replica is accepted there: `RedisNonceStore` claims each
nonce with one atomic `SET key 1 NX PX <ms>` that expires when the memory store would forget it.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from typing import Protocol

import structlog

from ..observability import metrics
from .errors import Err
from .nonce_memory import MemoryNonceStore

log = structlog.get_logger("nonces")


class NonceStore(Protocol):
    async def claim(self, key: str, until: float) -> bool:
        """Record `key` until the epoch time `until`; False when it is already recorded."""
        ...

    async def close(self) -> None:
        """Release connections; called once when the proxy stops."""
        ...


class RedisNonceStore:
    """Nonces shared by every replica through Redis.

    The expiry is relative (`PX`), computed from the proxy's own clock exactly as the memory store's
    `until`, so a Redis server whose clock drifts cannot shorten the replay window. Redis sits on every
    request's path, so a call is bounded by `timeout` (connect and reply) and retried once, only when a
    pooled connection turns out to be closed.
    When Redis fails the request is refused with ServiceUnavailable (fail closed); with `fail_open` it is
    accepted, which lets replays through for as long as Redis is down: both are logged and counted in
    `vision_proxy_nonce_store_errors_total`.
    """

    def __init__(self, url: str, timeout: float, fail_open: bool = False,
                 prefix: str = "vision-proxy:nonce:") -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        self.timeout = timeout
        self.fail_open = fail_open
        self.prefix = prefix
        # One immediate retry on a dropped connection only: after a Redis restart or failover each pooled
        # connection fails once, and that costs no waiting. Timeouts are not retried.
        retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
        self._redis = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=retry,
                                     retry_on_error=[RedisConnectionError], health_check_interval=30)

    def _key(self, key: str) -> str:
        # Callers choose nonces: hashing bounds the key's length and keeps odd bytes out of Redis keys.
        return self.prefix + hashlib.sha256(key.encode()).hexdigest()

    async def claim(self, key: str, until: float) -> bool:
        ttl_ms = max(1, math.ceil((until - time.time()) * 1000))
        try:
            async with asyncio.timeout(2 * self.timeout):  # connect + reply, whatever the pool does
                created = await self._redis.set(self._key(key), b"1", nx=True, px=ttl_ms)
        except Exception as exc:  # redis-py raises many kinds (ConnectionError, TimeoutError, ResponseError...)
            return self._failed(exc)
        return bool(created)

    def _failed(self, exc: BaseException) -> bool:
        outcome = "accepted" if self.fail_open else "refused"
        metrics.NONCE_STORE_ERRORS.labels(outcome).inc()
        log.error("nonces.redis_failed", error=type(exc).__name__, message=str(exc)[:200], outcome=outcome)
        if self.fail_open:
            log.warning("nonces.fail_open", warning="REPLAY PROTECTION IS OFF while Redis fails: this request "
                        "was accepted without a nonce check (redis_fail_open)")
            return True
        raise Err.SERVICE_UNAVAILABLE() from None

    async def ping(self) -> bool:
        """Whether Redis answers now; start-up logs it (a Redis outage must not stop the proxy starting)."""
        try:
            async with asyncio.timeout(2 * self.timeout):
                return bool(await self._redis.ping())
        except Exception:
            return False

    async def close(self) -> None:
        await self._redis.aclose()


async def open_nonce_store(redis_url: str | None, timeout: float, fail_open: bool, max_entries: int,
                           prefix: str = "vision-proxy:nonce:") -> NonceStore:
    """Redis when a URL is configured (several replicas), else the bounded in-memory store."""
    if not redis_url:
        return MemoryNonceStore(max_entries)
    store = RedisNonceStore(redis_url, timeout, fail_open, prefix)
    if await store.ping():
        log.info("nonces.store", kind="redis", fail_open=fail_open, timeout_seconds=timeout)
    else:
        log.error("nonces.store_unreachable", kind="redis", fail_open=fail_open,
                  consequence="requests are accepted without replay protection" if fail_open
                  else "requests are refused with ServiceUnavailable until Redis answers")
    return store

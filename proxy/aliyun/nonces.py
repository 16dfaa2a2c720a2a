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
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from ..observability import metrics
from .errors import Err
from .nonce_memory import MemoryNonceStore

if TYPE_CHECKING:
    from ..config import Settings

log = structlog.get_logger("nonces")


class NonceStore(Protocol):
    async def claim(self, key: str, until: float) -> bool:
        """Record `key` until the epoch time `until`; False when it is already recorded."""
        ...

    async def close(self) -> None:
        """Release connections; called once when the proxy stops."""
        ...


# The stage a claim fails in, per task: connecting, or awaiting Redis's reply (both Redis or the network);
# waiting for a free pooled connection is the third, this process's own.
_stage: ContextVar[str] = ContextVar("nonce_stage", default="command")


class _StagedPool(ConnectionPool):
    """redis-py's pool, noting whether a claim is (re)connecting or already waiting for Redis's reply."""

    async def ensure_connection(self, connection: Any) -> None:
        _stage.set("connect")
        await super().ensure_connection(connection)
        _stage.set("command")


class RedisNonceStore:
    """Nonces shared by every replica through Redis.

    The expiry is relative (`PX`), computed from the proxy's own clock exactly as the memory store's
    `until`, so a Redis server whose clock drifts cannot shorten the replay window.

    Redis sits on every request's path, so connections come from a bounded pool that callers wait on, opened
    ahead at start-up and again after Redis dropped them (`warm`): a burst then queues for a few live
    connections instead of opening one each under a short connect timeout, which a busy process misses.
    Connecting and each reply have their own timeouts; a claim as a whole (pool wait included) is bounded by
    `budget`. A dropped pooled connection is retried once, at once; timeouts are not retried.
    When Redis cannot answer within the budget the request is refused with ServiceUnavailable (fail closed);
    with `fail_open` it is accepted, which lets replays through for as long as Redis is down: both are
    logged and counted in `vision_proxy_nonce_store_errors_total` by stage.
    """

    def __init__(self, url: str, *, connect_timeout: float, command_timeout: float, budget: float,
                 pool_size: int, fail_open: bool = False, prefix: str = "vision-proxy:nonce:") -> None:
        self.budget = budget
        self.pool_size = pool_size
        self.fail_open = fail_open
        self.prefix = prefix
        self._warming: asyncio.Task[bool] | None = None
        # Callers wait here for one of `pool_size` connections (an asyncio semaphore rather than redis-py's
        # BlockingConnectionPool, whose Condition can lose a budget's cancellation on Python 3.11).
        self._slots = asyncio.Semaphore(pool_size)
        retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
        pool = _StagedPool.from_url(url, max_connections=pool_size, socket_timeout=command_timeout,
                                    socket_connect_timeout=connect_timeout, retry=retry,
                                    retry_on_error=[RedisConnectionError], health_check_interval=30)
        self._redis = Redis.from_pool(pool)

    def _key(self, key: str) -> str:
        # Callers choose nonces: hashing bounds the key's length and keeps odd bytes out of Redis keys.
        return self.prefix + hashlib.sha256(key.encode()).hexdigest()

    async def claim(self, key: str, until: float) -> bool:
        ttl_ms = max(1, math.ceil((until - time.time()) * 1000))
        stage = "pool"
        try:
            async with asyncio.timeout(self.budget):
                waited = time.perf_counter()
                async with self._slots:
                    metrics.NONCE_POOL_WAIT.observe(time.perf_counter() - waited)
                    stage = "command"
                    _stage.set(stage)
                    created = await self._redis.set(self._key(key), b"1", nx=True, px=ttl_ms)
        except Exception as exc:  # redis-py raises many kinds (ConnectionError, TimeoutError, ResponseError...)
            return self._failed(exc, stage if stage == "pool" else _stage.get())
        return bool(created)

    def _failed(self, exc: BaseException, stage: str) -> bool:
        outcome = "accepted" if self.fail_open else "refused"
        metrics.NONCE_STORE_ERRORS.labels(outcome, stage).inc()
        log.error("nonces.redis_failed", error=type(exc).__name__, message=str(exc)[:200], stage=stage,
                  outcome=outcome)
        if stage != "pool" and self._warming is None:  # Redis dropped or refused us: reopen the pool ahead
            self._warming = asyncio.create_task(self.warm())
            self._warming.add_done_callback(self._warmed)
        if self.fail_open:
            log.warning("nonces.fail_open", warning="REPLAY PROTECTION IS OFF while Redis fails: this request "
                        "was accepted without a nonce check (redis_fail_open)")
            return True
        raise Err.SERVICE_UNAVAILABLE() from None

    def _warmed(self, task: asyncio.Task[bool]) -> None:
        self._warming = None

    async def warm(self) -> bool:
        """Open every pooled connection now (at start-up, after an outage); whether Redis answered.
        A Redis outage must not stop the proxy starting, so this never raises."""
        pool = self._redis.connection_pool

        async def one() -> None:
            async with self._slots:
                await pool.release(await pool.get_connection())

        try:
            async with asyncio.timeout(self.budget):
                opened = await asyncio.gather(*(one() for _ in range(self.pool_size)), return_exceptions=True)
                async with self._slots:
                    answered = bool(await self._redis.ping())
        except Exception:
            return False
        return answered and not any(isinstance(result, BaseException) for result in opened)

    async def close(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
        await self._redis.aclose()  # from_pool: closes the pool too


async def open_nonce_store(settings: Settings) -> NonceStore:
    """Redis when a URL is configured (several replicas), else the bounded in-memory store."""
    if settings.redis_url is None:
        return MemoryNonceStore(settings.nonce_cache_size)
    store = RedisNonceStore(settings.redis_url.get_secret_value(),
                            connect_timeout=settings.redis_connect_timeout_seconds,
                            command_timeout=settings.redis_command_timeout_seconds,
                            budget=settings.redis_budget_seconds, pool_size=settings.redis_pool_size,
                            fail_open=settings.redis_fail_open, prefix=settings.redis_key_prefix)
    if await store.warm():
        log.info("nonces.store", kind="redis", fail_open=store.fail_open, pool_size=store.pool_size,
                 budget_seconds=store.budget)
    else:
        log.error("nonces.store_unreachable", kind="redis", fail_open=store.fail_open,
                  consequence="requests are accepted without replay protection" if store.fail_open
                  else "requests are refused with ServiceUnavailable until Redis answers")
    return store

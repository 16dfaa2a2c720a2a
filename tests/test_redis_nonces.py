"""The Redis nonce store against a real redis-server: atomic claims, the memory store's expiry, bounded
latency, fail-closed (and the documented fail-open risk), and recovery after an outage, through the proxy."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator

import aiohttp
import pytest
from redis.asyncio import Redis

from proxy.aliyun.errors import AliyunError
from proxy.aliyun.nonces import RedisNonceStore
from proxy.config import load_settings
from tests import raw
from tests.conftest import CALLER_KEYS
from tests.harness import ProxyServer, metric_value
from tests.redisserver import RedisServer, running_redis


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


def errors(outcome: str) -> float:
    """Failures counted with this outcome, whatever their stage."""
    return metric_value("vision_proxy_nonce_store_errors_total", outcome=outcome)


def store_for(url: str, fail_open: bool = False, prefix: str = "vision-proxy:nonce:") -> RedisNonceStore:
    """A store with the proxy's default pool and timeouts, as `open_nonce_store` builds it."""
    s = load_settings(None)
    return RedisNonceStore(url, connect_timeout=s.redis_connect_timeout_seconds,
                           command_timeout=s.redis_command_timeout_seconds, budget=s.redis_budget_seconds,
                           pool_size=s.redis_pool_size, fail_open=fail_open, prefix=prefix)


async def test_claim_once_atomically_with_the_memory_stores_expiry(redis_server):
    store = store_for(redis_server.url, prefix="t1:")
    try:
        key = f"testid\n{uuid.uuid4().hex}"
        until = time.time() + 900
        assert await store.claim(key, until) is True
        assert await store.claim(key, until) is False
        # 50 replicas racing for one new nonce: exactly one wins (SET NX is atomic in Redis).
        racing = f"testid\n{uuid.uuid4().hex}"
        wins = await asyncio.gather(*(store.claim(racing, until) for _ in range(50)))
        assert wins.count(True) == 1
        async with Redis.from_url(redis_server.url) as probe:
            ttl_ms = await probe.pttl(store._key(key))
        assert 899_000 < ttl_ms <= 900_000  # forgotten exactly when the timestamp leaves the window
        short = f"testid\n{uuid.uuid4().hex}"
        assert await store.claim(short, time.time() + 0.3) is True
        await asyncio.sleep(0.5)
        assert await store.claim(short, time.time() + 0.3) is True  # expired, as the memory store forgets it
    finally:
        await store.close()


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A port that accepts TCP connections and never answers: a hung Redis."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


@pytest.fixture
def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


@pytest.mark.parametrize("outage", ["refused", "hung"])
async def test_unreachable_redis_fails_closed_fast(outage, request):
    url = request.getfixturevalue("closed_port" if outage == "refused" else "black_hole")
    store = RedisNonceStore(url, connect_timeout=0.2, command_timeout=0.2, budget=0.4, pool_size=4)
    before = errors("refused")
    try:
        started = time.perf_counter()
        with pytest.raises(AliyunError) as exc:
            await store.claim("testid\nn1", time.time() + 900)
        elapsed = time.perf_counter() - started
    finally:
        await store.close()
    assert (exc.value.code, exc.value.status) == ("ServiceUnavailable", 503)
    assert elapsed < 0.6, elapsed  # bounded by the budget: no retries, no backoff
    assert errors("refused") == before + 1


async def test_a_full_pool_is_counted_apart_from_redis_failures(black_hole):
    """Two claims hold both connections to a hung Redis and fail there (connect or command); a third,
    with a shorter budget, never gets a connection and says so (stage pool), so an operator can tell a
    small pool from a sick Redis."""
    store = RedisNonceStore(black_hole, connect_timeout=5, command_timeout=5, budget=1.5, pool_size=2)
    before = {stage: metric_value("vision_proxy_nonce_store_errors_total", outcome="refused", stage=stage)
              for stage in ("pool", "connect", "command")}
    try:
        holders = [asyncio.create_task(store.claim(f"testid\nn{i}", time.time() + 900)) for i in range(2)]
        await asyncio.sleep(0.1)
        store.budget = 0.2
        with pytest.raises(AliyunError) as third:
            await store.claim("testid\nn3", time.time() + 900)
        outcomes = await asyncio.gather(*holders, return_exceptions=True)
    finally:
        await store.close()
    assert third.value.code == "ServiceUnavailable"
    assert all(isinstance(o, AliyunError) and o.code == "ServiceUnavailable" for o in outcomes), outcomes
    after = {stage: metric_value("vision_proxy_nonce_store_errors_total", outcome="refused", stage=stage)
             for stage in before}
    grew = {stage: after[stage] - before[stage] for stage in before}
    # redis-py sends CLIENT SETINFO on connect, so a hung Redis may hang in `connect` rather than `command`.
    assert grew["pool"] == 1 and grew["connect"] + grew["command"] == 2, grew


async def test_fail_open_accepts_and_counts(closed_port):
    store = store_for(closed_port, fail_open=True)
    before = errors("accepted")
    try:
        assert await store.claim("testid\nn1", time.time() + 900) is True
        assert await store.claim("testid\nn1", time.time() + 900) is True  # the documented risk: a replay passes
    finally:
        await store.close()
    assert errors("accepted") == before + 2


def unknown_job(nonce: str | None = None) -> dict[str, str]:
    """A cheap signed request: authentication (nonce included) passes, then the JobId is unknown."""
    return raw.v1_params("GetAsyncJobResult", "2019-12-30", {"JobId": "NO-SUCH-JOB"}, nonce=nonce)


def outcome(port: int, params: dict[str, str]) -> str:
    status, body = raw.post_v1(port, params)
    return str(body["Code"]) if status != 200 else "OK"


def test_outage_and_recovery_through_the_proxy(tmp_path):
    """Two in-process replicas share Redis; Redis stops (ServiceUnavailable, fast), then comes back."""
    with running_redis(tmp_path) as redis_server:
        settings = {"caller_keys": CALLER_KEYS, "redis_url": redis_server.url, "data_dir": tmp_path / "data"}
        with ProxyServer(**settings) as a, ProxyServer(**settings) as b:
            params = unknown_job()
            assert outcome(a.port, params) == "InvalidParameter.JobId"  # passed authentication on A
            assert outcome(b.port, params) == "SignatureNonceUsed"  # the same request replayed to B
            redis_server.stop()
            started = time.perf_counter()
            assert outcome(a.port, unknown_job()) == "ServiceUnavailable"
            assert time.perf_counter() - started < 1.0
            redis_server.start()  # same port: the client reconnects on its own
            fresh = unknown_job()
            assert outcome(b.port, fresh) == "InvalidParameter.JobId"
            assert outcome(a.port, fresh) == "SignatureNonceUsed"


def test_fail_open_proxy_accepts_replays_while_redis_is_down(tmp_path, closed_port):
    with ProxyServer(caller_keys=CALLER_KEYS, redis_url=closed_port, redis_fail_open=True,
                     data_dir=tmp_path) as proxy:
        params = unknown_job()
        assert outcome(proxy.port, params) == "InvalidParameter.JobId"
        assert outcome(proxy.port, params) == "InvalidParameter.JobId"  # replay accepted: the risk taken


def pool_waits() -> float:
    return metric_value("vision_proxy_nonce_store_pool_wait_seconds_count")


async def burst(port: int, count: int) -> list[str]:
    """`count` signed requests at once, each with its own nonce; the Code (or OK) of each answer."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one() -> str:
            async with session.post(f"http://127.0.0.1:{port}/", data=unknown_job()) as response:
                body = await response.json(content_type=None)
                return str(body.get("Code", "OK"))

        return await asyncio.gather(*(one() for _ in range(count)))


def test_a_burst_through_the_proxy_waits_for_the_pool_and_none_is_refused(redis_server, tmp_path):
    """200 callers at once, against a small pool: each waits for a connection, none is refused."""
    with ProxyServer(caller_keys=CALLER_KEYS, redis_url=redis_server.url, redis_pool_size=4,
                     data_dir=tmp_path) as proxy:
        refused, waits = errors("refused"), pool_waits()
        codes = asyncio.run(burst(proxy.port, 200))
    assert codes.count("InvalidParameter.JobId") == 200, {c: codes.count(c) for c in set(codes)}
    assert errors("refused") == refused
    assert pool_waits() >= waits + 200  # every claim went through the bounded pool

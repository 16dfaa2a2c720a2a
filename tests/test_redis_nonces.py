"""The Redis nonce store against a real redis-server: atomic claims, the memory store's expiry, bounded
latency, fail-closed (and the documented fail-open risk), and recovery after an outage, through the proxy."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from proxy.aliyun.errors import AliyunError
from proxy.aliyun.nonces import RedisNonceStore
from proxy.observability import metrics
from tests import raw
from tests.conftest import CALLER_KEYS
from tests.harness import ProxyServer
from tests.redisserver import RedisServer, running_redis


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


def errors(outcome: str) -> float:
    return metrics.NONCE_STORE_ERRORS.labels(outcome)._value.get()


async def test_claim_once_atomically_with_the_memory_stores_expiry(redis_server):
    store = RedisNonceStore(redis_server.url, timeout=0.2, prefix="t1:")
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
    store = RedisNonceStore(url, timeout=0.2)
    before = errors("refused")
    try:
        started = time.perf_counter()
        with pytest.raises(AliyunError) as exc:
            await store.claim("testid\nn1", time.time() + 900)
        elapsed = time.perf_counter() - started
    finally:
        await store.close()
    assert (exc.value.code, exc.value.status) == ("ServiceUnavailable", 503)
    assert elapsed < 0.6, elapsed  # bounded by the timeout: no retries, no backoff
    assert errors("refused") == before + 1


async def test_fail_open_accepts_and_counts(closed_port):
    store = RedisNonceStore(closed_port, timeout=0.2, fail_open=True)
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
        a, b = (ProxyServer(caller_keys=CALLER_KEYS, redis_url=redis_server.url, data_dir=tmp_path / "data")
                for _ in range(2))
        try:
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
        finally:
            a.close()
            b.close()


def test_fail_open_proxy_accepts_replays_while_redis_is_down(tmp_path, closed_port):
    proxy = ProxyServer(caller_keys=CALLER_KEYS, redis_url=closed_port, redis_fail_open=True,
                        data_dir=tmp_path)
    try:
        params = unknown_job()
        assert outcome(proxy.port, params) == "InvalidParameter.JobId"
        assert outcome(proxy.port, params) == "InvalidParameter.JobId"  # replay accepted: the risk taken
    finally:
        proxy.close()

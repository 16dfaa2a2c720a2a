"""The in-memory replay store: refuses replays, forgets only expired nonces, and holds a full window at a
replica's full throughput (fake clock: a whole 15-minute window runs in seconds, nothing is timed)."""

from __future__ import annotations

import asyncio

import pytest

from proxy.aliyun.errors import AliyunError
from proxy.aliyun.nonce_memory import FREEZE, MemoryNonceStore
from proxy.config import Settings
from tests.harness import metric_value

WINDOW = 900


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def fill() -> float:
    return metric_value("vision_proxy_nonce_store_fill_ratio")


def test_replays_refused_until_expiry_across_merges():
    clock = Clock()
    store = MemoryNonceStore(10_000, clock)

    async def run() -> None:
        assert await store.claim("k\nfirst", clock.now + WINDOW)
        for i in range(FREEZE + 10):  # forces a merge into the sorted run
            assert await store.claim(f"k\n{i}", clock.now + WINDOW)
        assert not await store.claim("k\nfirst", clock.now + WINDOW)
        assert not await store.claim("k\n5", clock.now + 1)  # another timestamp, same nonce: still a replay
        assert await store.claim("other-key\nfirst", clock.now + WINDOW)  # nonces are per AccessKeyId
        clock.now += WINDOW + 1
        assert await store.claim("k\nfirst", clock.now + WINDOW)  # its timestamp left the window: forgotten
        clock.now += 11  # a merge drops everything expired
        await store.claim("k\ntrigger", clock.now + WINDOW)
        assert len(store) <= 3

    asyncio.run(run())


def test_full_store_refuses_rather_than_forgets():
    clock = Clock()
    store = MemoryNonceStore(100, clock)

    async def run() -> None:
        for i in range(100):
            assert await store.claim(f"k\n{i}", clock.now + WINDOW)
        with pytest.raises(AliyunError) as exc:
            await store.claim("k\nlast", clock.now + WINDOW)
        assert exc.value.code == "ServiceUnavailable"
        assert fill() == 1
        assert not await store.claim("k\n0", clock.now + WINDOW)  # still remembered

    asyncio.run(run())


@pytest.mark.parametrize("rate", [1000])
def test_default_store_holds_a_full_window_at_full_throughput(rate):
    """One replica serves 450-800 req/s (python -m bench): the default store holds 15 minutes of it."""
    clock = Clock()
    store = MemoryNonceStore(Settings().nonce_cache_size, clock)
    claims = rate * (WINDOW + 60)  # a full window, then a minute of steady state with expiry running

    async def run() -> None:
        for i in range(claims):
            clock.now += 1 / rate
            assert await store.claim(f"LTAI5t{i % 50}\n{i:032x}", clock.now + WINDOW), i
        assert 0.3 < fill() < 0.8
        assert len(store) <= rate * (WINDOW + 11)  # expired nonces left memory
        for i in (claims - 1, claims - rate * (WINDOW - 10)):  # the newest and one 14.8 minutes old
            assert not await store.claim(f"LTAI5t{i % 50}\n{i:032x}", clock.now + WINDOW)

    asyncio.run(run())

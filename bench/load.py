"""The load generator: sequential latency and fixed-concurrency throughput, baseline and proxy side by side."""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import aiohttp


@dataclass(frozen=True, eq=False)  # hashed by identity: used as a dict key
class Target:
    """One scenario's request aimed at one server (baseline or proxy)."""

    url: str
    body: bytes
    headers: dict[str, str]
    signed: Iterator[tuple[str, dict[str, str]]] | None = None  # each request's own (URL, headers), if signed


async def send(session: aiohttp.ClientSession, target: Target) -> bytes:
    """One request; anything but 200 stops the run, since a failing request would flatter the numbers."""
    url, headers = next(target.signed) if target.signed is not None else (target.url, target.headers)
    async with session.post(url, data=target.body, headers=headers) as resp:
        body = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{url} answered {resp.status}: {body[:300]!r}")
        return body


async def latencies(session: aiohttp.ClientSession, base: Target, proxy: Target, warmup: int, count: int
                    ) -> tuple[list[float], list[float], list[tuple[float, float]]]:
    """Milliseconds per request, the two sides interleaved (order alternating) so drift hits both alike;
    and the (start, end) CLOCK_MONOTONIC window of each timed proxy request."""
    for _ in range(warmup):
        await send(session, base)
        await send(session, proxy)
    times: dict[Target, list[float]] = {base: [], proxy: []}
    windows = []
    for i in range(count):
        for target in (base, proxy) if i % 2 == 0 else (proxy, base):
            started, at = time.perf_counter(), time.monotonic()
            await send(session, target)
            times[target].append((time.perf_counter() - started) * 1000)
            if target is proxy:
                windows.append((at, time.monotonic()))
    return times[base], times[proxy], windows


async def _burst(session: aiohttp.ClientSession, target: Target, concurrency: int, seconds: float,
                 max_requests: int) -> tuple[int, float]:
    """Requests completed and seconds taken by `concurrency` workers, bounded by count and by time."""
    deadline = time.perf_counter() + seconds
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while issued < max_requests and time.perf_counter() < deadline:
            issued += 1
            await send(session, target)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return issued, time.perf_counter() - started


@dataclass
class Side:
    """One side's throughput-test totals: requests, seconds, the server's own CPU seconds, and the
    (start, end) CLOCK_MONOTONIC windows its bursts ran in."""

    requests: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    windows: list[tuple[float, float]] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu * 1000 / self.requests


async def throughputs(session: aiohttp.ClientSession, targets: dict[Target, Callable[[], float]],
                      concurrency: int, seconds: float, max_requests: int) -> dict[Target, Side]:
    """Each side's totals, run as base-proxy-proxy-base halves so a linear drift cancels out. `targets`
    maps base and proxy (in that order) to a reader of their server's CPU seconds."""
    base, proxy = targets
    sides = {base: Side(), proxy: Side()}
    for target in (base, proxy, proxy, base):
        cpu_before, started = targets[target](), time.monotonic()
        n, s = await _burst(session, target, concurrency, seconds / 2, max_requests // 2)
        side = sides[target]
        side.cpu += targets[target]() - cpu_before
        side.windows.append((started, time.monotonic()))
        side.requests += n
        side.seconds += s
    return sides


def p50(ms: list[float]) -> float:
    return statistics.median(ms)


def p95(ms: list[float]) -> float:
    """Nearest-rank 95th percentile (no interpolation: with few samples it is an observed value)."""
    return sorted(ms)[math.ceil(0.95 * len(ms)) - 1]


def p99(ms: list[float]) -> float:
    """Nearest-rank 99th percentile (with under 100 samples: the largest)."""
    return sorted(ms)[math.ceil(0.99 * len(ms)) - 1] if ms else float("nan")

"""The image pool's size (proxy/workers.py): the setting when set, else one fewer than the usable cores,
where a cgroup v2 CPU quota (cpu.max's text, given here as input) caps the CPU affinity."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time

import pytest

from proxy import workers
from proxy.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def default_pool():
    """Later tests in this process get the default pool back."""
    yield
    workers.shutdown()
    workers.configure(0)


@pytest.mark.parametrize(("setting", "affinity", "cpu_max", "size"), [
    (0, 2, None, 1),  # this machine's shape: the loop keeps one of two cores
    (0, 1, None, 1),  # never zero threads
    (0, 8, "max 100000\n", 7),  # a cgroup without a quota
    (0, 64, "200000 100000\n", 1),  # an EKS pod with a 2-CPU limit on a 64-core node
    (0, 64, "400000 100000\n", 3),
    (0, 64, "150000 100000\n", 1),  # 1.5 cores: one whole core, and still at least one thread
    (0, 64, "350000 100000\n", 2),  # 3.5 cores count as 3: a thread beyond the quota gets the pod throttled
    (0, 2, "800000 100000\n", 1),  # the affinity is the cap when it is lower than the quota
    (0, 4, "", 3),  # an empty or unreadable file: no quota
    (0, 4, "garbage 100000", 3),
    (3, 2, None, 3),  # the setting wins over the rule
    (5, 64, "200000 100000", 5),
])
def test_size_follows_the_setting_and_the_default_rule(setting, affinity, cpu_max, size):
    assert workers.pool_size(setting, affinity, cpu_max) == size


def test_the_setting_is_read_from_env_and_checked(monkeypatch):
    assert load_settings().image_threads == 0
    monkeypatch.setenv("VISION_PROXY_IMAGE_THREADS", "3")
    assert load_settings().image_threads == 3
    monkeypatch.setenv("VISION_PROXY_IMAGE_THREADS", "-1")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "image_threads (VISION_PROXY_IMAGE_THREADS)" in str(exc.value)


async def test_work_runs_on_at_most_the_configured_threads():
    assert workers.configure(2) == 2
    names = await asyncio.gather(*(workers.cpu(_blocking_name, 0.05) for _ in range(6)))
    assert len(set(names)) == 2 and all(n.startswith("image-cpu") for n in names)
    assert threading.current_thread().name not in names


async def test_shutdown_lets_given_work_finish_and_a_later_call_starts_a_new_pool():
    workers.configure(1)
    running = asyncio.ensure_future(workers.cpu(_blocking_name, 0.2))
    await asyncio.sleep(0.05)  # the call is on its thread
    workers.shutdown()  # returns at once; the call in progress still answers
    assert (await running).startswith("image-cpu")
    assert await workers.cpu(sum, [1, 2, 3]) == 6  # a new pool, of the configured size


@pytest.mark.skipif(sys.platform != "linux", reason="a per-thread nice value is Linux's")
async def test_pool_threads_yield_the_core_to_the_loop():
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    theirs = await workers.cpu(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    assert theirs == min(19, mine + workers.NICE)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # the loop's own is unchanged


def _blocking_name(seconds: float) -> str:
    time.sleep(seconds)
    return threading.current_thread().name

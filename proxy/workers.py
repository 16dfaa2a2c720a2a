"""The one bounded thread pool for CPU-bound image work (decode, encode, fit, tilt, compose, tiles, the kit
body's hash and base64): `await workers.cpu(fn, *args)`.

Why not asyncio's default pool: it has min(32, cpus + 4) threads, so a few big requests at once put as
many threads of C code (which release the GIL) on every core, and the event loop thread waits for a core
like any of them: on 2 cores, 4 MB bodies at concurrency 8 showed 20-40 ms of loop lag while no single step
of the loop took over ~2 ms. This pool has one thread fewer than the usable cores (at least one), so the
loop keeps a core, and its threads run at a lower priority (nice +NICE), so the loop also wins a core it
has to share (with another process, or on a 1-core pod). I/O-bound work (result files, boto3, credentials,
shadow records) stays on the default pool: it mostly waits and must not queue behind a decode.

Usable cores: the process's CPU affinity, capped by the cgroup v2 quota (`/sys/fs/cgroup/cpu.max`) when
there is one: a container with a CPU limit sees all the node's cores in os.cpu_count(), and threads beyond
its quota only get the whole cgroup, loop included, throttled for the rest of each period.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
NICE = 10  # the pool's threads yield to the loop's: CFS gives a nice-10 thread ~1/10 of a nice-0 one's share

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_threads = 0  # the configured setting (0: the default rule)


def usable_cores(affinity: int, cpu_max: str | None) -> int:
    """Cores this process may use: `affinity` (how many CPUs it may run on), capped by a cgroup v2 quota
    given as cpu.max's text ("max 100000": none; "150000 100000": 1.5 cores, counted as 1: a fraction
    of a core is not a core a thread can have to itself). At least 1."""
    cores = affinity
    fields = (cpu_max or "").split()
    if len(fields) == 2 and fields[0] != "max":
        try:
            quota, period = int(fields[0]), int(fields[1])
        except ValueError:
            quota, period = 0, 0
        if quota > 0 and period > 0:
            cores = min(cores, quota // period)
    return max(1, cores)


def pool_size(setting: int, affinity: int, cpu_max: str | None) -> int:
    """`setting` threads when it is set (> 0), else one fewer than the usable cores, at least one."""
    return setting if setting > 0 else max(1, usable_cores(affinity, cpu_max) - 1)


def _read_cpu_max() -> str | None:
    try:
        return CPU_MAX.read_text()
    except OSError:  # no cgroup v2 (or not mounted): no quota
        return None


def size_for(setting: int) -> int:
    """The pool size for `setting` on this machine."""
    return pool_size(setting, len(os.sched_getaffinity(0)), _read_cpu_max())


def configure(threads: int) -> int:
    """Size the pool for the `image_threads` setting (0: the default rule); returns the size. A pool of
    another size is replaced: work already given to it finishes there."""
    global _threads
    _threads = threads
    size = size_for(threads)
    if _pool is not None and _pool_size != size:
        shutdown()
    return size


def _executor() -> ThreadPoolExecutor:
    global _pool, _pool_size
    if _pool is None:  # lazily: code run outside the app (tests, the CLI) gets the configured or default size
        _pool_size = size_for(_threads)
        _pool = ThreadPoolExecutor(_pool_size, thread_name_prefix="image-cpu", initializer=_lower_priority)
    return _pool


def _lower_priority() -> None:
    """Each pool thread's own nice value, +NICE (Linux: a nice value is per thread; raising it needs no
    privilege). When the loop and image work want the same core, the loop runs first: a thread wakes
    the loop with its answer, and the loop was measured waiting behind the pool's threads for a core."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + NICE)


def shutdown() -> None:
    """Stop taking work; threads end once what they were given is done (never waits here, never hangs).
    The next `cpu` call starts a new pool."""
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False)
        _pool = None


async def cpu(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` in the image pool, with the caller's context (as asyncio.to_thread does)."""
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await loop.run_in_executor(_executor(), call)

"""One core each: the servers under test (baseline and proxy) on one core, the load generator and the kit
stub on the other, so both servers are measured with the same single core and nothing else on it."""

from __future__ import annotations

import contextlib
import os
from functools import cache


@cache  # read before the bench pins itself
def split() -> tuple[set[int], set[int]] | None:
    """(servers' core, load's core), or None when fewer than two cores are available to this process."""
    cores = sorted(os.sched_getaffinity(0))
    return ({cores[0]}, {cores[1]}) if len(cores) >= 2 else None


def pin(pid: int, cores: set[int]) -> None:
    """Pin every thread the process has now; the threads it starts later inherit their creator's set."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        tids = [pid]
    for tid in tids:
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, cores)

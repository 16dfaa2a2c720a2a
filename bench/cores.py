"""One core each, for the scenarios whose target says so (OCR by URL): the servers under test (baseline
and proxy) on one core, the load generator and the kit stub on the other, so both servers are measured
with the same single core and nothing else on it. The other scenarios run unpinned (their work spreads
over threads, and their targets are per job or per request, not per core)."""

from __future__ import annotations

import contextlib
import os
from functools import cache


@cache  # read once, before the bench pins anything
def available() -> frozenset[int]:
    return frozenset(os.sched_getaffinity(0))


def split() -> tuple[set[int], set[int]] | None:
    """(servers' core, load's core), or None when fewer than two cores are available to this process."""
    cores = sorted(available())
    return ({cores[0]}, {cores[1]}) if len(cores) >= 2 else None


def place(servers: list[int], load: list[int], one_core: bool) -> None:
    """Pin for a one-core scenario, or give every process all the cores back."""
    halves = split()
    if halves is None:
        return
    for pids, cores in ((servers, halves[0]), (load, halves[1])):
        for pid in pids:
            pin(pid, cores if one_core else set(available()))


def pin(pid: int, cores: set[int]) -> None:
    """Pin every thread the process has now; the threads it starts later inherit their creator's set."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        tids = [pid]
    for tid in tids:
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, cores)

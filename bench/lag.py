"""`python -m bench.lag FILE ARGS...`: run `python -m proxy ARGS...` with an event-loop lag probe.

A thread asks the proxy's loop, every PERIOD, to run a callback (`call_soon_threadsafe`) and appends to
FILE one line per probe: the CLOCK_MONOTONIC time it was due and how late the loop ran it, in ms. The
lateness is how long anything else held the loop (or the GIL it needs). The bench reads the lines
inside each scenario's time window. The proxy's code is not touched: the loop is caught as asyncio
creates it.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import IO

PERIOD = 0.01


def _probe(loop: asyncio.AbstractEventLoop, out: IO[str]) -> None:
    def ran(due: float) -> None:
        out.write(f"{due:.6f} {(time.monotonic() - due) * 1000:.3f}\n")

    due = time.monotonic()
    while not loop.is_closed():
        due += PERIOD
        time.sleep(max(0.0, due - time.monotonic()))
        try:
            loop.call_soon_threadsafe(ran, due)
        except RuntimeError:  # the loop closed meanwhile
            return
        if due < time.monotonic() - 1:  # fell far behind (a stopped process): do not burst
            due = time.monotonic()


class _Policy(asyncio.DefaultEventLoopPolicy):
    def __init__(self, out: IO[str]) -> None:
        super().__init__()
        self.out = out

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        threading.Thread(target=_probe, args=(loop, self.out), daemon=True, name="lag-probe").start()
        return loop


def main() -> int:
    out = open(sys.argv[1], "a", buffering=1)  # noqa: SIM115 - open for the process's life
    asyncio.set_event_loop_policy(_Policy(out))
    from proxy.cli import main as proxy_main

    return proxy_main(sys.argv[2:])


def window(path: str, start: float, end: float) -> list[float]:
    """Lag samples (ms) of probes due within [start, end)."""
    samples = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and start <= float(parts[0]) < end:
                samples.append(float(parts[1]))
    return samples


if __name__ == "__main__":
    sys.exit(main())

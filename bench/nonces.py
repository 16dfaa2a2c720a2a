"""`python -m bench.nonces [RATE]`: memory and speed of the in-memory replay store over a full window.

Claims RATE nonces a second for 15 minutes of fake time (the store's own clock), as one replica at that
throughput would, then reports the bytes per nonce tracemalloc sees (everything the store allocated: the
sorted run and the dict of claims not yet merged) and the claims a second this machine sustains.
"""

from __future__ import annotations

import asyncio
import sys
import time
import tracemalloc

from proxy.aliyun.nonce_memory import MemoryNonceStore

WINDOW = 900


async def measure(rate: int) -> dict[str, float]:
    now = [1_800_000_000.0]
    tracemalloc.start()
    store = MemoryNonceStore(4 * rate * WINDOW, lambda: now[0])
    claims = rate * WINDOW
    started = time.perf_counter()
    for i in range(claims):
        now[0] += 1 / rate
        await store.claim(f"LTAI5t{i % 50:018d}\n{i:032x}", now[0] + WINDOW)  # SDK nonces: 32 hex digits
    seconds = time.perf_counter() - started
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"rate": rate, "nonces": len(store), "bytes_per_nonce": round(held / len(store), 1),
            "peak_bytes_per_nonce": round(peak / len(store), 1), "claims_per_second": round(claims / seconds)}


if __name__ == "__main__":
    print(asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 800)))

"""The in-process replay memory, compact enough that one replica at full throughput never fills it.

Each (AccessKeyId, nonce) is kept as a 16-byte keyed BLAKE2b digest (a per-process random key, so no caller
can choose nonces that collide) plus a 4-byte expiry second: about 20 bytes a nonce in numpy arrays, against
~300 for a string key in a dict and a heap. New claims go into a small dict; every `FREEZE` claims (or
`FREEZE_SECONDS`) it is merged into one sorted run (two uint64 halves and a uint32 expiry), and the merge
drops every expired entry in the same vectorised pass, so expiry costs one array filter per batch rather
than work per nonce. A lookup is one dict probe and one binary search.

When full of live nonces it refuses with ServiceUnavailable rather than forget one (fail closed); the
fill is exported as `vision_proxy_nonce_store_fill_ratio` so an alert fires long before that.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import time
from collections.abc import Callable

import numpy as np

from ..observability import metrics
from .errors import Err

FREEZE = 8192  # claims held in the dict before they are merged into the sorted run
FREEZE_SECONDS = 10.0  # ... or this long, so expired entries leave memory even at a trickle
_HALVES = struct.Struct("<QQ")


class MemoryNonceStore:
    """Bounded in-process store; `max_entries` live nonces at most (about 20 bytes each)."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        self.max_entries = max_entries
        self._clock = clock  # tests pass a fake clock to run a whole window at once
        self._salt = os.urandom(16)
        self._new: dict[bytes, int] = {}  # digest -> expiry second, not yet merged
        self._hi = np.empty(0, np.uint64)  # sorted; ties in any order
        self._lo = np.empty(0, np.uint64)
        self._until = np.empty(0, np.uint32)
        self._soonest = math.inf  # the earliest expiry in the sorted run: nothing to drop before it
        self._merged_at = self._clock()
        metrics.NONCE_STORE_FILL.set(0)

    def __len__(self) -> int:
        """Entries held, expired ones not yet dropped included (so the fill errs on the full side)."""
        return len(self._new) + len(self._hi)

    def _digest(self, key: str) -> bytes:
        return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16, key=self._salt).digest()

    async def claim(self, key: str, until: float) -> bool:
        now = self._clock()
        digest = self._digest(key)
        if self._seen(digest, now):
            return False
        if len(self) >= self.max_entries or len(self._new) >= FREEZE or now - self._merged_at >= FREEZE_SECONDS:
            self._merge(now)
        if len(self) >= self.max_entries:
            metrics.NONCE_STORE_FILL.set(1)
            raise Err.SERVICE_UNAVAILABLE()
        self._new[digest] = math.ceil(until)
        metrics.NONCE_STORE_FILL.set(len(self) / self.max_entries)
        return True

    async def close(self) -> None:
        return None

    def _seen(self, digest: bytes, now: float) -> bool:
        pending = self._new.get(digest)
        if pending is not None and pending > now:
            return True
        hi, lo = _HALVES.unpack(digest)
        at = int(np.searchsorted(self._hi, np.uint64(hi)))
        while at < len(self._hi) and int(self._hi[at]) == hi:
            if int(self._lo[at]) == lo and int(self._until[at]) > now:
                return True
            at += 1
        return False

    def _merge(self, now: float) -> None:
        """Drop expired entries and merge the new claims into the sorted run: O(n) vectorised work."""
        changed = self._soonest <= now
        if changed:
            keep = self._until > now
            self._hi, self._lo, self._until = self._hi[keep], self._lo[keep], self._until[keep]
        live = {d: u for d, u in self._new.items() if u > now}
        if live:
            changed = True
            halves = np.frombuffer(b"".join(live), dtype="<u8").reshape(-1, 2)
            new_until = np.fromiter(live.values(), np.uint32, len(live))
            order = np.argsort(halves[:, 0], kind="stable")
            at = np.searchsorted(self._hi, halves[order, 0])
            self._hi = np.insert(self._hi, at, halves[order, 0])
            self._lo = np.insert(self._lo, at, halves[order, 1])
            self._until = np.insert(self._until, at, new_until[order])
        if changed:
            self._soonest = int(self._until.min()) if len(self._until) else math.inf
        self._new = {}
        self._merged_at = now
        metrics.NONCE_STORE_FILL.set(len(self) / self.max_entries)


"""Replay protection: each (AccessKeyId, nonce) is accepted once while its timestamp is in the window.

`NonceStore` is the seam for a shared store (Redis) when several replicas serve one caller.
"""

from __future__ import annotations

import heapq
import time
from typing import Protocol

from .errors import Err


class NonceStore(Protocol):
    async def claim(self, key: str, until: float) -> bool:
        """Record `key` until the epoch time `until`; False when it is already recorded."""
        ...


class MemoryNonceStore:
    """Bounded in-process store. When full of live nonces it refuses (fails closed) rather than forget."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._until: dict[str, float] = {}
        self._expiry: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._until)

    async def claim(self, key: str, until: float) -> bool:
        self._purge(time.time())
        if key in self._until:
            return False
        if len(self._until) >= self.max_entries:
            raise Err.SERVICE_UNAVAILABLE()
        self._until[key] = until
        heapq.heappush(self._expiry, (until, key))
        return True

    def _purge(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            _, key = heapq.heappop(self._expiry)
            self._until.pop(key, None)

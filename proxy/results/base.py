"""The result store interface, and the key rules every store shares.

Aliyun's matting and super-resolution actions answer with a URL to the result image (valid 30 minutes),
and async jobs are polled with GetAsyncJobResult; the kit answers with base64 PNG. So results and job
records must live somewhere that every replica of the proxy can read, and hand out as an expiring URL.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, BinaryIO, Protocol

# One or more `/`-separated segments of [A-Za-z0-9_.-]; no segment starts with a dot (so `.`, `..` and the
# stores' own temporary files can never be named), and `..` appears nowhere.
_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*")
MAX_KEY_LENGTH = 512


class ResultStoreError(Exception):
    """The store could not keep or read something (disk, S3): the caller answers ServiceUnavailable."""


class ResultStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str, base_url: str) -> str:
        """Store a result image; return a URL that works for the store's ttl seconds (then refused).

        Raises ResultStoreError when the storage fails, ValueError for a key outside [A-Za-z0-9/_.-].

        `base_url` is the scheme://host[:port] the caller used to reach the proxy: the local store builds
        its URL on it when no public base URL is configured; the S3 store ignores it.
        """
        ...

    async def put_record(self, key: str, record: dict[str, Any], ttl_seconds: float) -> None:
        """Keep a JSON record (an async job) for ttl_seconds; any replica sharing the store can read it."""
        ...

    async def get_record(self, key: str) -> dict[str, Any] | None:
        """The record, or None when it was never written or has expired."""
        ...

    async def put_stream_until(self, key: str, body: BinaryIO, content_type: str, expires: int) -> None:
        """Keep an upload, read from a file object in chunks, until the epoch `expires`."""
        ...

    async def read(self, key: str, expires: int) -> bytes | None:
        """The bytes of an object that exists and has not expired, else None."""
        ...

    async def exists(self, key: str, expires: int) -> bool:
        ...

    def own_key(self, url: str) -> tuple[str, int] | None:
        """(key, expires) when `url` is one of this store's result URLs, else None."""
        ...

    async def cleanup(self) -> int:
        """Delete expired objects and records; return how many."""
        ...

    async def close(self) -> None:
        """Release clients and threads; the stored data stays."""
        ...


def valid_key(key: str) -> bool:
    return len(key) <= MAX_KEY_LENGTH and ".." not in key and _KEY.fullmatch(key) is not None


def check_key(key: str) -> str:
    """Raise ValueError for a key that could escape the store's namespace (the caller's bug, not a user's)."""
    if not valid_key(key):
        raise ValueError(f"invalid result key {key!r}: use [A-Za-z0-9/_.-], no '..', no segment starting with '.'")
    return key


def encode_record(record: dict[str, Any], ttl_seconds: float) -> bytes:
    """A job record with its expiry, as both stores keep it: {"expires": epoch, "record": {...}}."""
    return json.dumps({"expires": time.time() + ttl_seconds, "record": record}, ensure_ascii=False).encode()


def decode_record(body: bytes | None) -> dict[str, Any] | None:
    """The record, or None when absent or expired."""
    if body is None:
        return None
    try:
        doc = json.loads(body)
    except ValueError as exc:  # a torn read from a store without atomic writes, or a damaged object
        raise ResultStoreError(f"undecodable record: {exc}") from None
    if doc["expires"] < time.time():
        return None
    record: dict[str, Any] = doc["record"]
    return record

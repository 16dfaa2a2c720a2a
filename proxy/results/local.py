"""The embedded result store: files under a data directory, served by the proxy itself.

URLs look like Aliyun's OSS result URLs: `{base}/results/{key}?Expires=<epoch>&Signature=<HMAC>`, where the
signature is urlsafe base64 HMAC-SHA256 over key and expiry with `result_signing_key`. Any replica that
shares the data directory (a ReadWriteMany volume) and the signing key serves any replica's URLs.

Layout under the data directory (every write is a temporary file plus a rename, so nothing half-written
is ever read or served; all file I/O runs in threads, results can be tens of MB):

    results/<key>             the bytes
    results-meta/<key>.json   {"content_type", "expires"}
    records/<key>.json        {"expires", "record"}
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import math
import mimetypes
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

from aiohttp import web

from ..aliyun.errors import OssErr
from ..aliyun.serialize import oss_error
from .base import ResultStoreError, check_key, decode_record, encode_record, valid_key

CHUNK_BYTES = 1024 * 1024
STALE_TEMP_SECONDS = 3600  # a temporary file this old was left by a crashed writer


class LocalResultStore:
    def __init__(self, data_dir: Path, ttl_seconds: int, signing_key: bytes,
                 public_base_url: str | None = None) -> None:
        self.root = data_dir.absolute()
        self.ttl = ttl_seconds
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self._key = signing_key
        self._objects = self.root / "results"
        self._meta = self.root / "results-meta"
        self._records = self.root / "records"

    async def start(self) -> None:
        """Create the directories now, so a read-only or missing volume fails start-up, not the first call."""
        try:
            await asyncio.to_thread(self._make_dirs)
        except OSError as exc:
            raise ResultStoreError(f"data_dir {self.root}: {exc}") from exc

    def _make_dirs(self) -> None:
        for d in (self._objects, self._meta, self._records):
            d.mkdir(parents=True, exist_ok=True)

    # ---- the interface

    async def put(self, key: str, data: bytes, content_type: str, base_url: str) -> str:
        check_key(key)
        expires = math.ceil(time.time() + self.ttl)  # whole seconds, never shorter than the ttl
        await self._keep(key, content_type, expires, lambda path: _atomic_write(path, data), "result")
        base = self.public_base_url or base_url.rstrip("/")
        return f"{base}/results/{key}?Expires={expires}&Signature={self.sign(key, expires)}"

    async def put_record(self, key: str, record: dict[str, Any], ttl_seconds: float) -> None:
        check_key(key)
        body = encode_record(record, ttl_seconds)
        try:
            await asyncio.to_thread(_atomic_write, self._records / f"{key}.json", body)
        except OSError as exc:
            raise ResultStoreError(f"cannot write record {key}: {exc}") from exc

    async def get_record(self, key: str) -> dict[str, Any] | None:
        check_key(key)
        try:
            body = await asyncio.to_thread(_read_or_none, self._records / f"{key}.json")
        except OSError as exc:
            raise ResultStoreError(f"cannot read record {key}: {exc}") from exc
        return decode_record(body)

    async def cleanup(self) -> int:
        return await asyncio.to_thread(self._cleanup, time.time())

    # ---- the proxy's own objects (uploads, and result URLs handed back as input): read, never fetched

    async def put_stream_until(self, key: str, body: BinaryIO, content_type: str, expires: int) -> None:
        """Keep an upload (a file object, copied in chunks) until `expires`."""
        check_key(key)
        await self._keep(key, content_type, expires, lambda path: _atomic_copy(path, body), "upload")

    async def _keep(self, key: str, content_type: str, expires: int, write: Callable[[Path], None],
                    what: str) -> None:
        """Metadata first, then the object (`write` makes it at its path): whoever sees the bytes also finds
        their content type and expiry."""
        meta = json.dumps({"content_type": content_type, "expires": expires}).encode()
        try:
            await asyncio.to_thread(_atomic_write, self._meta / f"{key}.json", meta)
            await asyncio.to_thread(write, self._objects / key)
        except OSError as exc:
            raise ResultStoreError(f"cannot write {what} {key}: {exc}") from exc

    async def read(self, key: str, expires: int) -> bytes | None:
        """An object's bytes while it exists and has not expired, else None (`expires`: S3 files by it)."""
        if not valid_key(key):
            return None
        try:
            return await asyncio.to_thread(self._read_live, key, time.time())
        except OSError as exc:
            raise ResultStoreError(f"cannot read {key}: {exc}") from exc

    async def exists(self, key: str, expires: int) -> bool:
        return valid_key(key) and await asyncio.to_thread((self._objects / key).is_file)

    def own_key(self, url: str) -> tuple[str, int] | None:
        """(key, expires) of a result URL this store signed (any host: the signature proves it is ours)."""
        parts = urlsplit(url)
        key = unquote(parts.path).removeprefix("/results/")
        query = parse_qs(parts.query)
        expires, signature = query.get("Expires", [""])[0], query.get("Signature", [""])[0]
        if key == parts.path or not valid_key(key) or not expires.isdigit() or len(expires) > 12:
            return None
        if not hmac.compare_digest(self.sign(key, int(expires)).encode(), signature.encode()):
            return None
        return key, int(expires)

    def _read_live(self, key: str, now: float) -> bytes | None:
        meta = _read_or_none(self._meta / f"{key}.json")
        if meta is None or json.loads(meta).get("expires", 0) < now:
            return None
        return _read_or_none(self._objects / key)

    async def close(self) -> None:
        """Nothing to release: files are opened per call."""

    # ---- signed URLs and the GET route

    def sign(self, key: str, expires: int) -> str:
        mac = hmac.new(self._key, f"{key}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """GET /results/{key}: check signature (constant time), then expiry, then stream the file."""
        key = request.match_info.get("key", "")
        expires_text = request.query.get("Expires", "")
        signature = request.query.get("Signature", "")
        if not valid_key(key):  # never signed, so never served: `..`, encoded or not, stops here
            return oss_error(request, OssErr.OBJECT_NAME_INVALID)
        if not (signature and expires_text.isascii() and expires_text.isdigit() and len(expires_text) <= 12):
            return oss_error(request, OssErr.NOT_SIGNED)
        expires = int(expires_text)
        if not hmac.compare_digest(self.sign(key, expires).encode(), signature.encode()):
            return oss_error(request, OssErr.SIGNATURE_MISMATCH)
        now = time.time()
        if now > expires:
            return oss_error(request, OssErr.EXPIRED, Expires=_iso(expires), ServerTime=_iso(now))
        opened = await asyncio.to_thread(self._open, key)
        if opened is None:
            return oss_error(request, OssErr.NO_SUCH_KEY)
        fobj, size, content_type = opened
        try:
            response = web.StreamResponse(headers={
                "Content-Type": content_type,
                "Cache-Control": f"private, max-age={max(0, int(expires - now))}",
            })
            response.content_length = size
            await response.prepare(request)
            if request.method != "HEAD":
                while chunk := await asyncio.to_thread(fobj.read, CHUNK_BYTES):
                    await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            await asyncio.to_thread(fobj.close)

    def _open(self, key: str) -> tuple[BinaryIO, int, str] | None:
        try:
            fobj = open(self._objects / key, "rb")  # noqa: SIM115 - closed by serve()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        size = os.fstat(fobj.fileno()).st_size
        content_type = None
        body = _read_or_none(self._meta / f"{key}.json")
        if body is not None:
            content_type = json.loads(body).get("content_type")
        return fobj, size, content_type or mimetypes.guess_type(key)[0] or "application/octet-stream"

    # ---- cleanup

    def _cleanup(self, now: float) -> int:
        removed = 0
        for path in _files(self._objects):
            if path.name.startswith("."):
                _remove_stale_temp(path, now)
                continue
            key = path.relative_to(self._objects).as_posix()
            meta_path = self._meta / f"{key}.json"
            try:
                meta = _read_or_none(meta_path)
                expires = json.loads(meta)["expires"] if meta else path.stat().st_mtime + self.ttl
            except (OSError, ValueError, KeyError):
                continue
            if expires < now:
                removed += _unlink(path)
                _unlink(meta_path)
        for path in _files(self._meta):  # metadata whose object is gone (a writer crashed between the two)
            if path.name.startswith("."):
                _remove_stale_temp(path, now)
            elif not (self._objects / path.relative_to(self._meta).as_posix().removesuffix(".json")).exists():
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime + self.ttl < now:
                        _unlink(path)
        for path in _files(self._records):
            if path.name.startswith("."):
                _remove_stale_temp(path, now)
                continue
            try:
                body = _read_or_none(path)
                expired = body is not None and json.loads(body)["expires"] < now
            except (OSError, ValueError, KeyError):
                continue
            if expired:
                removed += _unlink(path)
        for top in (self._objects, self._meta, self._records):
            _remove_empty_dirs(top)
        return removed


# ---- file helpers (run in threads)

def _atomic_write(path: Path, data: bytes) -> None:
    for attempt in range(3):  # cleanup may remove an empty directory between mkdir and mkstemp
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except FileNotFoundError:
            if attempt == 2:
                raise
            continue
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return


def _atomic_copy(path: Path, body: BinaryIO) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(body, f, CHUNK_BYTES)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _files(top: Path) -> list[Path]:
    return [Path(d) / name for d, _, names in os.walk(top) for name in names]


def _unlink(path: Path) -> int:
    try:
        path.unlink()
        return 1
    except FileNotFoundError:  # another replica's cleanup got there first
        return 0


def _remove_stale_temp(path: Path, now: float) -> None:
    with contextlib.suppress(OSError):
        if path.stat().st_mtime + STALE_TEMP_SECONDS < now:
            path.unlink()


def _remove_empty_dirs(top: Path) -> None:
    for d, _, _ in os.walk(top, topdown=False):
        if Path(d) != top:
            with contextlib.suppress(OSError):  # not empty (a writer just used it), or already gone
                os.rmdir(d)


# ---- OSS-style answers

def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")



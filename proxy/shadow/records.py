"""A bounded on-disk store of shadow comparison records: one JSON file per record, images beside it.

Layout under the store directory (ids sort in time order, so a listing is the history):
    <id>.json                 the record
    <id>.<name>.<ext>         its images (input, primary, secondary), kept for mismatches only

Bounds: at most `max_records` records AND `max_bytes` bytes (JSON plus images); the oldest records go
first. Files are written to a temporary name and renamed, so a reader never sees half a record.

Methods are plain synchronous functions (file I/O and JSON): call them from a worker thread, or use the
`*_async` wrappers, which do exactly that with asyncio.to_thread. One process writes a directory; a
lock makes concurrent threads of that process safe. Another process's additions are seen after reload().

Secrets: the store accepts only the schema's fields, keeps only `status` and `body` of each side (never
headers), drops mapping keys that name credentials, and masks the signature and key parameters of
presigned result URLs (a presigned URL is a bearer credential until it expires).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..mappings import CompareSpec
from .compare import Outcome, Scores

MODES = ("shadow", "reverse-shadow", "offline")
DEFAULT_MAX_RECORDS = 2000
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
STORE_SUBDIR = "shadow"  # suggested place: <VISION_PROXY_DATA_DIR>/shadow
IMAGE_OUTCOMES = frozenset({"mismatched"})

_SECRET_KEYS = frozenset({
    "headers", "authorization", "signature", "x-acs-signature", "accesskeyid", "accesskeysecret",
    "access_key_id", "access_key_secret", "securitytoken", "security_token", "x-acs-security-token",
    "x-acs-accesskey-id", "x-amz-security-token", "cookie", "set-cookie",
})
_URL_SECRET = re.compile(
    r"(?i)([?&](?:Signature|OSSAccessKeyId|security-token|X-Amz-Signature|X-Amz-Credential|"
    r"X-Amz-Security-Token|AWSAccessKeyId|x-oss-signature|x-oss-credential|x-oss-security-token)=)[^&#\s\"]*")
_ID_RE = re.compile(r"^[0-9]{8}T[0-9]{12}Z-[0-9a-f]{8}$")
_MAGIC = ((b"\x89PNG", "png"), (b"\xff\xd8", "jpg"), (b"RIFF", "webp"), (b"BM", "bmp"), (b"GIF8", "gif"))


def scrub(value: Any) -> Any:
    """A copy without credential-named keys and with presigned-URL signatures masked."""
    if isinstance(value, Mapping):
        return {str(k): scrub(v) for k, v in value.items() if str(k).lower() not in _SECRET_KEYS}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return _URL_SECRET.sub(r"\1REDACTED", value)
    return value


def finite(metrics: Mapping[str, float | None] | None) -> dict[str, float | None]:
    """Metrics with NaN and infinities as None: records stay standard JSON."""
    return {k: (v if v is not None and math.isfinite(v) else None) for k, v in (metrics or {}).items()}


def _side(status: int | None, body: Any) -> dict[str, Any]:
    return {"status": status, "body": scrub(body)}


def _now() -> datetime:
    return datetime.now(UTC)


def new_id(at: datetime) -> str:
    """Sortable: UTC time to the microsecond, then 8 random hex digits."""
    return at.strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:8]


@dataclass
class Record:
    """One comparison, as stored. `time` is ISO-8601 UTC; `primary`/`secondary` are {status, body}."""

    action: str
    product: str
    mode: str
    outcome: str
    failed: list[str] = field(default_factory=list)
    scores: dict[str, float | None] = field(default_factory=dict)
    noise: dict[str, float | None] | None = None
    latency_ms: dict[str, float | None] = field(default_factory=lambda: {"primary": None, "secondary": None})
    primary: dict[str, Any] = field(default_factory=lambda: {"status": None, "body": None})
    secondary: dict[str, Any] = field(default_factory=lambda: {"status": None, "body": None})
    details: dict[str, Any] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)
    id: str = ""
    time: str = ""

    @classmethod
    def build(cls, *, action: str, product: str, mode: str, outcome: Outcome, scores: Scores | None = None,
              primary: tuple[int | None, Any], secondary: tuple[int | None, Any],
              latency_ms: tuple[float | None, float | None] = (None, None), noise: Scores | None = None,
              thresholds: Mapping[str, Mapping[str, float]] | None = None,
              details: Mapping[str, Any] | None = None, compare: CompareSpec | None = None) -> Record:
        """A record from the comparator's results: details get the differences, notes, reasons,
        within-noise metrics and the thresholds used (so the report shows the bounds that applied), and
        the action's comparison family (and OCR answer shape) from its mapping, so an error has them too."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        extra: dict[str, Any] = {"reasons": outcome.reasons}
        if outcome.within_noise:
            extra["within_noise"] = outcome.within_noise
        if scores is not None:
            extra["differences"] = [d.to_dict() for d in scores.differences]
            extra["notes"] = scores.notes
            extra["family"] = scores.family
        if compare is not None:
            extra["family"] = compare.family
            if compare.lines:
                extra["lines"] = compare.lines
        if thresholds is not None:
            extra["thresholds"] = {k: dict(v) for k, v in thresholds.items()}
        extra.update(details or {})
        return cls(action=action, product=product, mode=mode, outcome=outcome.outcome, failed=list(outcome.failed),
                   scores=finite(scores.metrics if scores else None), noise=finite(noise.metrics) if noise else None,
                   latency_ms={"primary": latency_ms[0], "secondary": latency_ms[1]},
                   primary=_side(*primary), secondary=_side(*secondary), details=extra)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def family(self) -> str:
        """The comparison family ("ocr", "matting", "super_resolution"), "" when not known."""
        return str((self.details or {}).get("family") or "")

    @property
    def lines(self) -> str | None:
        """OCR: the answer shape the lines are read from (the mapping's compare.lines)."""
        value = (self.details or {}).get("lines")
        return str(value) if value else None

    @property
    def timestamp(self) -> datetime:
        return datetime.fromisoformat(self.time.replace("Z", "+00:00"))


def _ext(data: bytes) -> str:
    return next((ext for magic, ext in _MAGIC if data.startswith(magic)), "bin")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class RecordStore:
    """The store. add() is the only writer; records() iterates oldest first."""

    def __init__(self, root: Path | str, *, max_records: int = DEFAULT_MAX_RECORDS,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_records < 1 or max_bytes < 1:
            raise ValueError("max_records and max_bytes must be positive")
        self.root = Path(root)
        self.max_records = max_records
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._sizes: dict[str, int] = {}  # id → bytes on disk (JSON + images), ids in time order
        self.reload()

    # -- reading ------------------------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-scan the directory (and drop temporary files over an hour old, left by a crash)."""
        sizes: dict[str, int] = {}
        if self.root.is_dir():
            for path in self.root.iterdir():
                if path.name.startswith(".") and path.name.endswith(".tmp"):
                    with contextlib.suppress(OSError):  # a crash's leftovers, not a live writer's file
                        if time.time() - path.stat().st_mtime > 3600:
                            path.unlink()
                    continue
                rid = path.name.split(".", 1)[0]
                if _ID_RE.match(rid) and path.is_file():
                    sizes[rid] = sizes.get(rid, 0) + path.stat().st_size
        with self._lock:
            self._sizes = {rid: sizes[rid] for rid in sorted(sizes)
                           if (self.root / f"{rid}.json").is_file()}

    def __len__(self) -> int:
        return len(self._sizes)

    @property
    def total_bytes(self) -> int:
        return sum(self._sizes.values())

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._sizes)

    def get(self, record_id: str) -> Record:
        if not _ID_RE.match(record_id):
            raise KeyError(record_id)
        return Record.from_dict(json.loads((self.root / f"{record_id}.json").read_text("utf-8")))

    def records(self) -> Iterator[Record]:
        """Every record, oldest first; one evicted meanwhile is skipped."""
        for rid in self.ids():
            try:
                yield self.get(rid)
            except (OSError, ValueError):
                continue

    def __iter__(self) -> Iterator[Record]:
        return self.records()

    def image_path(self, record: Record, name: str) -> Path | None:
        filename = record.images.get(name)
        return self.root / filename if filename else None

    def read_image(self, record: Record, name: str) -> bytes | None:
        path = self.image_path(record, name)
        try:
            return path.read_bytes() if path else None
        except OSError:
            return None

    # -- writing ------------------------------------------------------------------------------------------

    def add(self, record: Record, images: Mapping[str, bytes] | None = None) -> Record:
        """Store a record (id and time filled in when empty) and, for mismatches, its images.

        Image names are simple words (input, primary, secondary). A record whose images alone exceed
        max_bytes is kept without them (details.images_dropped says so). Returns the stored record.
        """
        at = _now()
        rec = Record.from_dict(record.to_dict())
        rec.time = rec.time or at.isoformat(timespec="microseconds").replace("+00:00", "Z")
        rec.id = rec.id if _ID_RE.match(rec.id) else new_id(rec.timestamp)
        rec.primary = _side(rec.primary.get("status"), rec.primary.get("body"))
        rec.secondary = _side(rec.secondary.get("status"), rec.secondary.get("body"))
        rec.details = scrub(rec.details)
        rec.scores = finite(rec.scores)
        rec.noise = finite(rec.noise) if rec.noise is not None else None
        rec.images = {}
        keep = dict(images or {}) if rec.outcome in IMAGE_OUTCOMES else {}
        if sum(len(v) for v in keep.values()) > self.max_bytes // 2:
            rec.details["images_dropped"] = "larger than half the store's byte cap"
            keep = {}
        self.root.mkdir(parents=True, exist_ok=True)
        size = 0
        for name, data in keep.items():
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise ValueError(f"bad image name {name!r}")
            filename = f"{rec.id}.{name}.{_ext(data)}"
            _write_atomic(self.root / filename, data)
            rec.images[name] = filename
            size += len(data)
        text = json.dumps(rec.to_dict(), ensure_ascii=False, indent=1, allow_nan=False).encode("utf-8")
        _write_atomic(self.root / f"{rec.id}.json", text)
        size += len(text)
        with self._lock:
            self._sizes[rec.id] = size
            if len(self._sizes) > 1 and next(reversed(self._sizes)) != rec.id:  # an older time given
                self._sizes = dict(sorted(self._sizes.items()))
            victims = self._evictions_locked(rec.id)
        for rid in victims:
            self._delete(rid)
        return rec

    def _evictions_locked(self, newest: str) -> list[str]:
        victims = []
        total = sum(self._sizes.values())
        for rid in list(self._sizes):
            if len(self._sizes) <= self.max_records and total <= self.max_bytes:
                break
            if rid == newest:
                continue
            total -= self._sizes.pop(rid)
            victims.append(rid)
        return victims

    def _delete(self, record_id: str) -> None:
        for path in self.root.glob(f"{record_id}.*"):
            with contextlib.suppress(OSError):
                path.unlink()

    # -- async wrappers -----------------------------------------------------------------------------------

    async def add_async(self, record: Record, images: Mapping[str, bytes] | None = None) -> Record:
        return await asyncio.to_thread(self.add, record, images)

    async def records_async(self) -> list[Record]:
        return await asyncio.to_thread(lambda: list(self.records()))

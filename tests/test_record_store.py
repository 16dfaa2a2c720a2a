"""The shadow record store: time order and bounds (count, bytes), images kept only for mismatches, no
headers or signatures written, and the async wrappers. The report built on it: tests/test_report.py."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from proxy.shadow.compare import Outcome
from proxy.shadow.records import Record, RecordStore


def _simple(outcome: str = "mismatched", **kw: Any) -> Record:
    return Record.build(action="SegmentBody", product="imageseg", mode="shadow", outcome=Outcome(outcome),
                        primary=(200, {"Data": {}}), secondary=(200, {"Data": {}}), **kw)


def test_store_keeps_time_order_and_bounds_count(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, max_records=3)
    ids = [store.add(_simple(), {"input": b"\x89PNG fake"}).id for _ in range(5)]
    assert len(store) == 3
    assert [r.id for r in store.records()] == ids[2:]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{i}.json" for i in ids[2:]] + [f"{i}.input.png" for i in ids[2:]])
    assert [r.id for r in RecordStore(tmp_path).records()] == ids[2:]  # a new process sees the same


def test_store_bounds_bytes_and_drops_oversized_images(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, max_bytes=40_000)
    first = store.add(_simple(), {"input": b"\xff\xd8" + b"x" * 15_000})
    store.add(_simple(), {"input": b"\xff\xd8" + b"x" * 15_000})
    third = store.add(_simple(), {"input": b"\xff\xd8" + b"x" * 15_000})
    assert first.id not in store.ids() and third.id in store.ids()
    assert store.total_bytes <= 40_000
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) == store.total_bytes
    huge = store.add(_simple(), {"input": b"x" * 30_000})
    assert huge.images == {} and "images_dropped" in huge.details


def test_store_writes_images_only_for_mismatches(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    matched = store.add(_simple("matched"), {"input": b"\x89PNGx"})
    mismatched = store.add(_simple("mismatched"), {"input": b"\x89PNGx", "primary": b"\xff\xd8y"})
    assert matched.images == {}
    assert mismatched.images == {"input": f"{mismatched.id}.input.png", "primary": f"{mismatched.id}.primary.jpg"}
    assert store.read_image(store.get(mismatched.id), "primary") == b"\xff\xd8y"
    with pytest.raises(ValueError):
        store.add(_simple(), {"../evil": b"x"})


def test_store_never_writes_headers_or_signatures(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    record = _simple(details={"headers": {"Authorization": "ACS3-HMAC-SHA256 Credential=testid"},
                              "url": "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA1%2F&X-Amz-Signature=ff"})
    record.primary["headers"] = {"x-acs-signature": "secret"}
    record.secondary["body"] = {"Data": {"ImageURL": "http://h/r/k?Expires=9&Signature=c2lnbmF0dXJl"},
                                "AccessKeySecret": "nope"}
    saved = store.add(record)
    text = (tmp_path / f"{saved.id}.json").read_text()
    for secret in ("Authorization", "testid", "x-acs-signature", "AKIA1", "c2lnbmF0dXJl", "nope", "headers"):
        assert secret not in text
    data = json.loads(text)
    assert set(data) == {"id", "time", "action", "product", "mode", "outcome", "failed", "scores", "noise",
                         "latency_ms", "primary", "secondary", "details", "images"}
    assert set(data["primary"]) == {"status", "body"}
    assert data["secondary"]["body"]["Data"]["ImageURL"] == "http://h/r/k?Expires=9&Signature=REDACTED"


def test_store_async_wrappers_and_json_safe_scores(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    rec = _simple()
    rec.scores = {"psnr": float("inf"), "ssim": float("nan"), "iou": 0.5}

    async def go() -> list[Record]:
        await store.add_async(rec)
        return await store.records_async()

    (saved,) = asyncio.run(go())
    assert saved.scores == {"psnr": None, "ssim": None, "iou": 0.5}
    with pytest.raises(ValueError):
        _simple().build(action="a", product="p", mode="canary", outcome=Outcome("matched"), primary=(200, {}),
                        secondary=(200, {}))

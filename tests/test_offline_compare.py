"""`vision-proxy compare IMAGES_DIR`: the offline proof of concept, as a real process, with a progress bar
and the same report; "Aliyun" is tests/fake_aliyun.py, AWS the embedded backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from proxy.shadow.records import STORE_SUBDIR, RecordStore
from tests import imagegen
from tests.fake_aliyun import ALIYUN_KEY
from tests.harness import mapped

# Every OCR mapping, read from the mappings: a new one is compared offline with no edit here.
OCR_ACTIONS = sorted({s.action for s in mapped(lambda s: s.compare is not None and s.compare.family == "ocr")})


def test_compare_a_folder(tmp_path):
    from aiohttp import web

    from tests.fake_aliyun import FakeAliyun
    from tests.harness import AppServer, clean_env

    fake = FakeAliyun()
    folder = tmp_path / "poc"
    folder.mkdir()

    def static() -> web.Application:  # the images "uploaded" where Aliyun (and the proxy) can fetch them
        app = web.Application()
        app.router.add_static("/poc/", folder)
        return app

    (folder / "board-1.png").write_bytes(imagegen.text_image("PNG"))
    (folder / "board-2.jpg").write_bytes(imagegen.text_image("JPEG"))
    (folder / "notes.txt").write_text("not an image")
    calls = 2 * len(OCR_ACTIONS)  # two images each
    with AppServer(fake.app) as server, AppServer(static) as files:
        fake.base_url = server.url
        env = clean_env()
        env.update(VISION_PROXY_DATA_DIR=str(tmp_path / "data"), VISION_PROXY_FETCH_ALLOW="127.0.0.1/32",
                   VISION_PROXY_ALIYUN_ENDPOINTS=json.dumps({"ocr": server.url, "ocr-api": server.url}))
        proc = subprocess.run(
            [sys.executable, "-m", "proxy", "compare", str(folder), "--actions", ",".join(OCR_ACTIONS),
             "--url-prefix", f"{files.url}/poc", "--aliyun-key", ":".join(ALIYUN_KEY),
             "--store", str(tmp_path / "data" / STORE_SUBDIR), "--out", str(tmp_path / "poc.html")],
            env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "comparing" in proc.stderr and f"{calls}/{calls}" in proc.stderr  # the progress bar
    assert all(r["verdict"] == "ok" for r in fake.received) and len(fake.received) == calls
    store = RecordStore(tmp_path / "data" / STORE_SUBDIR)
    records = list(store.records())
    assert {"RecognizeCharacter", "RecognizeGeneral", "RecognizeHandwriting"} <= set(OCR_ACTIONS)
    assert sorted(r.action for r in records) == sorted(OCR_ACTIONS * 2)
    assert {r.mode for r in records} == {"offline"}, records
    assert {r.outcome for r in records} == {"matched"}, [(r.details, r.primary, r.secondary) for r in records]
    html = Path(proc.stdout.strip()).read_text()
    assert all(action in html for action in OCR_ACTIONS)


def test_offline_noise_reasks_carry_the_whole_request(tmp_path):
    """With the noise floor on, each image is asked of "Aliyun" twice: the re-ask carries every parameter
    of the first (the image URL for URL actions, the image body for ocr-api) under a valid signature."""
    from aiohttp import web

    from tests.fake_aliyun import FakeAliyun
    from tests.harness import AppServer, clean_env

    fake = FakeAliyun()
    server = AppServer(fake.app)
    fake.base_url = server.url
    folder = tmp_path / "poc"
    folder.mkdir()

    def static() -> web.Application:
        app = web.Application()
        app.router.add_static("/poc/", folder)
        return app

    files = AppServer(static)
    (folder / "board-1.png").write_bytes(imagegen.text_image("PNG"))
    actions = ["RecognizeCharacter", "RecognizeGeneral"]  # a URL action and a raw-body (ocr-api) one
    env = clean_env()
    env.update(VISION_PROXY_DATA_DIR=str(tmp_path / "data"), VISION_PROXY_FETCH_ALLOW="127.0.0.1/32",
               VISION_PROXY_SHADOW_NOISE="true",
               VISION_PROXY_ALIYUN_ENDPOINTS=json.dumps({"ocr": server.url, "ocr-api": server.url}))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "proxy", "compare", str(folder), "--actions", ",".join(actions),
             "--url-prefix", f"{files.url}/poc", "--aliyun-key", ":".join(ALIYUN_KEY),
             "--store", str(tmp_path / "data" / STORE_SUBDIR), "--out", str(tmp_path / "poc.html")],
            env=env, capture_output=True, text=True, timeout=300)
    finally:
        server.close()
        files.close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    for action in actions:
        asks = [r for r in fake.received if r["action"] == action]
        assert len(asks) == 2 and all(r["verdict"] == "ok" for r in asks), asks
        assert asks[0]["params"] == asks[1]["params"] and asks[0]["body_sha256"] == asks[1]["body_sha256"], asks
    assert "ImageURL" in next(r for r in fake.received if r["action"] == "RecognizeCharacter")["params"]
    records = list(RecordStore(tmp_path / "data" / STORE_SUBDIR).records())
    assert len(records) == len(actions)
    assert all(r.noise is not None and "noise_error" not in r.details for r in records), [r.details for r in records]

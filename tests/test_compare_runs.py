"""`vision-proxy compare` as a lead runs it, twice, as real processes: a fresh record store per run, the Aliyun
key from the environment, a non-zero exit when nothing could be compared, the dry run with no key, and one
clear line for each wrong input. "Aliyun" is tests/fake_aliyun.py, AWS the embedded backend."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from proxy.shadow.records import RecordStore
from tests import imagegen
from tests.fake_aliyun import ALIYUN_KEY, FakeAliyun
from tests.harness import AppServer, clean_env


@pytest.fixture(scope="module")
def poc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeAliyun, Path, str]]:
    folder = tmp_path_factory.mktemp("poc")
    (folder / "board-1.png").write_bytes(imagegen.text_image("PNG"))
    (folder / "board-2.jpg").write_bytes(imagegen.text_image("JPEG"))
    fake = FakeAliyun()
    server = AppServer(fake.app)
    fake.base_url = server.url

    def static() -> web.Application:
        app = web.Application()
        app.router.add_static("/poc/", folder)
        return app

    files = AppServer(static)
    yield fake, folder, f"{files.url}/poc"
    server.close()
    files.close()


def run(fake: FakeAliyun, data: Path, *args: str, key_env: bool = True) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env.update(VISION_PROXY_DATA_DIR=str(data), VISION_PROXY_FETCH_ALLOW="127.0.0.1/32",
               VISION_PROXY_ALIYUN_ENDPOINTS=json.dumps({"ocr": fake.base_url, "ocr-api": fake.base_url}))
    if key_env:
        env.update(ALIBABA_CLOUD_ACCESS_KEY_ID=ALIYUN_KEY[0], ALIBABA_CLOUD_ACCESS_KEY_SECRET=ALIYUN_KEY[1])
    return subprocess.run([sys.executable, "-m", "proxy", "compare", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def counts(proc: subprocess.CompletedProcess[str]) -> tuple[Counter[str], Path]:
    found = re.search(r"records in (\S+)", proc.stderr)
    assert found, proc.stderr[-2000:]
    store = Path(found.group(1))
    return Counter(r.outcome for r in RecordStore(store).records()), store


def test_run_twice_on_one_folder_reports_the_same_counts(poc: tuple[FakeAliyun, Path, str], tmp_path: Path) -> None:
    fake, folder, prefix = poc
    fake.flaw = None
    args = (str(folder), "--actions", "RecognizeCharacter,RecognizeGeneral", "--url-prefix", prefix)
    first, second = run(fake, tmp_path, *args), run(fake, tmp_path, *args)
    assert first.returncode == 0 and second.returncode == 0, (first.stderr[-2000:], second.stderr[-2000:])
    (c1, s1), (c2, s2) = counts(first), counts(second)
    assert s1 != s2 and c1 == c2 == Counter(matched=4), (c1, c2)
    report = Path(second.stdout.strip())
    assert report.is_file() and report.parent == s2.parent and "4 comparisons" not in report.read_text()
    assert all(r["verdict"] == "ok" and r["params"].get("AccessKeyId") is None for r in fake.received)


def test_nothing_compared_exits_non_zero(poc: tuple[FakeAliyun, Path, str], tmp_path: Path) -> None:
    fake, folder, prefix = poc
    fake.flaw = "error"
    try:
        proc = run(fake, tmp_path, str(folder), "--actions", "RecognizeCharacter", "--url-prefix", prefix)
    finally:
        fake.flaw = None
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "nothing could be compared" in proc.stderr and "last error" in proc.stderr  # the progress bar says why
    assert counts(proc)[0] == Counter(error=2)


def test_without_a_key_says_where_to_put_one(poc: tuple[FakeAliyun, Path, str], tmp_path: Path) -> None:
    fake, folder, prefix = poc
    proc = run(fake, tmp_path, str(folder), "--actions", "RecognizeCharacter", "--url-prefix", prefix, key_env=False)
    assert proc.returncode == 2 and "ALIBABA_CLOUD_ACCESS_KEY_ID" in proc.stderr and "Traceback" not in proc.stderr


def test_key_from_a_file(poc: tuple[FakeAliyun, Path, str], tmp_path: Path) -> None:
    fake, folder, _ = poc
    fake.flaw = None
    keyfile = tmp_path / "aliyun.key"
    keyfile.write_text(":".join(ALIYUN_KEY) + "\n")
    proc = run(fake, tmp_path, str(folder), "--actions", "RecognizeGeneral", "--aliyun-key-file", str(keyfile),
               key_env=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert counts(proc)[0] == Counter(matched=2)


def test_dry_run_needs_no_aliyun_key(poc: tuple[FakeAliyun, Path, str], tmp_path: Path) -> None:
    """The embedded backend against itself: no key, no URL prefix, and the report says neither side was real."""
    fake, folder, _ = poc
    seen = len(fake.received)
    proc = run(fake, tmp_path, str(folder), "--actions", "RecognizeCharacter", "--dry-run", key_env=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert counts(proc)[0] == Counter(matched=2) and len(fake.received) == seen  # "Aliyun" was never asked
    html = Path(proc.stdout.strip()).read_text()
    assert "embedded demo models — not the kit" in html and "standing in for Aliyun" in html


@pytest.mark.parametrize(("args", "says"), [
    (["/no/such/folder"], "no such folder: /no/such/folder"),
    (["{folder}", "--actions", "GetAsyncJobResult"], "GetAsyncJobResult takes no image"),
    (["{folder}", "--actions", "RecognizeNothing"], "unknown action 'RecognizeNothing'; choose from:"),
    (["{folder}", "--actions", "RecognizeCharacter"], "RecognizeCharacter needs --url-prefix"),
])
def test_wrong_input_is_one_line(poc: tuple[FakeAliyun, Path, str], tmp_path: Path, args: list[str],
                                 says: str) -> None:
    fake, folder, _ = poc
    proc = run(fake, tmp_path, *(a.format(folder=folder) for a in args))
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("compare:")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(lines) == 1 and says in lines[0], proc.stderr[-2000:]



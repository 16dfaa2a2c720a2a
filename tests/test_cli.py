"""`vision-proxy serve` as a newcomer runs it: a real process, the embedded backend, a real SDK."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from alibabacloud_ocr20191230 import models as ocr_models

from tests import sdk
from tests.harness import clean_env, free_port
from tests.processes import ProxyProcess, proxy_process
from tests.test_sdk_ocr import assert_lines_found


@pytest.fixture(scope="module")
def served() -> Iterator[ProxyProcess]:
    with proxy_process({"VISION_PROXY_CALLER_KEYS": "testid:testsecret",
                        "VISION_PROXY_FETCH_ALLOW": "127.0.0.1/32"}) as proc:
        yield proc
        code = proc.stop(timeout=20)
        out = proc.output()
    assert code == 0, out
    assert "testsecret" not in out  # secrets never logged


def test_served_process_reads_a_real_image(served, images):
    client = sdk.ocr(served.endpoint)
    resp = client.recognize_character(ocr_models.RecognizeCharacterRequest(
        image_url=f"{images.url}/text.png", min_height=10, output_probability=True))
    assert_lines_found([r.text for r in resp.body.data.results])


def test_bad_config_fails_at_start_naming_the_key():
    proc = subprocess.run([sys.executable, "-m", "proxy", "serve"], env=clean_env(VISION_PROXY_PORT="x"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "port (VISION_PROXY_PORT)" in proc.stderr


def test_refuses_unauthenticated_bind_off_loopback():
    proc = subprocess.run([sys.executable, "-m", "proxy", "serve", "--host", "0.0.0.0", "--port", "0"],
                          env=clean_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "refusing" in proc.stderr


def test_bad_mapping_fails_at_start_naming_file_and_field(tmp_path):
    (tmp_path / "ocr").mkdir()
    (tmp_path / "ocr" / "RecognizeCharacter.yaml").write_text(
        "product: ocr\nversion: '2019-12-30'\naction: RecognizeCharacter\nkit_route: ocr\n"
        "converter: ocr.recognize_character\nparameters: {MinHeight: {type: integr}}\n")
    proc = subprocess.run([sys.executable, "-m", "proxy", "serve", "--port", str(free_port())],
                          env=clean_env(VISION_PROXY_MAPPINGS_DIR=str(tmp_path)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "mappings/ocr/RecognizeCharacter.yaml" in proc.stderr and "parameters.MinHeight.type" in proc.stderr

"""First steps that explain themselves: each misconfiguration a newcomer makes gets one clear line naming
the key and the fix, from the real CLI process or the real proxy driven by the real SDK."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from alibabacloud_ocr20191230 import models as ocr_models
from Tea.exceptions import TeaException

from proxy.config import load_settings
from proxy.hints import startup_warnings, unknown_variables
from tests import sdk
from tests.conftest import CALLER_KEYS
from tests.harness import ProxyServer, clean_env, free_port


def cli(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proxy", *args], env=clean_env(**env), capture_output=True,
                          text=True, timeout=timeout)


def one_line(proc: subprocess.CompletedProcess[str], prefix: str) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(prefix)]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_a_busy_port_is_one_line_and_a_misspelt_variable_names_the_right_one(busy_port, tmp_path):
    proc = cli("serve", "--port", str(busy_port), VISION_PROXY_KIT_ULR="https://kit.example",
               VISION_PROXY_ADMIN_PORT=str(free_port()), VISION_PROXY_DATA_DIR=str(tmp_path))
    assert proc.returncode == 2
    assert "address already in use" in one_line(proc, "serve:") and "VISION_PROXY_PORT" in proc.stderr
    warning = one_line(proc, "config warning:")
    assert "VISION_PROXY_KIT_ULR is not a setting" in warning and "did you mean VISION_PROXY_KIT_URL?" in warning


def test_nested_and_known_variables_are_not_reported():
    assert unknown_variables({"VISION_PROXY_KIT_ROUTES__OCR": "x", "VISION_PROXY_PORT": "1", "HOME": "/"}) == []
    (line,) = unknown_variables({"VISION_PROXY_SHADOW_SAMPEL": "1"})
    assert "VISION_PROXY_SHADOW_SAMPLE" in line


def test_semicolon_separated_keys_refuse_to_start():
    proc = cli("serve", "--port", "0", VISION_PROXY_CALLER_KEYS="ak1:sk1;ak2:sk2")
    line = one_line(proc, "config error:")
    assert proc.returncode == 2 and "caller_keys (VISION_PROXY_CALLER_KEYS)" in line and "not ';'" in line
    assert "sk1" not in proc.stderr  # the value is never echoed


def test_shadow_without_keys_warns():
    (line,) = startup_warnings(load_settings(None, shadow_mode="shadow"), {})
    assert "VISION_PROXY_SHADOW_KEYS" in line and "shadow_mode=shadow" in line
    assert startup_warnings(load_settings(None, shadow_mode="shadow", shadow_keys="a=b:c"), {}) == []


def test_a_china_region_with_a_global_kit_host_warns():
    settings = load_settings(None, aws_region="cn-northwest-1",
                             kit_url="https://abc123.execute-api.us-east-1.amazonaws.com")
    (line,) = startup_warnings(settings, {})
    assert "VISION_PROXY_AWS_REGION=cn-northwest-1" in line and "amazonaws.com.cn" in line
    fine = load_settings(None, aws_region="cn-northwest-1",
                         kit_url="https://abc123.execute-api.cn-northwest-1.amazonaws.com.cn")
    assert startup_warnings(fine, {}) == []


def test_the_ssrf_refusal_names_the_setting(images, capfd):
    """A first SDK call with a loopback image URL: the answer (this proxy only listens on loopback) and the
    log both say which setting would allow it."""
    proxy = ProxyServer(caller_keys=CALLER_KEYS)  # no fetch_allow
    try:
        with pytest.raises(TeaException) as caught:
            sdk.ocr(proxy.endpoint).recognize_character(ocr_models.RecognizeCharacterRequest(
                image_url=f"{images.url}/text.png", min_height=10, output_probability=True))
    finally:
        proxy.close()
    assert caught.value.code == "InvalidImage.URL" and "VISION_PROXY_FETCH_ALLOW" in caught.value.message
    logged = capfd.readouterr().out
    assert "image.url_refused" in logged and "VISION_PROXY_FETCH_ALLOW" in logged


def test_version_and_help_for_every_command():
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("vision-proxy ")
    top = cli("--help")
    assert all(name in top.stdout for name in ("serve", "compare", "report"))
    compare = cli("compare", "--help")
    for needed in ("--store", "--report", "--dry-run", "--aliyun-key-file", "ALIBABA_CLOUD_ACCESS_KEY_ID",
                   "RecognizeGeneral (default)", "Exit status"):
        assert needed in compare.stdout, needed
    assert "--host" in cli("serve", "--help").stdout and "--store" in cli("report", "--help").stdout


def test_compare_with_an_async_only_action_is_one_line(tmp_path):
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    proc = cli("compare", str(tmp_path), "--actions", "GetAsyncJobResult", "--dry-run",
               VISION_PROXY_DATA_DIR=str(tmp_path / "data"))
    assert proc.returncode == 2 and "GetAsyncJobResult takes no image" in one_line(proc, "compare:")

"""The Node Tea SDK's `*Advance` methods through the proxy, redirected two ways: (a) `_openPlatformEndpoint`
set, and (c) no code change at all (Aliyun's own names resolve to the proxy, HTTPS, a private CA).

The Node SDK (tests/node/package.json, pinned by its lockfile) is installed with `npm ci` on first use into
.venv/node-<lockfile hash>/ and reused, as scripts/checks/chart installs its tools; without node and npm,
or when the install cannot reach the registry, the test is skipped and says so. The Node client uploads over
HTTPS: it is given the test CA (NODE_EXTRA_CA_CERTS), and a preload (tests/node/resolve.js, the stand-in for
a private DNS zone) resolves the upload host and, for way (c), Aliyun's names to loopback inside its own
process, ports 443 and 80 going to the proxy's TLS and plain ports; the SDK's code is untouched.
Way (b) (HTTP_PROXY) does not apply to this SDK: it honours no proxy setting for API calls (README).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests import sdk
from tests.harness import ProxyServer, free_port, metric_value
from tests.test_uploads import fetch, monkeypatch_module, portrait, tls_files, upload_proxy  # noqa: F401 (fixtures)
from tests.tlsnames import ALIYUN_NAMES, UPLOAD_NAME, resolve_to

NODE_DIR = Path(__file__).parent / "node"
DEFAULT_ENDPOINT = "imageseg.cn-shanghai.aliyuncs.com"  # what the SDK picks for cn-shanghai by itself


def _node_modules() -> Path:
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are not installed: the Node SDK test cannot run")
    lock = (NODE_DIR / "package-lock.json").read_bytes()
    target = Path(__file__).parent.parent / ".venv" / f"node-{hashlib.sha256(lock).hexdigest()[:12]}"
    if not (target / "node_modules" / "@alicloud" / "imageseg20191230").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(NODE_DIR / name, target / name)
        done = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=target,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.skip(f"npm ci failed (no registry?): {done.stderr[-300:]}")
    return target / "node_modules"


@pytest.fixture(scope="module")
def nproxy(tls_files, tmp_path_factory) -> Iterator[ProxyServer]:  # noqa: F811
    with upload_proxy(tls_files, tmp_path_factory.mktemp("node-uploads")) as server:
        yield server


def _requests_seen() -> float:
    """Every API request the proxy in this process answered (the registry is this test run's)."""
    return metric_value("vision_proxy_requests_total")


def _run_node(modules: Path, job: dict[str, object], zone: dict[str, object], ca: Path,
              **env: str) -> subprocess.CompletedProcess[str]:
    """advance.js in a fresh node, the test's DNS zone preloaded (tests/node/resolve.js)."""
    environ = {**os.environ, "NODE_PATH": str(modules), "NODE_EXTRA_CA_CERTS": str(ca),
               "TEST_RESOLVE": json.dumps(zone), **env}
    return subprocess.run(["node", "--require", str(NODE_DIR / "resolve.js"), str(NODE_DIR / "advance.js"),
                           json.dumps(job)], env=environ, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("way", ["endpoint", "private_dns"])
@pytest.mark.parametrize("action", ["SegmentBody", "SegmentCommonImage"])
def test_node_sdk_advance(nproxy, tls_files, portrait, tmp_path, action, way):  # noqa: F811
    modules = _node_modules()
    image = tmp_path / "person.jpg"
    image.write_bytes(portrait)
    own = nproxy.services.backends.images.own
    before = own.__self__.reads  # type: ignore[union-attr]
    zone: dict[str, object] = {"suffixes": [UPLOAD_NAME]}
    if way == "private_dns":  # (c): Aliyun's names too, on the ports an app in production connects to
        zone.update(names=list(ALIYUN_NAMES), ports={443: nproxy.tls_port, 80: nproxy.port})  # type: ignore[attr-defined]
    job = {"endpoint": nproxy.endpoint, "key": sdk.KEY, "secret": sdk.SECRET, "file": str(image),
           "action": action, "way": way}
    done = _run_node(modules, job, zone, tls_files[0])
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout)
    if way == "private_dns":  # the client kept the endpoint the SDK chose itself
        assert answer["endpoint"] == DEFAULT_ENDPOINT
    url = answer["body"]["Data"]["ImageURL"]
    with resolve_to(ALIYUN_NAMES, (), {443: nproxy.tls_port, 80: nproxy.port}):  # type: ignore[attr-defined]
        mask = fetch(url, tls_files[0])  # (c): the result URL names the Aliyun host the app called
    assert mask.size == Image.open(io.BytesIO(portrait)).size
    assert own.__self__.reads == before + 1  # type: ignore[union-attr]


def test_node_sdk_honours_no_proxy_setting(nproxy, tls_files, portrait, tmp_path):  # noqa: F811
    """Way (b) does not apply to Node: with `httpProxy` in the Config and HTTP_PROXY/HTTPS_PROXY in the
    environment, the client still connects straight to openplatform.aliyuncs.com (resolved here to a closed
    port on loopback), and the proxy sees nothing. Should a later SDK honour them, this fails and the README's
    Node paragraph must change (@darabonba/typescript dist/core.js `doAction` passes no agent for them)."""
    modules = _node_modules()
    image = tmp_path / "person.jpg"
    image.write_bytes(portrait)
    closed = free_port()  # nothing listens there
    zone = {"names": list(ALIYUN_NAMES), "suffixes": [UPLOAD_NAME], "ports": {80: closed, 443: closed}}
    job = {"key": sdk.KEY, "secret": sdk.SECRET, "file": str(image), "action": "SegmentBody",
           "way": "http_proxy", "proxy": nproxy.url}
    before = _requests_seen()
    done = _run_node(modules, job, zone, tls_files[0], HTTP_PROXY=nproxy.url, HTTPS_PROXY=nproxy.url,
                     http_proxy=nproxy.url, https_proxy=nproxy.url, NO_PROXY="", no_proxy="")
    assert done.returncode != 0 and "ECONNREFUSED" in done.stderr, (done.stdout[-500:], done.stderr[-2000:])
    assert f":{closed}" in done.stderr  # it went to openplatform.aliyuncs.com's address, not the proxy's
    assert _requests_seen() == before

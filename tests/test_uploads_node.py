"""The Node Tea SDK's `*Advance` methods through the proxy (redirected by `_openPlatformEndpoint`).

The Node SDK (tests/node/package.json, pinned by its lockfile) is installed with `npm ci` on first use into
.venv/node-<lockfile hash>/ and reused, as scripts/checks/chart installs its tools; without node and npm,
or when the install cannot reach the registry, the test is skipped and says so. The Node client uploads over
HTTPS too: it is given the test CA (NODE_EXTRA_CA_CERTS) and resolves the upload host to loopback inside its
own process (tests/node/advance.js hooks dns.lookup); the SDK's code is untouched.
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
import requests
from PIL import Image

from tests import sdk
from tests.harness import ProxyServer
from tests.test_uploads import monkeypatch_module, portrait, tls_files, upload_proxy  # noqa: F401 (fixtures)
from tests.tlsnames import UPLOAD_NAME

NODE_DIR = Path(__file__).parent / "node"


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


@pytest.mark.parametrize("action", ["SegmentBody", "SegmentCommonImage"])
def test_node_sdk_advance(nproxy, tls_files, portrait, tmp_path, action):  # noqa: F811
    modules = _node_modules()
    image = tmp_path / "person.jpg"
    image.write_bytes(portrait)
    own = nproxy.services.backends.images.own
    before = own.__self__.reads  # type: ignore[union-attr]
    job = {"endpoint": nproxy.endpoint, "key": sdk.KEY, "secret": sdk.SECRET, "file": str(image),
           "uploadName": UPLOAD_NAME, "action": action}
    env = {**os.environ, "NODE_PATH": str(modules), "NODE_EXTRA_CA_CERTS": str(tls_files[0])}
    done = subprocess.run(["node", str(NODE_DIR / "advance.js"), json.dumps(job)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    body = json.loads(done.stdout)
    url = body["Data"]["ImageURL"]
    with requests.Session() as session:
        session.trust_env = False
        mask = Image.open(io.BytesIO(session.get(url, timeout=30).content))
    assert mask.size == Image.open(io.BytesIO(portrait)).size
    assert own.__self__.reads == before + 1  # type: ignore[union-attr]

"""An older Python SDK generation's `segment_body_advance` through the proxy, with no code change but
HTTP_PROXY: alibabacloud_imageseg20191230 2.0.0 hard-codes `openplatform.aliyuncs.com` (no
`_open_platform_endpoint` yet) and uploads with the OSS SDK over the client's protocol, here plain HTTP, so
the upload too reaches the proxy through HTTP_PROXY (Host `{Bucket}.{upload_host}`).

That generation cannot share the virtualenv with the current one (it needs openplatform 1.x): it is installed
with `pip install --target` on first use into .venv/oldsdk-<requirements hash>/ and run in a subprocess
whose PYTHONPATH puts it first (tests/oldsdk/). Without the package index the test is skipped and says so.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from matplotlib import cbook
from PIL import Image

from tests import sdk
from tests.conftest import CALLER_KEYS
from tests.harness import ProxyServer

OLD = Path(__file__).parent / "oldsdk"


def _old_sdk() -> Path:
    requirements = OLD / "requirements.txt"
    target = Path(__file__).parent.parent / ".venv" / \
        f"oldsdk-{hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]}"
    if not (target / "alibabacloud_imageseg20191230").is_dir():
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(target), "-r",
                               str(requirements)], capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not (target / "alibabacloud_imageseg20191230").is_dir():
            pytest.skip(f"cannot install the older SDK generation: {done.stderr[-300:]}")
    return target


def test_older_generation_uploads_over_http_through_http_proxy(tmp_path):
    target = _old_sdk()
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        portrait = f.read()
    image = tmp_path / "person.jpg"
    image.write_bytes(portrait)
    with ProxyServer(caller_keys=CALLER_KEYS, data_dir=tmp_path / "data", upload_host="up.vision.internal") as proxy:
        env = {**os.environ, "PYTHONPATH": str(target), "HTTP_PROXY": proxy.url}
        env.pop("NO_PROXY", None), env.pop("no_proxy", None)
        job = {"key": sdk.KEY, "secret": sdk.SECRET, "file": str(image)}
        done = subprocess.run([sys.executable, str(OLD / "advance.py"), json.dumps(job)], env=env,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
        url = json.loads(done.stdout)["Data"]["ImageURL"]
        assert url.startswith("http://imageseg.cn-shanghai.aliyuncs.com/results/")  # the Host the app used
        assert proxy.services.backends.images.own.__self__.reads == 1  # type: ignore[union-attr]
        uploads = list((tmp_path / "data" / "results" / "upload").rglob("*"))
        assert any(p.is_file() for p in uploads)  # the upload came over plain HTTP, through HTTP_PROXY
        with requests.Session() as session:  # the app downloads the result the same way
            session.trust_env = False
            resp = session.get(url, proxies={"http": proxy.url}, timeout=30)
        assert Image.open(io.BytesIO(resp.content)).size == Image.open(io.BytesIO(portrait)).size

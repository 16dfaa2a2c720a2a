"""A real S3-API server for the tests: nanio as a subprocess on a loopback port.

nanio checks SigV4 presigned URLs and their expiry as S3 does (moto_server serves a tampered or
expired presigned URL with 200), so the S3 result store is tested against the refusals S3 gives.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import botocore.session
import requests
from botocore.config import Config

from tests.harness import free_port

REGION = "cn-northwest-1"
S3_KEY_ID, S3_SECRET = "AKIARESULTSTESTKEY01", "results-test-secret-access-key"
BUCKET = "vision-results"



def s3_client(endpoint: str) -> Any:
    return botocore.session.Session().create_client(
        "s3", region_name=REGION, endpoint_url=endpoint, aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET, config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


@contextmanager
def running_s3(root: Path) -> Iterator[str]:
    """Start the server with one bucket; yield its endpoint URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "NANIO_ACCESS_KEY": S3_KEY_ID, "NANIO_SECRET_KEY": S3_SECRET}
    log_path = root / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nanio", "serve", "--data-dir", str(root / "data"), "--host", "127.0.0.1",
             "--port", str(port), "--region", REGION, "--no-access-log", "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the S3 server exited ({proc.returncode}):\n{log_path.read_text()}")
            try:
                requests.get(endpoint, timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the S3 server did not answer within 30 s:\n{log_path.read_text()}") from None
                time.sleep(0.1)
        client = s3_client(endpoint)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        client.close()
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

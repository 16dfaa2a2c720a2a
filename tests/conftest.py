"""Shared servers: one proxy (embedded local backend, real OCR model) and one image server per session."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiohttp import web

from tests import imagegen
from tests.harness import AppServer, ProxyServer
from tests.kit_faults import FaultKit
from tests.s3server import running_s3

CALLER_KEYS = "testid:testsecret,STS.tempid:tempsecret:the-sts-token"


def _image_app() -> web.Application:
    text_png = imagegen.text_image("PNG")
    files = {
        "/text.png": text_png,
        "/text.jpg": imagegen.text_image("JPEG"),
        "/rotated.jpg": imagegen.text_image("JPEG", exif_orientation=6),
        "/notimage.txt": b"this is not an image\n" * 10,
        "/big.png": imagegen.noise_image(1100, 1100),  # ~3.6 MB: over RecognizeCharacter's 3 MB
        "/tiny.png": imagegen.blank_image(10, 10),
        "/wide.png": imagegen.blank_image(4000, 60),  # aspect ratio 66: over ocr-api's 50
    }

    async def serve(request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/slow.png":
            await asyncio.sleep(10)
        if path == "/redirect-private":
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
        if path == "/redirect-ok":
            raise web.HTTPFound("/text.png")
        if path in files:
            return web.Response(body=files[path], content_type="application/octet-stream")
        return web.Response(status=404, text="not found")

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    return app


@pytest.fixture(scope="session")
def images() -> Iterator[AppServer]:
    with AppServer(_image_app) as server:
        yield server


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_s3(tmp_path_factory.mktemp("s3")) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    """Authenticating proxy in front of the embedded backend; may fetch from the loopback image server."""
    with ProxyServer(caller_keys=CALLER_KEYS, fetch_allow="127.0.0.1/32", fetch_timeout_seconds=2,
                     data_dir=tmp_path_factory.mktemp("results")) as server:
        yield server


@pytest.fixture(scope="module")
def kit() -> Iterator[tuple[FaultKit, AppServer]]:
    """A kit that fails on purpose (tests/kit_faults.py), and its server."""
    fault = FaultKit()
    with AppServer(fault.app) as server:
        yield fault, server

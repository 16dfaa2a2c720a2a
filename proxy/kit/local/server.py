"""The embedded backend: an HTTP server that speaks the AI Solution Kit's API and checks SigV4 like API
Gateway with IAM auth. The proxy reaches it over loopback HTTP with generated credentials, so the path a
newcomer runs is the production path.

Only what the kit does is reproduced: routes under the stage, `{url}` or `{img}` JSON bodies, plain-text
400s, and API Gateway's JSON 403 for a bad signature or an undeployed route.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from botocore.credentials import Credentials

from ...config import KitRoutes
from ..sigv4 import SigV4Rejected, verify
from .ocr import MODEL_NAME, OcrEngine

log = structlog.get_logger("kit.local")
Model = Callable[[bytes], Any]


def _text(status: int, message: str) -> web.Response:
    # The kit's lambda_return sends plain text with no Content-Type; API Gateway then reports JSON.
    return web.Response(status=status, body=message.encode(), content_type="application/json")


def _gateway(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


class LocalBackend:
    def __init__(self, region: str, stage: str, routes: KitRoutes, threads: int = 1) -> None:
        self.region = region
        self.stage = stage
        self.credentials = Credentials("AKIDLOCAL" + secrets.token_hex(6).upper(), secrets.token_urlsafe(30))
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="local-model")
        self._models: dict[str, tuple[str, Model]] = {routes.ocr: (MODEL_NAME, OcrEngine().recognise)}
        self._runner: web.AppRunner | None = None
        self._fetch: aiohttp.ClientSession | None = None
        self.base_url = ""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=12 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._handle)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._fetch = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.base_url = f"http://{host}:{self._runner.addresses[0][1]}"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._fetch is not None:
            await self._fetch.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(request.method, f"http://{request.host}{request.raw_path}", request.headers,
                   hashlib.sha256(body).hexdigest(), self.credentials.access_key,
                   self.credentials.secret_key, self.region)
        except SigV4Rejected as exc:
            return _gateway(403, str(exc))
        stage, _, route = request.path.strip("/").partition("/")
        if request.method != "POST" or stage != self.stage or route not in self._models:
            return _gateway(403, "Missing Authentication Token")
        name, model = self._models[route]
        try:
            event = json.loads(body)
        except ValueError:
            return _text(400, "invalid param")
        if not isinstance(event, dict):
            return _text(400, "invalid param")
        if "url" in event and "img" in event:
            return _text(400, "`url` and `img` cannot be used at the same time")
        image = await self._image(event)
        if isinstance(image, web.Response):
            return image
        try:
            result = await asyncio.get_running_loop().run_in_executor(self._executor, model, image)
        except (OSError, ValueError) as exc:
            log.info("local.model_rejected", route=route, error=type(exc).__name__)
            return _text(400, "`parameter `img` illegal" if "img" in event else "`parameter `url` illegal")
        response = web.Response(body=json.dumps(result).encode(), content_type="application/json")
        response.headers["x-local-model"] = name
        return response

    async def _image(self, event: dict[str, Any]) -> bytes | web.Response:
        if isinstance(event.get("img"), str):
            try:
                return base64.b64decode(event["img"])
            except (binascii.Error, ValueError):
                return _text(400, "`parameter `img` illegal")
        url = event.get("url")
        if isinstance(url, str) and url.startswith(("http://", "https://")) and self._fetch is not None:
            try:
                async with self._fetch.get(url) as resp:
                    if resp.status == 200:
                        return await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                pass
            return _text(400, "`parameter `url` illegal")
        return _text(400, "`parameter `img` illegal" if "img" in event else "`parameter `url` illegal")


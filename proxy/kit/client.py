"""Call the AI Solution Kit: build the JSON body, SigV4-sign it, send it on one pooled session, and turn
every failure shape the kit has (plain-text 400s, gateway 403/413/429/502/504, SageMaker errors that
arrive as HTTP 200, dropped connections) into an Aliyun error.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import structlog

from ..aliyun.errors import AliyunError, Err
from ..images import LoadedImage
from ..observability import metrics
from .credentials import CredentialSource
from .sigv4 import sign

log = structlog.get_logger("kit")
OFFLOAD_BYTES = 512 * 1024  # base64, hashing and JSON parsing above this size run in a worker thread


def image_body(image: LoadedImage, **extra: Any) -> tuple[bytes, str]:
    """`{"img": "<base64>", ...}` spliced as bytes (no re-serialising of the base64), and its SHA-256."""
    tail = b"".join(b"," + json.dumps(k).encode() + b":" + json.dumps(v).encode() for k, v in extra.items())
    if image.data is None:
        body = b'{"url":' + json.dumps(image.url).encode() + tail + b"}"
    else:
        body = b'{"img":"' + base64.b64encode(image.data) + b'"' + tail + b"}"
    return body, hashlib.sha256(body).hexdigest()


class KitClient:
    """`connect_url`, `host` and `api_id` reach the kit as a private API through an execute-api VPC
    endpoint: the connection (and TLS name check) goes to `connect_url`, while `Host` and `x-apigw-api-id`,
    which tell API Gateway which API is meant, are sent exactly as signed."""

    def __init__(self, route_url: Callable[[str], str], region: str, credentials: CredentialSource,
                 timeout: float, connect_timeout: float, max_connections: int, connect_url: str | None = None,
                 host: str | None = None, api_id: str | None = None) -> None:
        self.route_url = route_url
        self.region = region
        self.connect_url = urlsplit(connect_url) if connect_url else None
        self.host = host
        self.extra_headers = {"Content-Type": "application/json", **({"x-apigw-api-id": api_id} if api_id else {})}
        self.credentials = credentials
        self.timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        await self.credentials.start()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=30),
            timeout=self.timeout, auto_decompress=True,
            skip_auto_headers=("User-Agent", "Content-Type"),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def invoke_image(self, route: str, image: LoadedImage, **extra: Any) -> Any:
        if image.data is not None and len(image.data) > OFFLOAD_BYTES:
            body, digest = await asyncio.to_thread(image_body, image, **extra)
        else:
            body, digest = image_body(image, **extra)
        return await self.invoke(route, body, digest)

    async def invoke_for_image(self, route: str, image: LoadedImage, **extra: Any) -> bytes:
        """Routes that answer `{"result": "<base64 PNG>"}` (segmentation, super-resolution): the PNG bytes."""
        answer = await self.invoke_image(route, image, **extra)
        encoded = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(encoded, str):
            log.warning("kit.unexpected_shape", route=route, type=type(answer).__name__)
            raise Err.INTERNAL_ERROR()
        try:
            if len(encoded) > OFFLOAD_BYTES:
                return await asyncio.to_thread(base64.b64decode, encoded, validate=True)
            return base64.b64decode(encoded, validate=True)
        except ValueError:
            log.warning("kit.bad_base64", route=route)
            raise Err.INTERNAL_ERROR() from None

    async def invoke(self, route: str, body: bytes, body_sha256: str) -> Any:
        status, raw, retry_after = await self._send(route, body, body_sha256)
        if status != 200:
            raise _status_error(route, status, raw, retry_after)
        try:
            parsed = await asyncio.to_thread(json.loads, raw) if len(raw) > OFFLOAD_BYTES else json.loads(raw)
        except ValueError:
            log.warning("kit.bad_json", route=route)
            raise Err.INTERNAL_ERROR() from None
        if isinstance(parsed, dict) and "OriginalStatusCode" in parsed:  # SageMaker error arriving as 200
            log.warning("kit.model_error", route=route, error_code=parsed.get("ErrorCode"))
            raise _status_error(route, int(parsed.get("OriginalStatusCode") or 500),
                                str(parsed.get("OriginalMessage", "")).encode(), None)
        return parsed

    async def _send(self, route: str, body: bytes, body_sha256: str) -> tuple[int, bytes, str | None]:
        """POST once, or twice when the first connection could not be made (nothing was sent: safe)."""
        assert self._session is not None, "KitClient.start() was not awaited"
        url = self.route_url(route)
        target = self._target(url)
        for attempt in (1, 2):
            creds = await self.credentials.frozen()  # re-signed on retry: the signature carries a timestamp
            headers = sign(url, body, body_sha256, creds, self.region, self.extra_headers, host=self.host)
            started = time.perf_counter()
            status: int | str = "error"
            try:
                async with self._session.post(target, data=body, headers=headers) as resp:
                    status = resp.status
                    return resp.status, await resp.read(), resp.headers.get("Retry-After")
            except aiohttp.ClientConnectorError as exc:
                if attempt == 1:
                    metrics.KIT_RETRIES.labels(route).inc()
                    continue
                log.warning("kit.unreachable", route=route, error=type(exc).__name__)
                raise Err.SERVICE_UNAVAILABLE() from None
            except TimeoutError:
                status = "timeout"
                metrics.KIT_TIMEOUTS.labels(route).inc()
                raise Err.TIMEOUT() from None
            except aiohttp.ClientError as exc:
                log.warning("kit.unreachable", route=route, error=type(exc).__name__)
                raise Err.SERVICE_UNAVAILABLE() from None
            finally:
                seconds = time.perf_counter() - started
                metrics.KIT_CALLS.labels(route, str(status)).inc()
                metrics.KIT_SECONDS.labels(route).observe(seconds)
                log.debug("kit.call", route=route, status=status, bytes_out=len(body), ms=round(seconds * 1000, 1))
        raise AssertionError("unreachable")

    def _target(self, url: str) -> str:
        """Where the request goes: `url`'s path at `connect_url`'s address (the signed Host stays `url`'s)."""
        if self.connect_url is None:
            return url
        parts = urlsplit(url)
        return urlunsplit((self.connect_url.scheme, self.connect_url.netloc, parts.path, parts.query, ""))


def _status_error(route: str, status: int, raw: bytes, retry_after: str | None) -> AliyunError:
    text = raw[:500].decode("utf-8", "replace")
    log.warning("kit.error", route=route, status=status, body=text[:200])
    if status == 400:
        if "`img`" in text:
            return Err.IMAGE_FORMAT("the backend could not decode the image")
        if "`url`" in text:
            return Err.IMAGE_DOWNLOAD("the backend could not download the image")
        return Err.INVALID_PARAMETER("the image")
    if status == 413:
        return Err.IMAGE_SIZE("the backend's payload limit was exceeded")
    if status == 429:
        err = Err.THROTTLING()
        err.headers["x-acs-retry-after"] = str(_seconds(retry_after))
        return err
    if status == 504:
        return Err.TIMEOUT()
    if status in (403, 503):  # the kit refuses the proxy's own credentials, or is down: not the caller's fault
        return Err.SERVICE_UNAVAILABLE()
    return Err.INTERNAL_ERROR()

def _seconds(retry_after: str | None) -> int:
    """Whole seconds to wait (at least 1); an HTTP-date or garbage means 1."""
    try:
        return max(1, math.ceil(float(retry_after or 1)))
    except ValueError:
        return 1

"""Call the AI Solution Kit: build the JSON body, SigV4-sign it, send it on one pooled session, and turn
every failure shape the kit has (plain-text 400s, gateway 403/413/429/502/504, SageMaker errors that
arrive as HTTP 200, dropped connections) into an Aliyun error.

A route may instead go straight to its SageMaker endpoint (`InvokeEndpoint`, as the kit's maintainer advises
for big images: 60 s instead of API Gateway's 29 s). Only data differs: the URL, the signing service and
how a non-200 answer is read (SageMaker's error types, ModelError carrying the container's own status).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

import aiohttp
import botocore
import botocore.config
import botocore.session
import pybase64
import structlog

from .. import workers
from ..aliyun.errors import AliyunError, Err, invalid
from ..config import KitLimits
from ..images import LoadedImage
from ..observability import metrics
from .budget import answer_read_cap
from .credentials import CredentialSource
from .image_answer import result_image
from .payload import PACE_BYTES, ImageBody, body_size, digest, image_body, paced, pieces
from .sigv4 import sign
from .timeouts import call_timeout

log = structlog.get_logger("kit")
OFFLOAD_BYTES = 512 * 1024  # base64 decoding and JSON parsing above this size run in a worker thread


ErrorMap = Callable[[str, int, bytes, Mapping[str, str]], AliyunError]


@dataclass(frozen=True)
class Transport:
    """How one kind of kit route is reached: signing service, headers, where to connect, how errors read."""

    service: str
    headers: dict[str, str]
    errors: ErrorMap
    host: str | None = None  # the Host to sign and send when it is not the URL's own
    connect: SplitResult | None = None  # where to connect when it is not the URL's host


class KitClient:
    """`connect_url`, `host` and `api_id` reach the kit as a private API through an execute-api VPC
    endpoint: the connection (and TLS name check) goes to `connect_url`, while `Host` and `x-apigw-api-id`,
    which tell API Gateway which API is meant, are sent exactly as signed.

    `sagemaker_endpoints` (route -> endpoint name) sends those routes to SageMaker Runtime at `sagemaker_url`
    instead (default: botocore's regional endpoint, looked up in `start`)."""

    def __init__(self, route_url: Callable[[str], str], region: str, credentials: CredentialSource,
                 timeout: float, connect_timeout: float, max_connections: int, connect_url: str | None = None,
                 host: str | None = None, api_id: str | None = None,
                 sagemaker_endpoints: Mapping[str, str] | None = None, sagemaker_url: str | None = None,
                 route_timeouts: Mapping[str, float] | None = None, sagemaker_timeout: float = 65.0,
                 max_answer_bytes: int = answer_read_cap(KitLimits())) -> None:
        self.route_url = route_url
        self.max_answer_bytes = max_answer_bytes  # a longer answer is not the kit's: never read into memory
        self.region = region
        self.gateway = Transport(
            "execute-api", {"Content-Type": "application/json", **({"x-apigw-api-id": api_id} if api_id else {})},
            _gateway_error, host, urlsplit(connect_url) if connect_url else None)
        self.sagemaker = Transport("sagemaker", {"Content-Type": "application/json", "Accept": "application/json"},
                                   _sagemaker_error)
        self.sagemaker_endpoints = dict(sagemaker_endpoints or {})
        self.action_targets: dict[str, tuple[str, Transport]] = {}  # routing.py: an action's own backend
        self.sagemaker_url = sagemaker_url.rstrip("/") if sagemaker_url else None
        self.credentials = credentials
        self.timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        # per route, when no caller waits (see timeouts.py); a caller's own deadline comes from the context
        self.default_limit = timeout  # a route without a configured limit waits as long as a caller would
        self.route_limits = {**(route_timeouts or {}), **{r: sagemaker_timeout for r in self.sagemaker_endpoints}}
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        await self.credentials.start()
        if self.sagemaker_endpoints and self.sagemaker_url is None:
            self.sagemaker_url = await asyncio.to_thread(sagemaker_runtime_url, self.region)
            log.info("kit.sagemaker_runtime", url=self.sagemaker_url, routes=sorted(self.sagemaker_endpoints))
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=30),
            timeout=self.timeout, auto_decompress=True,
            skip_auto_headers=("User-Agent", "Content-Type"),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def invoke_image(self, route: str, image: LoadedImage, image_answer: bool = False, **extra: Any) -> Any:
        body = await image_body(image, **extra)
        return await self.invoke(route, body, digest(body), image_answer)

    async def invoke_for_image(self, route: str, image: LoadedImage, **extra: Any) -> bytes:
        """Routes that answer `{"result": "<base64 PNG>"}` (segmentation, super-resolution): the PNG bytes."""
        answer = await self.invoke_image(route, image, image_answer=True, **extra)
        if isinstance(answer, bytes):
            return answer
        encoded = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(encoded, str):
            log.warning("kit.unexpected_shape", route=route, type=type(answer).__name__)
            raise Err.INTERNAL_ERROR()
        try:
            if len(encoded) > OFFLOAD_BYTES:
                return await workers.cpu(pybase64.b64decode, encoded, validate=True)
            return pybase64.b64decode(encoded, validate=True)
        except ValueError:
            log.warning("kit.bad_base64", route=route)
            raise Err.INTERNAL_ERROR() from None

    async def invoke(self, route: str, body: bytes | ImageBody, body_sha256: str, image_answer: bool = False) -> Any:
        """POST `body` (bytes, or an image's body made as it is sent: proxy/kit/payload.py), whose SHA-256
        is `body_sha256`: the parsed answer; with `image_answer`, the decoded image itself (bytes) when the
        answer is exactly `{"result": "<base64>"}` (result_image)."""
        url, transport = self._route(route)
        status, raw, headers = await self._send(route, url, transport, body, body_sha256)
        if status != 200:
            raise transport.errors(route, status, raw, headers)
        if image_answer and (image := result_image(raw)) is not None:
            return image
        try:
            parsed = await workers.cpu(json.loads, raw) if len(raw) > OFFLOAD_BYTES else json.loads(raw)
        except ValueError:
            log.warning("kit.bad_json", route=route)
            raise Err.INTERNAL_ERROR() from None
        if isinstance(parsed, dict) and "OriginalStatusCode" in parsed:  # SageMaker error arriving as 200
            raise _model_error(route, parsed)
        if isinstance(parsed, dict) and _is_aws_error(parsed):  # SageMaker's own error, arriving as 200
            raise _wrapped_sagemaker_error(route, parsed)
        return parsed

    def add_route(self, key: str, url: str, sagemaker: bool, own_api: bool, limit: float) -> None:
        """Route `key` (an action's name, proxy/kit/routing.py) to `url`. An API other than the kit's
        (`own_api`) is reached directly, without the kit's private-API Host and x-apigw-api-id."""
        transport = self.sagemaker if sagemaker else self.gateway
        if own_api and not sagemaker:
            transport = Transport("execute-api", {"Content-Type": "application/json"}, _gateway_error)
        self.action_targets[key] = (url, transport)
        self.route_limits[key] = limit

    def _route(self, route: str) -> tuple[str, Transport]:
        if route in self.action_targets:
            return self.action_targets[route]
        endpoint = self.sagemaker_endpoints.get(route)
        if endpoint is None:
            return self.route_url(route), self.gateway
        assert self.sagemaker_url is not None, "KitClient.start() was not awaited"
        return f"{self.sagemaker_url}/endpoints/{quote(endpoint, safe='')}/invocations", self.sagemaker

    async def _send(self, route: str, url: str, transport: Transport, body: bytes | ImageBody,
                    body_sha256: str) -> tuple[int, bytes, Mapping[str, str]]:
        """POST once, or twice when the first connection could not be made (nothing was sent: safe)."""
        assert self._session is not None, "KitClient.start() was not awaited"
        target = _target(url, transport.connect)
        size = body_size(body)
        for attempt in (1, 2):
            timeout = aiohttp.ClientTimeout(total=call_timeout(route, self.route_limits, self.default_limit),
                                            sock_connect=self.timeout.sock_connect)
            creds = await self.credentials.frozen()  # re-signed on retry: the signature carries a timestamp
            # The signer reads only the payload hash, never the body (sigv4._PrehashedSigV4Auth.payload)
            headers = sign(url, b"", body_sha256, creds, self.region, transport.headers, host=transport.host,
                           service=transport.service)
            started = time.perf_counter()
            status: int | str = "error"
            try:
                data: bytes | AsyncIterator[memoryview]
                if size > PACE_BYTES:
                    data, headers = paced(body), {**headers, "Content-Length": str(size)}  # not chunked
                else:
                    data = b"".join(pieces(body))  # small (a one-piece body is not copied)
                async with self._session.post(target, data=data, headers=headers, timeout=timeout) as resp:
                    status = resp.status
                    return resp.status, await self._read(route, resp), resp.headers
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
                log.debug("kit.call", route=route, status=status, bytes_out=size, ms=round(seconds * 1000, 1))
        raise AssertionError("unreachable")

    async def _read(self, route: str, resp: aiohttp.ClientResponse) -> bytes:
        """The answer, up to the kit's own answer limit plus a margin. Longer cannot come from the kit (API
        Gateway answers 502 for a Lambda answer over 6 MB): read as the gateway's 502 would be."""
        cap = self.max_answer_bytes
        if resp.content_length is not None and resp.content_length > cap:
            raise self._oversized(route, resp.content_length)
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(256 * 1024):
            size += len(chunk)
            if size > cap:
                raise self._oversized(route, size)
            chunks.append(chunk)
        return b"".join(chunks)

    def _oversized(self, route: str, size: int) -> AliyunError:
        metrics.KIT_OVERSIZED.labels(route).inc()
        log.warning("kit.answer_too_large", route=route, bytes_seen=size, cap=self.max_answer_bytes)
        return Err.INTERNAL_ERROR()



def _target(url: str, connect: SplitResult | None) -> str:
    """Where the request goes: `url`'s path at `connect`'s address (the signed Host stays `url`'s)."""
    if connect is None:
        return url
    parts = urlsplit(url)
    return urlunsplit((connect.scheme, connect.netloc, parts.path, parts.query, ""))


def sagemaker_runtime_url(region: str) -> str:
    """botocore's SageMaker Runtime endpoint for `region` (China: runtime.sagemaker.<region>.amazonaws.com.cn).
    Blocking (reads botocore's data files); unsigned, so no credential chain is walked."""
    client = botocore.session.Session().create_client(
        "sagemaker-runtime", region_name=region, config=botocore.config.Config(signature_version=botocore.UNSIGNED))
    try:
        return str(client.meta.endpoint_url)
    finally:
        client.close()


def _gateway_error(route: str, status: int, raw: bytes, headers: Mapping[str, str]) -> AliyunError:
    return _status_error(route, status, raw, headers.get("Retry-After"))


# InvokeEndpoint's error types (botocore's sagemaker-runtime model, plus the errors every AWS API can return),
# as the kit status with the same meaning, so both transports share one mapping. ValidationError is about
# the request the proxy built (an unknown endpoint, a wrong region), not the caller's: ServiceUnavailable.
SAGEMAKER_STATUS = {
    "ValidationError": 503,
    "ModelNotReadyException": 429,
    "ThrottlingException": 429,
    "ServiceUnavailable": 503,
    "InternalFailure": 500,
    "InternalDependencyException": 500,
    "ModelError": 500,  # without OriginalStatusCode
}


def _sagemaker_error(route: str, status: int, raw: bytes, headers: Mapping[str, str]) -> AliyunError:
    """A ModelError (424) is the container's own answer: mapped by OriginalStatusCode/OriginalMessage exactly
    as the kit's answer would be. Other errors are named by `x-amzn-ErrorType` (else the body's `__type`)."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    kind = (headers.get("x-amzn-ErrorType") or str(body.get("__type") or "")).split(":")[0].rsplit("#")[-1]
    if "OriginalStatusCode" in body:
        return _model_error(route, body)
    if kind == "ValidationError":
        log.warning("kit.sagemaker_refused", route=route, message=str(body.get("message") or body.get("Message")))
    return _status_error(route, SAGEMAKER_STATUS.get(kind, status), raw, headers.get("Retry-After"))


def _model_error(route: str, body: Mapping[str, Any]) -> AliyunError:
    """A SageMaker ModelError (as a 424, or through API Gateway as a 200): the container's own status and
    message, mapped as the kit's answer would be. A container that did not answer within InvokeEndpoint's 60 s
    (status 0, "... timed out ...") is a 504, as the gateway's own timeout; any other unusable status a 500."""
    log.warning("kit.model_error", route=route, error_code=body.get("ErrorCode"))
    try:
        original = int(body.get("OriginalStatusCode") or 0)
    except (TypeError, ValueError):
        original = 0
    if original < 400:
        original = 504 if "timed out" in str(body.get("Message", "")).lower() else 500
    return _status_error(route, original, str(body.get("OriginalMessage", "")).encode(), None)


AWS_ERROR_KEYS = frozenset({"message", "Message", "__type", "code", "Code", "ErrorCode"})
# What is left of SageMaker's own errors once API Gateway has passed them through as 200 (the kit's `-ml`
# routes, sagemaker-feature-construct.ts): the body only, x-amzn-ErrorType is not mapped. Named by `__type`
# when present, else by the words of the message; throttling's message is often null (AWS CommonErrors).
MESSAGE_KINDS = (("rate exceeded", "ThrottlingException"), ("throttl", "ThrottlingException"),
                 ("too many requests", "ThrottlingException"), ("not ready", "ModelNotReadyException"),
                 ("not found", "ValidationError"), ("validation", "ValidationError"),
                 ("unavailable", "ServiceUnavailable"), ("internal failure", "InternalFailure"))


def _is_aws_error(body: Mapping[str, Any]) -> bool:
    """An AWS error body (`{"message": ...}`, maybe `__type`), not a kit answer (`result`, OCR lines)."""
    return bool(body) and body.keys() <= AWS_ERROR_KEYS and ("message" in body or "Message" in body)


def _wrapped_sagemaker_error(route: str, body: Mapping[str, Any]) -> AliyunError:
    """SageMaker's throttling, not-ready, validation or availability error inside an HTTP 200: mapped by the
    same SAGEMAKER_STATUS table as the direct transport. Unrecognised: the backend failed, ServiceUnavailable."""
    kind = str(body.get("__type") or body.get("code") or body.get("Code") or "").split(":")[0].rsplit("#")[-1]
    message = str(body.get("message") or body.get("Message") or "")
    if kind not in SAGEMAKER_STATUS:
        lowered = message.lower()
        kind = next((k for words, k in MESSAGE_KINDS if words in lowered),
                    "ThrottlingException" if not message else "ServiceUnavailable")
    log.warning("kit.sagemaker_error_as_200", route=route, kind=kind, message=message[:200])
    return _status_error(route, SAGEMAKER_STATUS[kind], message.encode(), None)


def _status_error(route: str, status: int, raw: bytes, retry_after: str | None) -> AliyunError:
    text = raw[:500].decode("utf-8", "replace")
    log.warning("kit.error", route=route, status=status, body=text[:200])
    if status == 400:
        if "`img`" in text:
            return Err.IMAGE_FORMAT("the backend could not decode the image")
        if "`url`" in text:
            return Err.IMAGE_DOWNLOAD("the backend could not download the image")
        return invalid("the image")
    if status == 413:
        return Err.IMAGE_SIZE("the backend's payload limit was exceeded")
    if status == 429:
        return Err.THROTTLING(headers={"x-acs-retry-after": str(_seconds(retry_after))})
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

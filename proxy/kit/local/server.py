"""The embedded backend: an HTTP server that speaks the AI Solution Kit's API and checks SigV4 like API
Gateway with IAM auth. The proxy reaches it over loopback HTTP with generated credentials, so the path a
newcomer runs is the production path.

Only what the kit does is reproduced: routes under the stage, `{url}` or `{img}` JSON bodies, plain-text
400s, and API Gateway's JSON 403 for a bad signature or an undeployed route. Routes: lite-ocr (rapidocr),
human-segmentation (MediaPipe selfie segmentation), general-segmentation (U²-Net-p, any salient
object; not a kit route, see general.py), super-resolution-ml (Real-ESRGAN ncnn, CPU). Every answer
names the model that made it in `x-local-model`. A model that cannot run here answers 503 with the reason in
`x-local-model-unavailable`, never a made-up result.

It also plays SageMaker Runtime for the super-resolution model: `POST /endpoints/{name}/invocations`
(InvokeEndpoint) signed for service `sagemaker`, answering the container's JSON, or SageMaker's error
shapes: the container's own 4xx/5xx as HTTP 424 `ModelError` (OriginalStatusCode, OriginalMessage), an
unknown endpoint as 400 `ValidationError`, the error type in `x-amzn-ErrorType` as SageMaker sends it.
Through the gateway front the super-resolution route answers those same bodies as HTTP 200, as the kit's
AwsIntegration does (sagemaker-feature-construct.ts). Where the kit's handlers crash (segmentation's
720-px-height resize, super-resolution's `w // s * s`; segment.py, superres.py) this backend crashes too.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from botocore.credentials import Credentials

from ...config import KitLimits, KitRoutes
from ..sigv4 import SigV4Rejected, verify
from . import HandlerCrash, gateway, general, ocr, segment, superres

log = structlog.get_logger("kit.local")
INVOCATIONS = re.compile(r"/endpoints/([^/]+)/invocations")


def _text(status: int, message: str) -> web.Response:
    # The kit's lambda_return sends plain text with no Content-Type; API Gateway then reports JSON.
    return web.Response(status=status, body=message.encode(), content_type="application/json")


def _gateway(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def _sagemaker(status: int, kind: str, body: dict[str, Any]) -> web.Response:
    response = web.json_response(body, status=status)
    response.headers["x-amzn-ErrorType"] = kind
    return response


def _header(text: str) -> str:
    return " ".join(text.split())[:300]  # one line, bounded


class InvalidParam(ValueError):
    """A request field other than `url`/`img` is unusable: the kit's 400 `invalid param`."""


@dataclass(frozen=True)
class Route:
    """One kit route. `params` reads the request's own fields before any image is fetched (raising
    InvalidParam); `run` is blocking, runs in the worker pool, and returns (model name, JSON-able answer)."""

    params: Callable[[dict[str, Any]], Any]
    run: Callable[[bytes, Any], tuple[str, Any]]


def _no_params(event: dict[str, Any]) -> None:
    return None


def _foreground(event: dict[str, Any]) -> bool:
    return event.get("type") == "foreground"  # only this exact value has an effect in the kit


def _scale(event: dict[str, Any]) -> int:
    # The kit calls int() on `scale` outside its try block: a non-integer there is a Flask 500 (reaching the
    # caller as a SageMaker ModelError inside an HTTP 200) and 0 divides by zero. Here both are a 400.
    value = event.get("scale", 2)
    if isinstance(value, bool):
        raise InvalidParam(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value)  # the kit's int("4") accepts digit strings
        except ValueError:
            raise InvalidParam(value) from None
    if not isinstance(value, int) or value <= 0:
        raise InvalidParam(value)
    return value


def _png_result(png: bytes) -> dict[str, str]:
    return {"result": base64.b64encode(png).decode("ascii")}


@dataclass(frozen=True)
class Outcome:
    """What the model's container answered (status 200, 400, 500), or 503 (cannot run here) / 504 (output
    too large to make in time); each front (API Gateway, SageMaker Runtime) dresses it its own way."""

    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class PrivateApi:
    """Serve as a private API behind an execute-api VPC endpoint. API Gateway picks the API from the
    `x-apigw-api-id` header, else from Host (the API's private DNS name or its Route 53 alias); the
    endpoint's own DNS name without the header names no API. Either way a miss is 403 `Forbidden`.
    Stricter than API Gateway: an `x-apigw-api-id` header must be signed (the proxy signs all it sends)."""

    api_id: str
    vpce_id: str
    region: str
    dns_suffix: str = "amazonaws.com.cn"

    @property
    def api_host(self) -> str:
        return f"{self.api_id}.execute-api.{self.region}.{self.dns_suffix}"

    @property
    def vpce_host(self) -> str:  # the endpoint's regional DNS name; the part after the id is random in AWS
        return f"{self.vpce_id}-a1b2c3d4.execute-api.{self.region}.vpce.{self.dns_suffix}"

    @property
    def alias_host(self) -> str:
        return f"{self.api_id}-{self.vpce_id}.execute-api.{self.region}.{self.dns_suffix}"

    def admits(self, headers: Any) -> bool:
        host, api_id = headers.get("Host", "").lower(), headers.get("x-apigw-api-id")
        if api_id is not None:
            signed = headers.get("Authorization", "").partition("SignedHeaders=")[2].split(",")[0].split(";")
            return api_id == self.api_id and "x-apigw-api-id" in signed and \
                host in (self.vpce_host, self.api_host, self.alias_host)
        return host in (self.api_host, self.alias_host)


class LocalBackend:
    def __init__(self, region: str, stage: str, routes: KitRoutes, threads: int = 1,
                 private: PrivateApi | None = None, sagemaker_endpoint: str = "super-resolution",
                 limits: KitLimits | None = None) -> None:
        self.region = region
        self.limits = limits or KitLimits()  # payload limits enforced as API Gateway and Lambda do (gateway.py)
        # super-resolution is a SageMaker integration; general-segmentation is served as a Lambda route would be
        self._lambda_routes = {routes.ocr, routes.segmentation, general.ROUTE}
        self.stage = stage
        self.private = private
        self.sagemaker_endpoint = sagemaker_endpoint
        self._sagemaker_route = routes.super_resolution
        self.credentials = Credentials("AKIDLOCAL" + secrets.token_hex(6).upper(), secrets.token_urlsafe(30))
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="local-model")
        ocr_engine, segmenter, resolver = ocr.OcrEngine(), segment.Segmenter(), superres.SuperResolver()
        objects = general.GeneralSegmenter()
        # Models load on first use, once, under their own locks.
        self._routes: dict[str, Route] = {
            routes.ocr: Route(_no_params, lambda image, _: (ocr.MODEL_NAME, ocr_engine.recognise(image))),
            routes.segmentation: Route(_foreground, lambda image, foreground: (
                segment.MODEL_NAME, _png_result(segmenter.segment(image, foreground)))),
            general.ROUTE: Route(_foreground, lambda image, foreground: (  # not the kit's: config/backends.py
                general.MODEL_NAME, _png_result(objects.segment(image, foreground)))),
            routes.super_resolution: Route(_scale, lambda image, scale: (
                superres.model_name(scale), _png_result(resolver.upscale(image, scale)))),
        }
        self._runner: web.AppRunner | None = None
        self._fetch: aiohttp.ClientSession | None = None
        self.base_url = ""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.limits.max_gateway_body_bytes + 1024 * 1024)
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
        if (request.content_length or 0) > self.limits.max_gateway_body_bytes:
            return _gateway(413, gateway.REQUEST_TOO_LONG)  # refused before the body is read, as API Gateway
        body = await request.read()
        invocation = INVOCATIONS.fullmatch(request.path)
        if invocation is not None:
            return await self._invoke_endpoint(request, body, invocation.group(1))
        if self.private is not None and not self.private.admits(request.headers):
            return _gateway(403, "Forbidden")
        try:
            self._verify(request, body, "execute-api")
        except SigV4Rejected as exc:
            return _gateway(403, str(exc))
        stage, _, route = request.path.strip("/").partition("/")
        if request.method != "POST" or stage != self.stage or route not in self._routes:
            return _gateway(403, "Missing Authentication Token")
        lambda_route = route in self._lambda_routes
        if lambda_route and await asyncio.to_thread(gateway.event_bytes, request.method, request.path, self.stage,
                                                    request.headers, body, self.region) > self.limits.max_request_bytes:
            return _gateway(413, gateway.REQUEST_TOO_LONG)  # Lambda refused the event; the handler never ran
        outcome = await self._run(route, body)
        if lambda_route and outcome.status in (200, 400) and \
                gateway.answer_bytes(outcome.status, outcome.body) > self.limits.max_response_bytes:
            log.info("local.answer_too_large", route=route, bytes=len(outcome.body))
            return _gateway(502, "Internal server error")  # Function.ResponseSizeTooLarge, through the gateway
        if route == self._sagemaker_route:
            return self._through_aws_integration(outcome)
        if outcome.status == 200:
            return self._answer(outcome)
        if outcome.status == 500:  # API Gateway's answer to a crashed Lambda (proxy integration)
            response = _gateway(502, "Internal server error")
        elif outcome.status == 503:
            response = _gateway(503, "Service Unavailable")
        elif outcome.status == 504:  # what the kit does with an output it cannot produce in time (issue #152)
            response = _gateway(504, "Endpoint request timed out")
        else:
            response = _text(outcome.status, outcome.body.decode())
        response.headers.update(outcome.headers)
        return response

    async def _invoke_endpoint(self, request: web.Request, body: bytes, name: str) -> web.Response:
        """SageMaker Runtime InvokeEndpoint in front of the super-resolution container."""
        try:
            self._verify(request, body, "sagemaker")
        except SigV4Rejected as exc:
            return _sagemaker(403, "InvalidSignatureException", {"message": str(exc)})
        if request.method != "POST":
            return _sagemaker(404, "UnknownOperationException", {"message": "Unknown operation"})
        if name != self.sagemaker_endpoint:
            return _sagemaker(400, "ValidationError", {"message": f"Endpoint {name} of account 000000000000 "
                                                                  "not found."})
        return self._sagemaker_answer(await self._run(self._sagemaker_route, body))

    def _sagemaker_answer(self, outcome: Outcome) -> web.Response:
        """SageMaker Runtime's dress for the container's answer: 200, 503 ServiceUnavailable, else 424 ModelError."""
        if outcome.status == 200:
            return self._answer(outcome)
        if outcome.status == 503:
            response = _sagemaker(503, "ServiceUnavailable", {"message": "Service Unavailable"})
            response.headers.update(outcome.headers)
            return response
        # The container's own error (a 504 here is the embedded model's output limit, reported as its status).
        message = outcome.body.decode("utf-8", "replace")
        response = _sagemaker(424, "ModelError", {
            "ErrorCode": f"{'CLIENT' if outcome.status < 500 else 'SERVER'}_ERROR_FROM_MODEL",
            "Message": f"Received {'client' if outcome.status < 500 else 'server'} error ({outcome.status}) "
                       f"from primary with message \"{message}\". See the embedded backend's log.",
            "OriginalStatusCode": outcome.status, "OriginalMessage": message,
            "LogStreamArn": f"arn:aws-cn:logs:{self.region}:000000000000:log-group:/aws/sagemaker/Endpoints/"
                            f"{self.sagemaker_endpoint}"})
        response.headers.update(outcome.headers)
        return response

    def _through_aws_integration(self, outcome: Outcome) -> web.Response:
        """The kit's `-ml` routes (sagemaker-feature-construct.ts) are an AwsIntegration to InvokeEndpoint whose
        only integration response is 200: SageMaker's answer, error or not, reaches the caller as HTTP 200 with
        its body passed through; its x-amzn-ErrorType header is not mapped. An integration timeout is API
        Gateway's own 504."""
        if outcome.status == 504:
            response = _gateway(504, "Endpoint request timed out")
            response.headers.update(outcome.headers)
            return response
        inner = self._sagemaker_answer(outcome)
        response = web.Response(status=200, body=inner.body, content_type="application/json")
        response.headers.update({k: v for k, v in inner.headers.items()
                                 if k.lower().startswith("x-local-")})
        return response

    def _verify(self, request: web.Request, body: bytes, service: str) -> None:
        verify(request.method, f"http://{request.host}{request.raw_path}", request.headers,
               hashlib.sha256(body).hexdigest(), self.credentials.access_key, self.credentials.secret_key,
               self.region, service=service)

    @staticmethod
    def _answer(outcome: Outcome) -> web.Response:
        response = web.Response(body=outcome.body, content_type="application/json")
        response.headers.update(outcome.headers)
        return response

    async def _run(self, route: str, body: bytes) -> Outcome:
        """The container's part: read the event, fetch or decode the image, run the model in the pool."""
        handler = self._routes[route]
        try:
            event = json.loads(body)
        except ValueError:
            return Outcome(400, b"invalid param", {})
        if not isinstance(event, dict):
            return Outcome(400, b"invalid param", {})
        if "url" in event and "img" in event:
            return Outcome(400, b"`url` and `img` cannot be used at the same time", {})
        try:
            params = handler.params(event)
        except InvalidParam:
            return Outcome(400, b"invalid param", {})
        image = await self._image(event)
        if isinstance(image, Outcome):
            return image

        def work() -> tuple[str, bytes]:  # JSON encoding of a large base64 PNG stays off the event loop too
            name, result = handler.run(image, params)
            return name, json.dumps(result).encode()

        try:
            name, answer = await asyncio.get_running_loop().run_in_executor(self._executor, work)
        except ImportError as exc:
            log.warning("local.model_unavailable", route=route, reason=str(exc))
            return Outcome(503, b"", {"x-local-model-unavailable": _header(str(exc))})
        except superres.TooLarge as exc:
            return Outcome(504, b"output too large", {"x-local-model-limit": _header(
                f"output {exc} exceeds the embedded backend's {superres.MAX_OUTPUT_PIXELS} pixels")})
        except HandlerCrash as exc:  # where the kit's own handler raises: an unhandled crash, not a 400
            log.info("local.handler_crash", route=route, reason=str(exc))
            return Outcome(500, b"Internal Server Error", {"x-local-crash": _header(str(exc))})
        except (OSError, ValueError) as exc:
            log.info("local.model_rejected", route=route, error=type(exc).__name__)
            return _illegal(event)
        except ocr.DetectorCrash as exc:  # the kit's own crash on this shape, not a bug here
            log.info("local.kit_crash", route=route, reason=str(exc))
            return Outcome(500, b"Internal Server Error", {})
        except Exception:
            log.exception("local.model_failed", route=route)
            return Outcome(500, b"Internal Server Error", {})
        return Outcome(200, answer, {"x-local-model": name})

    async def _image(self, event: dict[str, Any]) -> bytes | Outcome:
        if isinstance(event.get("img"), str):
            try:
                return base64.b64decode(event["img"])
            except (binascii.Error, ValueError):
                return _illegal(event)
        url = event.get("url")
        if isinstance(url, str) and url.startswith(("http://", "https://")) and self._fetch is not None:
            try:
                async with self._fetch.get(url) as resp:
                    if resp.status == 200:
                        return await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                pass
            return _illegal(event)
        return _illegal(event)


def _illegal(event: dict[str, Any]) -> Outcome:
    return Outcome(400, b"`parameter `img` illegal" if "img" in event else b"`parameter `url` illegal", {})


"""A kit that fails on purpose, for the failure shapes the real kit has but the local models never show.

It still verifies SigV4 like API Gateway (with `proxy.kit.sigv4.verify`), so a passing call proves the
proxy signed it. This is a stub by necessity: a real API Gateway, Lambda or SageMaker cannot run here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
from typing import Any

import numpy as np
from aiohttp import web
from PIL import Image

from proxy.kit.sigv4 import SigV4Rejected, verify
from tests.harness import ProxyServer, proxy_with_aws_keys

ACCESS_KEY, SECRET_KEY, REGION = "AKIDFAULTKIT", "fault-kit-secret", "cn-northwest-1"
GOOD = [{"words": "hello", "location": {"top": 10, "left": 20, "width": 300, "height": 40}, "score": 0.97},
        {"duration": 0.12}]
MODEL_ERROR = {"ErrorCode": "CLIENT_ERROR_FROM_MODEL", "LogStreamArn": "arn:aws-cn:logs:...",
               "OriginalStatusCode": 400, "OriginalMessage": "`parameter `img` illegal",
               "Message": "Received client error (400) from primary with message ..."}

# fault name -> (status, body, headers)
FAULTS: dict[str, tuple[int, Any, dict[str, str]]] = {
    "ok": (200, GOOD, {}),
    "400-img": (400, "`parameter `img` illegal", {}),
    "400-url": (400, "`parameter `url` illegal", {}),
    "400-param": (400, "invalid param", {}),
    "403": (403, {"message": "The security token included in the request is invalid."}, {}),
    "413": (413, {"message": "Request Too Long"}, {}),
    "429": (429, {"message": "Too Many Requests"}, {"Retry-After": "2"}),
    "502": (502, {"message": "Internal server error"}, {}),
    "504": (504, {"message": "Endpoint request timed out"}, {}),
    "200-model-error": (200, MODEL_ERROR, {}),
    "200-wrong-shape": (200, {"result": "not a list of lines"}, {}),
    "200-not-json": (200, "<html>oops</html>", {}),
    # SageMaker's own errors on the kit's `-ml` routes: API Gateway's AwsIntegration has only a 200 integration
    # response (sagemaker-feature-construct.ts), so they arrive as HTTP 200 with the body alone, no error type
    "200-model-error-500": (200, {**MODEL_ERROR, "ErrorCode": "SERVER_ERROR_FROM_MODEL", "OriginalStatusCode": 500,
                                  "OriginalMessage": "Internal Server Error"}, {}),
    "200-model-timeout": (200, {"ErrorCode": "INTERNAL_FAILURE_FROM_MODEL", "OriginalStatusCode": 0,
                                "Message": "Your invocation timed out while waiting for a response from container "
                                           "primary. Review the latency metrics for each container in Amazon "
                                           "CloudWatch, resolve the issue, and try again."}, {}),
    "200-throttling": (200, {"message": "Rate exceeded"}, {}),
    "200-throttling-null": (200, {"message": None}, {}),  # SageMaker's concurrency limit (AWS CommonErrors)
    "200-throttling-typed": (200, {"__type": "com.amazon.coral.availability#ThrottlingException",
                                   "message": None}, {}),
    "200-not-ready": (200, {"message": "Model for endpoint super-resolution is not ready. Try again later."}, {}),
    "200-unavailable": (200, {"message": "Service Unavailable"}, {}),
    "200-validation": (200, {"message": "Endpoint super-resolution of account 000000000000 not found."}, {}),
    "200-internal": (200, {"Message": "An internal failure occurred."}, {}),
}


def _enlarge(event: dict[str, Any]) -> dict[str, str]:
    """A plain bicubic stand-in for the super-resolution model: right size, right shape."""
    img = Image.open(io.BytesIO(base64.b64decode(event["img"])))
    scale = int(event.get("scale", 2))
    out = io.BytesIO()
    img.resize((img.width * scale, img.height * scale), Image.Resampling.BICUBIC).save(out, "PNG")
    return {"result": base64.b64encode(out.getvalue()).decode()}


def _matte(event: dict[str, Any]) -> dict[str, str]:
    """A segmentation stand-in whose 'L' matte is noise: the incompressible answer a budget must allow for."""
    img = Image.open(io.BytesIO(base64.b64decode(event["img"])))
    noise = np.random.default_rng(0).integers(0, 256, (img.height, img.width), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(noise, "L").save(out, "PNG")
    return {"result": base64.b64encode(out.getvalue()).decode()}


class FaultKit:
    def __init__(self) -> None:
        self.fault = "ok"
        self.calls = 0
        self.rejected = 0
        self.last_body = b""  # the last signed request body, as the kit received it
        self.streamed_mib = 0  # "oversized": MiB written before the proxy hung up
        self.fail_after = 0  # super-resolution: answer this many tiles, then fail with `fault`
        self.largest = (0, 0)  # the largest request body and answer body seen, in bytes
        self.paths: list[str] = []  # the path of every signed call, in order

    def app(self) -> web.Application:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_post("/{path:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = await self._handle(request)
        answer = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else b""
        self.largest = (max(self.largest[0], request.content_length or 0), max(self.largest[1], len(answer)))
        return response

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            verify("POST", f"http://{request.host}{request.raw_path}", request.headers,
                   hashlib.sha256(body).hexdigest(), ACCESS_KEY, SECRET_KEY, REGION)
        except SigV4Rejected as exc:
            self.rejected += 1
            return web.json_response({"message": str(exc)}, status=403)
        self.calls += 1
        self.last_body = body
        self.paths.append(request.path)
        if request.path.rstrip("/").endswith("segmentation") and self.fault == "matte":
            return web.json_response(_matte(json.loads(body)))
        enlarging = request.path.rstrip("/").endswith("super-resolution-ml")
        if enlarging and self.fault == "slow-sr":  # a correct enlargement, two seconds late
            await asyncio.sleep(2)
            return web.json_response(_enlarge(json.loads(body)))
        if enlarging and self.calls <= self.fail_after:
            return web.json_response(_enlarge(json.loads(body)))
        if self.fault == "hang":
            await asyncio.sleep(10)
        if self.fault == "slow":  # a correct answer, two seconds late
            await asyncio.sleep(2)
            return web.json_response(GOOD)
        if self.fault == "oversized":  # 50 MB streamed with no length: the proxy must stop reading early
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            try:
                for _ in range(50):
                    await resp.write(b" " * (1024 * 1024))
                    self.streamed_mib += 1
            except (ConnectionResetError, RuntimeError):
                pass  # the proxy hung up, as it should
            return resp
        if self.fault == "close":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        status, payload, headers = FAULTS[self.fault]
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return web.Response(status=status, text=text, headers=headers)


def remote_kit_proxy(**settings: Any) -> ProxyServer:
    """A proxy configured for a remote kit (this one): its credentials come from botocore's chain."""
    return proxy_with_aws_keys(ACCESS_KEY, SECRET_KEY, aws_region=REGION, **settings)

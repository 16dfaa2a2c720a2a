"""Super-resolution straight to its SageMaker endpoint (InvokeEndpoint), bypassing API Gateway.

A LocalBackend plays both sides: API Gateway (execute-api) for OCR and SageMaker Runtime for
`/endpoints/super-resolution/invocations`, each checking SigV4 for its own service. A counting front in
the same process records which path was called with which signing service. Real SDK calls go through a
real proxy; a small stub answers with each InvokeEndpoint error shape of botocore's sagemaker-runtime model.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from alibabacloud_imageenhan20190930 import models as enhan
from alibabacloud_ocr20191230 import models as ocr_models
from alibabacloud_tea_openapi.exceptions import ClientException
from botocore.credentials import Credentials
from PIL import Image

from proxy.aliyun.errors import AliyunError
from proxy.config import ConfigError, KitRoutes, load_settings
from proxy.kit.client import KitClient, sagemaker_runtime_url
from proxy.kit.credentials import CredentialSource
from proxy.kit.local.server import LocalBackend
from proxy.kit.sigv4 import SigV4Rejected, sign, verify
from tests import sdk
from tests.harness import AppServer, LoopThread, ProxyServer, proxy_with_aws_keys

REGION = "cn-northwest-1"
ENDPOINTS = {"super_resolution": "super-resolution"}
INVOCATIONS = "/endpoints/super-resolution/invocations"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _service(request: web.Request) -> str:
    """The signing service named in the request's credential scope."""
    credential = request.headers.get("Authorization", "").partition("Credential=")[2].split(",")[0]
    parts = credential.split("/")
    return parts[3] if len(parts) == 5 else ""


class Front:
    """The backend's own app behind a middleware that counts (path, signing service, Accept)."""

    def __init__(self, backend: LocalBackend) -> None:
        self.seen: Counter[tuple[str, str, str]] = Counter()

        @web.middleware
        async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
            self.seen[(request.path, _service(request), request.headers.get("Accept", ""))] += 1
            return await handler(request)

        def make() -> web.Application:
            app = backend.app()
            app.middlewares.append(count)
            return app

        self.server = AppServer(make)
        self.url = self.server.url


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with LoopThread() as lt, lt.started(LocalBackend(REGION, "prod", KitRoutes())) as local:
        yield local


@pytest.fixture(scope="module")
def front(backend: LocalBackend) -> Iterator[Front]:
    served = Front(backend)
    with served.server:
        yield served


@pytest.fixture(scope="module")
def picture() -> Iterator[AppServer]:
    img = Image.effect_noise((96, 64), 60).convert("RGB")
    data = io.BytesIO()
    img.save(data, "PNG")

    def app() -> web.Application:
        async def serve(request: web.Request) -> web.Response:
            return web.Response(body=data.getvalue(), content_type="image/png")

        application = web.Application()
        application.router.add_get("/{tail:.*}", serve)
        return application

    with AppServer(app) as server:
        yield server


def proxy_for(credentials: Credentials, tmp: Path, **settings: Any) -> ProxyServer:
    """A proxy for a remote kit whose AWS identity (botocore's chain, here the env) is `credentials`."""
    return proxy_with_aws_keys(credentials.access_key, credentials.secret_key, aws_region=REGION, data_dir=tmp,
                               **{"kit_sagemaker_endpoints": ENDPOINTS, **settings})


def enlarge(proxy: ProxyServer, picture: AppServer) -> Any:
    return sdk.imageenhan(proxy.endpoint).make_super_resolution_image(enhan.MakeSuperResolutionImageRequest(
        url=f"{picture.url}/p.png", upscale_factor=2, output_format="png"))


def test_super_resolution_goes_to_sagemaker_and_ocr_to_api_gateway(backend, front, picture, images, tmp_path):
    with proxy_for(backend.credentials, tmp_path, kit_url=front.url, sagemaker_url=front.url) as proxy:
        front.seen.clear()
        resp = enlarge(proxy, picture)
        result = Image.open(io.BytesIO(requests.get(resp.body.data.url, timeout=10).content))
        assert result.size == (192, 128)
        ocr = sdk.ocr(proxy.endpoint).recognize_character(ocr_models.RecognizeCharacterRequest(
            image_url=f"{images.url}/text.png", min_height=10, output_probability=True))
        assert ocr.body.data.results
    by_path = Counter({(path, service): n for (path, service, _), n in front.seen.items()})
    assert by_path[(INVOCATIONS, "sagemaker")] >= 1  # one per tile
    assert by_path[("/prod/lite-ocr", "execute-api")] == 1
    assert set(by_path) == {(INVOCATIONS, "sagemaker"), ("/prod/lite-ocr", "execute-api")}
    assert all(accept == "application/json" for (path, _, accept) in front.seen if path == INVOCATIONS)


def post(url: str, body: bytes, credentials: Credentials, service: str) -> requests.Response:
    headers = sign(url, body, hashlib.sha256(body).hexdigest(), credentials, REGION,
                   {"Content-Type": "application/json"}, service=service)
    return requests.post(url, data=body, headers=headers, timeout=30)


@pytest.mark.parametrize(("path", "service"), [(INVOCATIONS, "execute-api"), ("/prod/lite-ocr", "sagemaker")])
def test_a_signature_for_the_other_service_is_refused(backend, front, path, service):
    resp = post(front.url + path, b"{}", backend.credentials, service)
    assert resp.status_code == 403 and "scoped to a valid region and service" in resp.json()["message"]


def test_verify_checks_the_service():
    body = b"{}"
    url = "http://127.0.0.1:9" + INVOCATIONS
    digest = hashlib.sha256(body).hexdigest()
    headers = sign(url, body, digest, Credentials("AKID", "secret"), REGION, {}, service="sagemaker")
    from multidict import CIMultiDict

    verify("POST", url, CIMultiDict(headers), digest, "AKID", "secret", REGION, service="sagemaker")
    with pytest.raises(SigV4Rejected, match="execute-api"):
        verify("POST", url, CIMultiDict(headers), digest, "AKID", "secret", REGION)


def test_model_error_is_sagemakers_424(backend, front):
    resp = post(front.url + INVOCATIONS, b'{"img": "aGVsbG8="}', backend.credentials, "sagemaker")
    assert resp.status_code == 424 and resp.headers["x-amzn-ErrorType"] == "ModelError"
    body = resp.json()
    assert (body["OriginalStatusCode"], body["OriginalMessage"]) == (400, "`parameter `img` illegal")
    unknown = post(front.url + "/endpoints/no-such/invocations", b"{}", backend.credentials, "sagemaker")
    assert unknown.status_code == 400 and unknown.headers["x-amzn-ErrorType"] == "ValidationError"


# ---------------------------------------------------------------- every InvokeEndpoint error shape

def _model_error(status: int, message: str) -> dict[str, Any]:
    return {"ErrorCode": "CLIENT_ERROR_FROM_MODEL", "OriginalStatusCode": status, "OriginalMessage": message,
            "Message": f"Received client error ({status}) from primary with message \"{message}\".",
            "LogStreamArn": "arn:aws-cn:logs:cn-northwest-1:000000000000:log-group:/aws/sagemaker/Endpoints/x"}


# (HTTP status, x-amzn-ErrorType, body) -> (Aliyun code, Aliyun status)
SHAPES: dict[str, tuple[tuple[int, str, dict[str, Any]], tuple[str, int]]] = {
    "model-400-img": ((424, "ModelError", _model_error(400, "`parameter `img` illegal")),
                      ("InvalidImage.Format", 400)),
    "model-400-url": ((424, "ModelError", _model_error(400, "`parameter `url` illegal")),
                      ("InvalidImage.Download", 400)),
    "model-400-param": ((424, "ModelError", _model_error(400, "invalid param")), ("InvalidParameter", 400)),
    "model-500": ((424, "ModelError", _model_error(500, "<html>Internal Server Error</html>")),
                  ("InternalError", 500)),
    "validation": ((400, "ValidationError", {"message": "Endpoint super-resolution of account 1 not found."}),
                   ("ServiceUnavailable", 503)),
    "throttling": ((400, "ThrottlingException", {"message": "Rate exceeded"}), ("Throttling", 400)),
    "model-not-ready": ((429, "ModelNotReadyException", {"message": "not ready"}), ("Throttling", 400)),
    "unavailable": ((503, "ServiceUnavailable", {"message": "Service Unavailable"}), ("ServiceUnavailable", 503)),
    "internal": ((500, "InternalFailure", {"message": "Internal failure"}), ("InternalError", 500)),
    "dependency": ((530, "InternalDependencyException", {"message": "x"}), ("InternalError", 500)),
    "denied": ((403, "AccessDeniedException", {"message": "not authorized"}), ("ServiceUnavailable", 503)),
}
STUB_KEYS = Credentials("AKIDSAGEMAKERSTUB", "sagemaker-stub-secret")


class Stub:
    def __init__(self) -> None:
        self.shape = "model-400-img"
        self.server = AppServer(self.app)
        self.url = self.server.url

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            try:
                verify("POST", f"http://{request.host}{request.raw_path}", request.headers,
                       hashlib.sha256(body).hexdigest(), STUB_KEYS.access_key, STUB_KEYS.secret_key, REGION,
                       service="sagemaker")
            except SigV4Rejected as exc:
                return web.json_response({"message": str(exc)}, status=403,
                                         headers={"x-amzn-ErrorType": "InvalidSignatureException"})
            status, kind, payload = SHAPES[self.shape][0]
            return web.json_response(payload, status=status, headers={"x-amzn-ErrorType": f"{kind}:http://x/"})

        application = web.Application()
        application.router.add_post(INVOCATIONS, handle)
        return application


@pytest.fixture(scope="module")
def stub() -> Iterator[Stub]:
    served = Stub()
    with served.server:
        yield served


@pytest.fixture(scope="module")
def client(stub: Stub) -> Iterator[tuple[LoopThread, KitClient]]:
    kit = KitClient(lambda route: "http://127.0.0.1:9/prod/unused", REGION, CredentialSource(STUB_KEYS), 10, 3, 4,
                    sagemaker_endpoints=ENDPOINTS, sagemaker_url=stub.url)
    with LoopThread() as lt, lt.started(kit):
        yield lt, kit


@pytest.mark.parametrize("shape", SHAPES)
def test_each_invoke_endpoint_error_maps_to_an_aliyun_error(stub, client, shape):
    stub.shape = shape
    lt, kit = client
    body = json.dumps({"img": "AAAA", "scale": 2}).encode()
    with pytest.raises(AliyunError) as exc:
        lt.run(kit.invoke("super_resolution", body, hashlib.sha256(body).hexdigest()))
    assert (exc.value.code, exc.value.status) == SHAPES[shape][1]


def test_a_model_error_reaches_the_sdk_as_the_kits_400_would(stub, images, tmp_path):
    """Any route can be sent to an endpoint; OCR here, because its action is not tiled (see the next test)."""
    stub.shape = "model-400-img"
    with (proxy_for(STUB_KEYS, tmp_path, kit_url="http://127.0.0.1:9", sagemaker_url=stub.url,
                    kit_sagemaker_endpoints={"ocr": "super-resolution"}) as proxy,
          pytest.raises(ClientException) as exc):
        sdk.ocr(proxy.endpoint).recognize_character(ocr_models.RecognizeCharacterRequest(
            image_url=f"{images.url}/text.png", min_height=10, output_probability=True))
    assert (exc.value.code, exc.value.status_code) == ("InvalidImage.Format", 400)


def test_a_model_error_on_a_super_resolution_tile_reaches_the_sdk(stub, front, picture, tmp_path):
    stub.shape = "model-400-img"
    with (proxy_for(STUB_KEYS, tmp_path, kit_url=front.url, sagemaker_url=stub.url) as proxy,
          pytest.raises(ClientException) as exc):
        enlarge(proxy, picture)
    assert (exc.value.code, exc.value.status_code) == ("InvalidImage.Format", 400)


# ---------------------------------------------------------------- configuration

def test_endpoints_from_the_environment_as_json(monkeypatch):
    monkeypatch.setenv("VISION_PROXY_KIT_SAGEMAKER_ENDPOINTS", '{"super_resolution": "super-resolution"}')
    assert load_settings(None).kit_sagemaker_endpoints == ENDPOINTS


@pytest.mark.parametrize(("settings", "message"), [
    ({"kit_sagemaker_endpoints": {"superres": "super-resolution"}}, "is not a kit route"),
    ({"kit_sagemaker_endpoints": {"super_resolution": "super_resolution"}}, "not a SageMaker endpoint name"),
    ({"sagemaker_url": "https://runtime.sagemaker.cn-northwest-1.amazonaws.com.cn/endpoints"}, "scheme://host"),
])
def test_config_names_the_mistake(settings, message):
    with pytest.raises(ConfigError) as exc:
        load_settings(None, **settings)
    assert message in str(exc.value)


def test_default_runtime_url_is_botocores_china_partition_host():
    assert sagemaker_runtime_url(REGION) == "https://runtime.sagemaker.cn-northwest-1.amazonaws.com.cn"


def test_the_embedded_backend_serves_the_sagemaker_route_too(picture, tmp_path):
    """No kit_url: the SageMaker route goes to the embedded backend, which also plays SageMaker Runtime."""
    with ProxyServer(caller_keys="testid:testsecret", fetch_allow="127.0.0.1/32", data_dir=tmp_path,
                     kit_sagemaker_endpoints=ENDPOINTS) as proxy:
        kit = proxy.services.backends.kit
        assert kit.sagemaker_url is not None and kit.route_url("ocr").startswith(kit.sagemaker_url + "/prod/")
        resp = enlarge(proxy, picture)
        assert Image.open(io.BytesIO(requests.get(resp.body.data.url, timeout=10).content)).size == (192, 128)

"""The kit as an API Gateway private API behind an execute-api VPC endpoint. A LocalBackend stands in
for the endpoint: it admits only the Host / x-apigw-api-id combinations API Gateway routes to the API
(403 `Forbidden` otherwise) and checks the SigV4 signature against the Host it received. Each documented
way of calling passes through the real proxy with a real SDK; a wrong combination is ServiceUnavailable.

Over plain HTTP on loopback, `kit_connect_url` plays the part DNS plays in the VPC (the private DNS name
or the Route 53 alias resolving to the endpoint's addresses): what API Gateway sees is the same."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_ocr20191230 import models as ocr_models
from alibabacloud_tea_openapi.exceptions import ServerException
from botocore.credentials import Credentials

from proxy.config import ConfigError, KitRoutes, load_settings
from proxy.kit.local.server import LocalBackend, PrivateApi
from proxy.kit.sigv4 import sign
from proxy.results import S3ResultStore
from tests import sdk
from tests.harness import AppServer, LoopThread, ProxyServer, metric_value, proxy_with_aws_keys
from tests.processes import proxy_process

REGION = "cn-northwest-1"
API = PrivateApi(api_id="abc123defg", vpce_id="vpce-0abc123def4567890", region=REGION)


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with LoopThread() as lt, lt.started(LocalBackend(REGION, "prod", KitRoutes(), private=API)) as local:
        yield local



def private_proxy(backend: LocalBackend, **settings: Any) -> ProxyServer:
    """A proxy whose AWS identity (botocore's chain, here the env) is the backend's generated one."""
    return proxy_with_aws_keys(backend.credentials.access_key, backend.credentials.secret_key, aws_region=REGION,
                               kit_connect_url=backend.base_url, **settings)


WAYS = {
    # private DNS on: the API's own name resolves to the endpoint; nothing else to send
    "private-dns": {"kit_url": f"https://{API.api_host}"},
    # the endpoint's DNS name, the API named by x-apigw-api-id (Host stays the endpoint's name)
    "vpce+api-id": {"kit_url": f"https://{API.vpce_host}", "kit_api_id": API.api_id},
    # the endpoint's DNS name, the API named by Host
    "vpce+host": {"kit_url": f"https://{API.vpce_host}", "kit_host_header": API.api_host},
    # the Route 53 alias API Gateway creates when the endpoint is associated with the API
    "route53-alias": {"kit_url": f"https://{API.alias_host}"},
}
WRONG = {
    "vpce-alone": {"kit_url": f"https://{API.vpce_host}"},
    "wrong-api-id": {"kit_url": f"https://{API.vpce_host}", "kit_api_id": "zzz999zzzz"},
    "another-apis-host": {"kit_url": f"https://{API.vpce_host}",
                          "kit_host_header": f"zzz999zzzz.execute-api.{REGION}.amazonaws.com.cn"},
}


def recognize(proxy: ProxyServer, images: Any) -> Any:
    return sdk.ocr(proxy.endpoint).recognize_character(ocr_models.RecognizeCharacterRequest(
        image_url=f"{images.url}/text.png", min_height=10, output_probability=True))


@pytest.mark.parametrize("way", WAYS)
def test_each_documented_way_reaches_the_private_api(backend, images, way):
    with private_proxy(backend, **WAYS[way]) as proxy:
        resp = recognize(proxy, images)
    assert resp.status_code == 200 and resp.body.data.results


@pytest.mark.parametrize("wrong", WRONG)
def test_a_wrong_combination_is_refused_as_service_unavailable(backend, images, wrong):
    refused = {"route": "ocr", "status": "403"}
    before = metric_value("vision_proxy_kit_calls_total", **refused)
    with private_proxy(backend, **WRONG[wrong]) as proxy, pytest.raises(ServerException) as exc:
        recognize(proxy, images)
    assert (exc.value.code, exc.value.status_code) == ("ServiceUnavailable", 503)
    # the gateway's 403, not a connection failure
    assert metric_value("vision_proxy_kit_calls_total", **refused) == before + 1


def test_host_and_api_id_are_sent_as_signed():
    body = b"{}"
    headers = sign("http://127.0.0.1:9/prod/lite-ocr", body, hashlib.sha256(body).hexdigest(),
                   Credentials("AKID", "secret"), REGION, {"x-apigw-api-id": API.api_id}, host=API.vpce_host)
    assert headers["Host"] == API.vpce_host and headers["x-apigw-api-id"] == API.api_id
    signed = headers["Authorization"].partition("SignedHeaders=")[2].split(",")[0].split(";")
    assert {"host", "x-apigw-api-id"} <= set(signed)


@pytest.mark.parametrize(("settings", "message"), [
    ({"kit_api_id": "abc123defg"}, "need kit_url"),
    ({"kit_url": "https://a.example", "kit_connect_url": "https://vpce.example/prod"}, "scheme://host[:port] only"),
    ({"kit_url": "https://a.example", "kit_host_header": "https://a.example"}, "no scheme or path"),
    ({"kit_url": "https://a.example", "kit_api_id": "ABC-123"}, "lowercase letters and digits"),
    ({"redis_url": "http://redis:6379"}, "redis://"),
    ({"s3_endpoint_url": "https://vpce-0abc-xyz.s3.cn-northwest-1.vpce.amazonaws.com.cn"},
     "https://bucket.vpce-0abc-xyz.s3.cn-northwest-1.vpce.amazonaws.com.cn"),
    ({"s3_endpoint_url": "https://bucket.vpce-0abc-xyz.s3.cn-north-1.vpce.amazonaws.com.cn"},
     "set VISION_PROXY_S3_REGION"),
])
def test_config_names_the_mistake(settings, message):
    with pytest.raises(ConfigError) as exc:
        load_settings(None, **settings)
    assert message in str(exc.value)


@pytest.mark.parametrize(("endpoint", "style", "url_start"), [
    # gateway endpoint (or none): botocore's own China-partition host
    (None, "auto", "https://vision-results.s3.cn-northwest-1.amazonaws.com.cn/r/results/"),
    # interface endpoint, path style: one name for every bucket, covered by the endpoint's certificate
    ("https://bucket.vpce-0abc-xyz.s3.cn-northwest-1.vpce.amazonaws.com.cn", "path",
     "https://bucket.vpce-0abc-xyz.s3.cn-northwest-1.vpce.amazonaws.com.cn/vision-results/r/results/"),
    # interface endpoint, virtual style (bucket names without dots)
    ("https://bucket.vpce-0abc-xyz.s3.cn-northwest-1.vpce.amazonaws.com.cn", "virtual",
     "https://vision-results.bucket.vpce-0abc-xyz.s3.cn-northwest-1.vpce.amazonaws.com.cn/r/results/"),
])
def test_s3_result_urls_go_through_the_configured_endpoint(monkeypatch, endpoint, style, url_start):
    """The presigned URL the app downloads names the same endpoint the proxy writes through."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE01")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
    store = S3ResultStore("vision-results", "r/", 60, REGION, endpoint, style)
    with closing(store._make_client()) as client:
        url = client.generate_presigned_url("get_object", Params={"Bucket": "vision-results",
                                                                  "Key": store._result_key("k1", 1)})
    assert url.startswith(url_start) and f"%2F{REGION}%2Fs3%2Faws4_request" in url


def _tls_files(tmp: Path) -> tuple[Path, Path, Path]:
    """A test CA and a certificate it signs for `localhost` only (the VPC endpoint's name, here)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)

    def cert(subject: str, key: Any, issuer: str, issuer_key: Any, ca: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(hours=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_pem = cert("test CA", ca_key, "test CA", ca_key, True).public_bytes(serialization.Encoding.PEM)
    leaf_pem = cert("localhost", leaf_key, "test CA", ca_key, False).public_bytes(serialization.Encoding.PEM)
    paths = tmp / "ca.pem", tmp / "leaf.pem", tmp / "leaf.key"
    paths[0].write_bytes(ca_pem)
    paths[1].write_bytes(leaf_pem)
    paths[2].write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    return paths


def test_tls_checks_the_endpoints_name_while_host_names_the_api(backend, images, tmp_path):
    """Over TLS the certificate is checked against the name connected to (the endpoint's, here
    `localhost`), never against the Host header (the API's): a real `serve` process, a real SDK call."""
    ca, leaf, key = _tls_files(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(leaf, key)
    with AppServer(backend.app, ssl_context=context) as tls, proxy_process({
            "VISION_PROXY_CALLER_KEYS": "testid:testsecret", "VISION_PROXY_FETCH_ALLOW": "127.0.0.1/32",
            "VISION_PROXY_AWS_REGION": REGION, "VISION_PROXY_DATA_DIR": str(tmp_path / "data"),
            "VISION_PROXY_KIT_URL": f"https://{API.vpce_host}", "VISION_PROXY_KIT_API_ID": API.api_id,
            "VISION_PROXY_KIT_CONNECT_URL": f"https://localhost:{tls.port}",
            "AWS_ACCESS_KEY_ID": backend.credentials.access_key,
            "AWS_SECRET_ACCESS_KEY": backend.credentials.secret_key, "SSL_CERT_FILE": str(ca)}) as served:
        resp = sdk.ocr(served.endpoint).recognize_character(ocr_models.RecognizeCharacterRequest(
            image_url=f"{images.url}/text.png", min_height=10, output_probability=True))
        assert resp.status_code == 200 and resp.body.data.results
        served.stop()
        output = served.output()
    assert "kit.unreachable" not in output

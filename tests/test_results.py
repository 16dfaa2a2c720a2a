"""The result stores, local and S3, through the same tests: a result URL downloads with a plain HTTP client,
expires, and refuses tampering; records round-trip between replicas and expire; cleanup removes what expired.

S3 is a real S3-API server run as a subprocess on a loopback port: nanio, which checks SigV4 presigned URLs
and their expiry as S3 does (moto_server serves a tampered or expired presigned URL with 200). Local result
URLs are fetched from a running proxy that shares the store's data_dir and signing key, i.e. another replica.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import structlog
from aiohttp import ClientSession
from yarl import URL

from proxy.config import ConfigError, load_settings
from proxy.results import LocalResultStore, ResultStore, S3ResultStore, open_store
from tests import imagegen
from tests.harness import ProxyServer
from tests.s3server import BUCKET, REGION, S3_KEY_ID, S3_SECRET

SIGNING_KEY = "results-test-signing-key-0123456789"


@functools.cache
def big_png() -> bytes:
    return imagegen.noise_image(1100, 1100)  # ~3.6 MB: streamed in several chunks


@functools.cache
def small_jpeg() -> bytes:
    return imagegen.text_image("JPEG")


# ---- one fixture, two stores


@dataclass
class Backend:
    kind: str
    settings: dict[str, Any]
    base_url: str  # what a caller's request would give as scheme://host:port
    stores: list[ResultStore] = field(default_factory=list)

    async def store(self, **overrides: Any) -> ResultStore:
        """A store instance as one replica would build it from its config; all share data_dir / bucket."""
        store = await open_store(load_settings(None, **{**self.settings, **overrides}))
        self.stores.append(store)
        return store


def _use_test_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's default chain finds these in the environment, and nothing from the machine."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(params=["local", "s3"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Backend]:
    with ExitStack() as servers:
        if request.param == "local":
            settings: dict[str, Any] = {"data_dir": str(tmp_path / "data"), "result_signing_key": SIGNING_KEY}
            # The serving replica: a real proxy (its own cleanup kept out of the way of the tests' counts).
            proxy = servers.enter_context(ProxyServer(**settings, result_cleanup_interval_seconds=3600))
            b = Backend("local", settings, proxy.url)
        else:
            endpoint = request.getfixturevalue("s3_endpoint")
            _use_test_aws_credentials(monkeypatch)
            settings = {"result_store": "s3", "s3_bucket": BUCKET, "s3_prefix": f"test-{uuid.uuid4().hex}",
                        "s3_endpoint_url": endpoint, "s3_region": REGION, "s3_addressing_style": "path"}
            b = Backend("s3", settings, "http://proxy-as-the-caller-saw-it:8080")
        yield b
        for store in b.stores:
            await store.close()


async def fetch(url: str) -> tuple[int, str, bytes]:
    """A plain HTTP GET of the URL exactly as given (no re-quoting of the presigned query)."""
    async with ClientSession() as session, session.get(URL(url, encoded=True)) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.read()


def tamper(url: str, param: str, change: Any) -> str:
    """The URL with one raw query parameter's value changed, everything else byte for byte."""
    base, _, query = url.partition("?")
    parts = []
    for item in query.split("&"):
        name, _, value = item.partition("=")
        parts.append(f"{name}={change(value)}" if name == param else item)
    assert parts != query.split("&"), f"{param} not in {url}"
    return f"{base}?{'&'.join(parts)}"


def flip_last(value: str) -> str:
    return value[:-1] + ("A" if value[-1] != "A" else "B")


# ---- the same tests for both stores


async def test_url_downloads_the_same_bytes_and_type(backend: Backend) -> None:
    store = await backend.store()
    ns = uuid.uuid4().hex
    png_url = await store.put(f"imageseg/{ns}/body.png", big_png(), "image/png", backend.base_url)
    jpg_url = await store.put(f"imageenhan/{ns}.jpg", small_jpeg(), "image/jpeg", backend.base_url)
    assert await fetch(png_url) == (200, "image/png", big_png())
    assert await fetch(jpg_url) == (200, "image/jpeg", small_jpeg())
    if backend.kind == "local":
        assert png_url.startswith(f"{backend.base_url}/results/imageseg/{ns}/body.png?Expires=")
        assert "&Signature=" in png_url
    else:
        assert png_url.startswith(backend.settings["s3_endpoint_url"])  # base_url plays no part
        assert "X-Amz-Expires=1800&" in png_url


async def test_expired_url_is_refused(backend: Backend) -> None:
    store = await backend.store(result_ttl_seconds=2)
    url = await store.put(f"{uuid.uuid4().hex}.png", big_png(), "image/png", backend.base_url)
    assert (await fetch(url))[0] == 200
    await asyncio.sleep(3.2)
    status, content_type, body = await fetch(url)
    assert status == 403
    if backend.kind == "local":  # OSS's own answer for an expired result URL
        assert content_type == "application/xml"
        assert b"<Code>AccessDenied</Code><Message>Request has expired.</Message>" in body
        assert b"<Expires>" in body and b"<ServerTime>" in body


async def test_tampered_url_is_refused(backend: Backend) -> None:
    store = await backend.store()
    ns = uuid.uuid4().hex
    url = await store.put(f"{ns}/a.png", big_png(), "image/png", backend.base_url)
    await store.put(f"{ns}/b.png", small_jpeg(), "image/jpeg", backend.base_url)  # exists: no 404 to hide behind
    signature, expiry = ("Signature", "Expires") if backend.kind == "local" else ("X-Amz-Signature", "X-Amz-Expires")
    tampered = {
        "signature": tamper(url, signature, flip_last),
        "key": url.replace(f"{ns}/a.png?", f"{ns}/b.png?"),
        "expiry": tamper(url, expiry, lambda v: str(int(v) + 3600)),
    }
    for what, bad in tampered.items():
        status, _, body = await fetch(bad)
        assert status == 403, (what, status, body[:300])
    status, _, _ = await fetch(tamper(url, signature, lambda v: ""))
    assert status == (403 if backend.kind == "local" else 400)  # S3: AuthorizationQueryParametersError
    assert (await fetch(url))[0] == 200


async def test_another_replica_reads_records_and_serves_urls(backend: Backend) -> None:
    first, second = await backend.store(), await backend.store()
    ns = uuid.uuid4().hex
    url = await first.put(f"{ns}.png", big_png(), "image/png", backend.base_url)
    record = {"JobId": ns, "Status": "PROCESSING", "Deadline": 1.5, "Result": {"ImageURL": url}, "备注": "中文"}
    await first.put_record(f"jobs/{ns}", record, 60)
    await first.close()
    assert await second.get_record(f"jobs/{ns}") == record
    await second.put_record(f"jobs/{ns}", {**record, "Status": "PROCESS_SUCCESS"}, 60)
    third = await backend.store()
    assert (await third.get_record(f"jobs/{ns}") or {})["Status"] == "PROCESS_SUCCESS"
    assert await fetch(url) == (200, "image/png", big_png())  # local: served by the proxy, another instance
    assert await second.get_record(f"jobs/{uuid.uuid4().hex}") is None


async def test_records_expire(backend: Backend) -> None:
    store = await backend.store()
    key = f"jobs/{uuid.uuid4().hex}"
    await store.put_record(key, {"Status": "QUEUING"}, 0.5)
    assert await store.get_record(key) == {"Status": "QUEUING"}
    await asyncio.sleep(0.8)
    assert await store.get_record(key) is None


async def test_a_damaged_record_is_a_store_error_not_a_crash(backend: Backend) -> None:
    """A torn or damaged record surfaces as ResultStoreError (callers answer ServiceUnavailable)."""
    from proxy.results import ResultStoreError

    store = await backend.store()
    key = f"jobs/{uuid.uuid4().hex}"
    await store.put_record(key, {"Status": "QUEUING"}, 60)
    damaged = b'{"expires": 1e12, "record": {"Sta'
    if isinstance(store, S3ResultStore):
        store._client.put_object(Bucket=store.bucket, Key=store._record_key(key), Body=damaged)
    else:
        assert isinstance(store, LocalResultStore)
        next(p for p in Path(backend.settings["data_dir"]).rglob("*.json") if key.split("/")[1] in p.name) \
            .write_bytes(damaged)
    with pytest.raises(ResultStoreError):
        await store.get_record(key)


async def test_cleanup_removes_what_expired_and_nothing_else(backend: Backend) -> None:
    short, long = await backend.store(result_ttl_seconds=1), await backend.store()
    ns = uuid.uuid4().hex
    await short.put(f"{ns}/old.png", big_png(), "image/png", backend.base_url)
    live_url = await long.put(f"{ns}/new.png", small_jpeg(), "image/jpeg", backend.base_url)
    await short.put_record(f"jobs/{ns}-old", {"Status": "PROCESS_SUCCESS"}, 0.5)
    await long.put_record(f"jobs/{ns}-new", {"Status": "PROCESSING"}, 600)
    await asyncio.sleep(2.2)
    assert await long.cleanup() == 2  # each object's own expiry counts, not the cleaning store's ttl
    assert await short.cleanup() == 0
    assert await fetch(live_url) == (200, "image/jpeg", small_jpeg())
    assert await short.get_record(f"jobs/{ns}-new") == {"Status": "PROCESSING"}


@pytest.mark.parametrize("key", ["../etc/passwd", "a/../../b", "/abs.png", ".hidden", "a//b.png", "a/.x",
                                 "", "a b.png", "a?b.png", "a%2e.png", "x" * 600])
async def test_keys_that_could_escape_are_rejected(backend: Backend, key: str) -> None:
    store = await backend.store()
    with pytest.raises(ValueError, match="invalid result key"):
        await store.put(key, b"x", "image/png", backend.base_url)
    with pytest.raises(ValueError, match="invalid result key"):
        await store.put_record(key, {}, 60)
    with pytest.raises(ValueError, match="invalid result key"):
        await store.get_record(key)


# ---- the local store's route, and the wiring in the app


@pytest.fixture
def local_proxy(tmp_path: Path) -> Iterator[ProxyServer]:
    with ProxyServer(data_dir=str(tmp_path / "data"), result_signing_key=SIGNING_KEY, result_ttl_seconds=1,
                     result_cleanup_interval_seconds=0.2) as server:
        yield server


async def raw_get(server: ProxyServer, target: str) -> tuple[int, bytes]:
    """GET with the request target sent exactly as written (clients would normalise `..` away)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {server.endpoint}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_local_route_refuses_traversal_and_answers_404_for_unknown_keys(local_proxy: ProxyServer,
                                                                           tmp_path: Path) -> None:
    store = local_proxy.services.backends.results
    assert isinstance(store, LocalResultStore)
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    expires = int(time.time()) + 600
    for target in ("/results/../secret.txt", "/results/%2E%2E/secret.txt", "/results/..%2Fsecret.txt",
                   "/results/%2e%2e%2fsecret.txt"):
        key = "../secret.txt"
        status, body = await raw_get(local_proxy, f"{target}?Expires={expires}&Signature={store.sign(key, expires)}")
        assert status in (403, 404), (target, status)
        assert b"not yours" not in body
    status, body = await raw_get(local_proxy, f"/results/nothing.png?Expires={expires}"
                                              f"&Signature={store.sign('nothing.png', expires)}")
    assert status == 404 and b"<Code>NoSuchKey</Code>" in body
    status, body = await raw_get(local_proxy, "/results/nothing.png")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body


async def test_app_uses_its_store_and_cleans_it_periodically(local_proxy: ProxyServer, tmp_path: Path) -> None:
    store = local_proxy.services.backends.results
    url = local_proxy.lt.run(store.put("matting/r.png", big_png(), "image/png", local_proxy.url))
    assert urlsplit(url).netloc == local_proxy.endpoint
    assert await fetch(url) == (200, "image/png", big_png())
    async with ClientSession() as session, session.head(URL(url, encoded=True)) as head:
        assert head.status == 200 and head.content_length == len(big_png())
    stored = tmp_path / "data" / "results" / "matting" / "r.png"
    assert stored.is_file()
    deadline = time.monotonic() + 5
    while stored.exists() and time.monotonic() < deadline:  # ttl 1 s, cleanup every 0.2 s
        await asyncio.sleep(0.1)
    assert not stored.exists()


def test_app_with_the_s3_store(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_test_aws_credentials(monkeypatch)
    with ProxyServer(result_store="s3", s3_bucket=BUCKET, s3_endpoint_url=s3_endpoint,
                     s3_addressing_style="path", s3_prefix="wiring") as server:
        store = server.services.backends.results
        assert isinstance(store, S3ResultStore)
        assert (store.region, store.prefix) == ("cn-northwest-1", "wiring/")  # region defaults to aws_region
        url = server.lt.run(store.put("k.png", b"\x89PNG-ish", "image/png", server.url))
        response = requests.get(url, timeout=5)
        assert (response.status_code, response.content) == (200, b"\x89PNG-ish")
        assert requests.get(f"{server.url}/results/k.png", timeout=5).status_code != 200  # no local route


async def test_random_signing_key_warns(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        store = await open_store(load_settings(None, data_dir=str(tmp_path)))
    await store.close()
    assert any(e["event"] == "results.ephemeral_signing_key" and "VISION_PROXY_RESULT_SIGNING_KEY" in e["warning"]
               for e in logs)


# ---- config


def test_result_store_config_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"RESULT_STORE": "s3", "RESULT_TTL_SECONDS": "900", "PUBLIC_BASE_URL": "https://p.example/v/",
                        "DATA_DIR": "/var/lib/vision", "RESULT_SIGNING_KEY": SIGNING_KEY, "S3_BUCKET": "b",
                        "S3_PREFIX": "/vision/results", "S3_REGION": "cn-north-1",
                        "S3_ENDPOINT_URL": "https://s3.cn-northwest-1.amazonaws.com.cn"}.items():
        monkeypatch.setenv(f"VISION_PROXY_{name}", value)
    s = load_settings()
    assert (s.result_store, s.result_ttl_seconds, s.public_base_url, str(s.data_dir)) == \
        ("s3", 900, "https://p.example/v", "/var/lib/vision")
    assert (s.s3_bucket, s.s3_prefix, s.s3_region, s.s3_endpoint_url) == \
        ("b", "vision/results/", "cn-north-1", "https://s3.cn-northwest-1.amazonaws.com.cn")
    assert SIGNING_KEY not in repr(s)


def test_result_store_defaults() -> None:
    s = load_settings()
    assert (s.result_store, s.result_ttl_seconds, s.public_base_url, s.data_dir, s.result_signing_key) == \
        ("local", 1800, None, Path("data"), None)


@pytest.mark.parametrize(("settings", "named"), [
    ({"result_store": "s3"}, "VISION_PROXY_S3_BUCKET"),
    ({"result_signing_key": "short"}, "result_signing_key"),
    ({"public_base_url": "proxy.example:8080"}, "public_base_url"),
    ({"public_base_url": "https://p.example/?x=1"}, "public_base_url"),
    ({"result_ttl_seconds": 0}, "result_ttl_seconds"),
    ({"result_store": "oss"}, "result_store"),
])
def test_result_store_config_refusals(settings: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(None, **settings)

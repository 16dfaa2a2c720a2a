"""SSRF: every URL form that reaches loopback or the metadata address is refused, through every entry point
(RecognizeCharacter ImageURL, ocr-api Url, SegmentBody ImageURL, async enlargement, redirects), and the
connector itself refuses any socket to a forbidden address, whatever the URL check decided.

Targets are a loopback file server only: a form that slipped through would fetch its image (and answer
200), so a refusal here is the guard's doing, not a dead address.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from alibabacloud_imageenhan20190930 import models as enhan
from alibabacloud_imageseg20191230 import models as seg
from alibabacloud_ocr20191230 import models as ocr_models
from alibabacloud_ocr_api20210707 import models as api_models
from alibabacloud_tea_openapi.exceptions import ClientException

from proxy.ssrf import Guard, GuardedResolver, _vouched, connection_scope, guarded_connector, refused
from tests import imagegen, sdk
from tests.conftest import CALLER_KEYS
from tests.harness import AppServer, ProxyServer, serve_files

# Unicode forms yarl/IDNA normalise to an address (the findings); {port}: the loopback server.
UNICODE = [
    "http://１２７.０.０.１:{port}/text.png",  # fullwidth digits and full stops
    "http://127。0。0。1:{port}/text.png",  # ideographic full stops
    "http://①②⑦.0.0.1:{port}/text.png",  # circled digits
    "http://127．0．0．1:{port}/text.png",  # fullwidth full stops only
    "http://１６９.２５４.１６９.２５４/latest/meta-data/",  # the metadata address
]
CLASSIC = [
    "http://2130706433:{port}/text.png",  # decimal
    "http://0177.0.0.1:{port}/text.png",  # octal
    "http://0x7f.0.0.1:{port}/text.png",  # hex
    "http://0x7f000001:{port}/text.png",
    "http://127.1:{port}/text.png",  # short form
    "http://127.0.0.1.:{port}/text.png",  # trailing dot
    "http://[::ffff:127.0.0.1]:{port}/text.png",  # IPv4-mapped IPv6
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://[::127.0.0.1]:{port}/text.png",  # IPv4-compatible IPv6
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",  # NAT64 to the metadata address
    "http://[64:ff9b:1::7f00:1]:{port}/text.png",  # local-use NAT64
    "http://[2002:7f00:1::]:{port}/text.png",  # 6to4
    "http://0.0.0.0:{port}/text.png",
    "http://[::]:{port}/text.png",
    "http://user:pass@127.0.0.1:{port}/text.png",  # userinfo
    "http://images.example.com@127.0.0.1:{port}/text.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://ｌｏｃａｌｈｏｓｔ:{port}/text.png",  # a fullwidth name: normalised, resolved, refused
]


@pytest.fixture(scope="module")
def files() -> Iterator[AppServer]:
    png = imagegen.text_image("PNG")
    redirects: dict[str, str] = {}
    with serve_files({"/text.png": png, "/small.png": imagegen.blank_image(64, 48)}, redirects) as server:
        redirects.update({f"/to{i}": u.format(port=server.port) for i, u in enumerate(UNICODE + CLASSIC)})
        yield server


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    """Nothing allow-listed: loopback is off limits in every spelling."""
    with ProxyServer(caller_keys=CALLER_KEYS, fetch_timeout_seconds=2,
                     data_dir=tmp_path_factory.mktemp("ssrf-results")) as server:
        yield server


def _recognize(endpoint: str, url: str) -> ClientException:
    with pytest.raises(ClientException) as exc:
        sdk.ocr(endpoint).recognize_character(ocr_models.RecognizeCharacterRequest(
            image_url=url, min_height=10, output_probability=True))
    return exc.value


def _refused(err: ClientException, code: str = "InvalidImage.URL") -> None:
    assert (err.code, err.status_code) == (code, 400), err.message
    assert "not allowed" in err.message  # the guard's refusal, not a failed download


@pytest.mark.parametrize("url", UNICODE + CLASSIC)
def test_recognize_character_refuses(strict, files, url):
    _refused(_recognize(strict.endpoint, url.format(port=files.port)))


@pytest.mark.parametrize("url", UNICODE[:4])
def test_non_ascii_address_refused_even_when_the_address_is_allowed(proxy, files, url):
    """`proxy` allow-lists 127.0.0.1/32: the ASCII spelling is fetched, the Unicode one is not."""
    ok = sdk.ocr(proxy.endpoint).recognize_character(ocr_models.RecognizeCharacterRequest(
        image_url=f"http://127.0.0.1:{files.port}/text.png", min_height=10, output_probability=True))
    assert ok.body.data.results
    err = _recognize(proxy.endpoint, url.format(port=files.port))
    _refused(err)
    assert "non-ASCII" in err.message


@pytest.mark.parametrize("index", [0, 1, 2, 4, len(UNICODE), len(UNICODE) + 7, len(UNICODE) + 9])
def test_redirects_are_judged_like_first_hops(proxy, files, index):
    """An allowed loopback server redirecting to a Unicode or classic spelling: each hop is judged."""
    _refused(_recognize(proxy.endpoint, f"{files.url}/to{index}"))


@pytest.mark.parametrize("url", [UNICODE[0], UNICODE[4], CLASSIC[0]])
def test_ocr_api_url_refuses(strict, files, url):
    with pytest.raises(ClientException) as exc:
        sdk.ocr_api(strict.endpoint).recognize_general(
            api_models.RecognizeGeneralRequest(url=url.format(port=files.port)))
    _refused(exc.value, "illegalImageUrl")


@pytest.mark.parametrize("url", [UNICODE[1], UNICODE[2], CLASSIC[6]])
def test_segment_body_refuses(strict, files, url):
    with pytest.raises(ClientException) as exc:
        sdk.imageseg(strict.endpoint).segment_body(seg.SegmentBodyRequest(
            image_url=url.format(port=files.port).replace("text.png", "small.png")))
    _refused(exc.value)


def test_async_enlargement_refuses(strict, files):
    """The job itself fetches: it fails with the guard's code instead of enlarging a loopback answer."""
    client = sdk.imageenhan(strict.endpoint)
    job = client.generate_super_resolution_image(enhan.GenerateSuperResolutionImageRequest(
        image_url=f"http://１２７.０.０.１:{files.port}/small.png", scale=2))
    data = _poll(client, job.body.request_id)
    assert (data.status, data.error_code) == ("PROCESS_FAILED", "InvalidImage.URL")


def test_pass_url_mode_refuses_unicode_forms(files):
    with ProxyServer(caller_keys="testid:testsecret", image_mode="pass-url", fetch_allow="127.0.0.1/32") as server:
        for url in UNICODE:
            _refused(_recognize(server.endpoint, url.format(port=files.port)))


def _poll(client: Any, job_id: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = client.get_async_job_result(enhan.GetAsyncJobResultRequest(job_id=job_id)).body.data
        if data.status not in ("QUEUING", "PROCESSING"):
            return data
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still running after {timeout} s")


# ---------------------------------------------------------------- the connector, below any URL check


async def _get(session: aiohttp.ClientSession, url: str) -> int | BaseException:
    try:
        with connection_scope():
            async with session.get(url) as resp:
                return resp.status
    except aiohttp.ClientConnectorError as exc:
        return exc.os_error


def test_connector_refuses_sockets_the_url_check_never_saw(files):
    """aiohttp skips the resolver for IP literals: the socket factory still refuses them. An allow-listed
    name's addresses are vouched for only within that name's own request."""
    async def run() -> tuple[Any, ...]:
        guard = Guard(["localhost"])
        async with aiohttp.ClientSession(connector=guarded_connector(guard)) as session:
            literal = await _get(session, f"http://127.0.0.1:{files.port}/text.png")
            mapped = await _get(session, f"http://[::ffff:127.0.0.1]:{files.port}/text.png")
            named = await _get(session, f"http://localhost:{files.port}/text.png")
            after = await _get(session, f"http://127.0.0.1:{files.port}/small.png")  # new connection key
        async with aiohttp.ClientSession(connector=guarded_connector(Guard([]))) as session:
            unlisted = await _get(session, f"http://localhost:{files.port}/text.png")
        return literal, mapped, named, after, unlisted

    literal, mapped, named, after, unlisted = asyncio.run(run())
    assert named == 200
    for outcome in (literal, mapped, after, unlisted):
        assert isinstance(outcome, OSError) and refused(outcome), outcome


def test_resolver_keeps_only_allowed_addresses():
    async def run() -> list[str]:
        resolver = GuardedResolver(Guard(["127.0.0.0/8"]))
        try:
            return [r["host"] for r in await resolver.resolve("localhost", 80, 0)]  # type: ignore[arg-type]
        finally:
            await resolver.close()

    hosts = asyncio.run(run())
    assert hosts and all(h.startswith("127.") for h in hosts)  # ::1 (not allow-listed) dropped


@pytest.mark.parametrize(("address", "allowed"), [
    ("8.8.8.8", True), ("2606:4700::1111", True), ("::ffff:8.8.8.8", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("100.64.0.1", False), ("169.254.169.254", False),
    ("fd00:ec2::254", False), ("::1", False), ("fe80::1%1", False), ("224.0.0.1", False), ("ff02::1", False),
    ("64:ff9b::808:808", False), ("2002:808:808::", False), ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),
])
def test_address_policy(address, allowed):
    assert Guard([]).address_allowed(address) is allowed


def test_resolver_reuses_its_judged_answer_and_still_vouches_per_request():
    """The second resolution of a name within the TTL asks no resolver (the inner one is counted, not
    replaced); an allow-listed name's cached answer is vouched for again in the new request's scope."""
    async def run() -> tuple[int, list[str], frozenset[str], frozenset[str]]:
        guard = Guard(["localhost"])
        resolver = GuardedResolver(guard)
        asked = 0
        real = resolver.inner.resolve

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal asked
            asked += 1
            return await real(*args, **kwargs)

        resolver.inner.resolve = counted  # type: ignore[method-assign]
        try:
            with connection_scope():
                await resolver.resolve("localhost", 80)
            with connection_scope():
                hosts = [r["host"] for r in await resolver.resolve("localhost", 80)]
                vouched = _vouched.get()
            return asked, hosts, vouched, _vouched.get()
        finally:
            await resolver.close()

    asked, hosts, vouched, outside = asyncio.run(run())
    assert asked == 1 and hosts and vouched == frozenset(hosts) and outside == frozenset()


def test_resolver_cache_keeps_only_allowed_addresses_and_no_refusals():
    async def run() -> tuple[list[list[str]], bool]:
        guard = Guard(["127.0.0.0/8"])
        resolver = GuardedResolver(guard)
        try:
            seen = [[r["host"] for r in await resolver.resolve("localhost", 80, 0)] for _ in range(2)]  # type: ignore[arg-type]
            with pytest.raises(OSError) as caught:
                await GuardedResolver(Guard([])).resolve("localhost", 80)
            return seen, refused(caught.value)
        finally:
            await resolver.close()

    seen, was_refused = asyncio.run(run())
    assert seen[0] == seen[1] and all(h.startswith("127.") for h in seen[0]) and was_refused

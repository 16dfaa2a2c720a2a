"""The decoded-pixel budget (proxy/pixels.py): costs judged from header-declared dimensions before any
pixel is decoded, callers beyond it wait (bounded) and then get Throttling, first come first served."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from alibabacloud_imageseg20191230 import models as seg
from alibabacloud_ocr_api20210707 import models as api_models
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException

from proxy.aliyun.errors import AliyunError
from proxy.pixels import PixelBudget, comparison_bytes, enlargement_bytes, matting_bytes, rotation_bytes
from tests import imagegen, sdk
from tests.conftest import CALLER_KEYS
from tests.harness import AppServer, ProxyServer, metric_value, serve_files

MiB = 1024 * 1024


# ---------------------------------------------------------------- the budget itself


async def _take(budget: PixelBudget, cost: int, name: str, order: list[str]) -> None:
    async with budget.hold(cost):
        order.append(name)


async def _queued(budget: PixelBudget, count: int) -> None:
    while budget.waiting < count:
        await asyncio.sleep(0)


def test_first_come_first_served_and_released_on_error():
    async def run() -> list[str]:
        budget, order = PixelBudget(100, wait=30), []
        with pytest.raises(RuntimeError):
            async with budget.hold(60):
                big = asyncio.create_task(_take(budget, 50, "big", order))  # does not fit beside 60
                await _queued(budget, 1)
                small = asyncio.create_task(_take(budget, 10, "small", order))  # fits, but queues behind big
                await _queued(budget, 2)
                assert budget.used == 60 and order == []
                raise RuntimeError("the decode failed")  # the reservation is still given back
        await asyncio.gather(big, small)
        assert (budget.used, budget.waiting) == (0, 0)
        return order

    assert asyncio.run(run()) == ["big", "small"]


def test_beyond_the_wait_throttling_and_a_cancelled_waiter_leaves_no_trace():
    async def run() -> None:
        budget = PixelBudget(100, wait=0)
        async with budget.hold(100):
            with pytest.raises(AliyunError) as exc:
                async with budget.hold(1):
                    pass
            assert (exc.value.code, exc.value.status) == ("Throttling", 400)
            budget.wait = 30
            stuck = asyncio.create_task(_take(budget, 90, "stuck", []))
            await _queued(budget, 1)
            order: list[str] = []
            behind = asyncio.create_task(_take(budget, 10, "behind", order))
            await _queued(budget, 2)
            stuck.cancel()
            await asyncio.gather(stuck, return_exceptions=True)
            assert budget.waiting == 1 and order == []
        await behind
        assert order == ["behind"] and (budget.used, budget.waiting) == (0, 0)

    asyncio.run(run())


def test_a_cost_above_the_whole_budget_is_refused_at_once():
    async def run() -> AliyunError:
        budget = PixelBudget(100, wait=30)
        with pytest.raises(AliyunError) as exc:
            async with budget.hold(101):
                pass
        assert budget.used == 0
        return exc.value

    err = asyncio.run(run())
    assert err.code == "InvalidImage.Resolution" and "memory budget" in err.message


def test_costs_grow_with_what_is_decoded():
    assert rotation_bytes(8000, 8000) > 489 * MiB  # the 726-byte JPEG: judged, not decoded
    assert matting_bytes(1999, 1999) < matting_bytes(6000, 6000)
    x2 = enlargement_bytes(1920, 1080, 2, 512)
    assert x2 < enlargement_bytes(1920, 1080, 4, 256)
    assert enlargement_bytes(5000, 5000, 4, 256, max_short=1080) < enlargement_bytes(5000, 5000, 4, 256)


def test_shadow_scoring_is_costed_from_the_result_headers():
    small, big = imagegen.blank_image(64, 48), imagegen.declaring(4000, 3000, "PNG")
    assert comparison_bytes("super_resolution", small, big) == 64 * 4000 * 3000  # the larger one counts
    assert comparison_bytes("matting", small, small) == 24 * 64 * 48
    assert comparison_bytes("ocr", small, big) == 0  # OCR answers are compared as text
    assert comparison_bytes("matting", small, None) == 0 and comparison_bytes("matting", b"junk", small) == 0


# ---------------------------------------------------------------- through the proxy


@pytest.fixture(scope="module")
def small_budget(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    with ProxyServer(caller_keys=CALLER_KEYS, fetch_allow="127.0.0.1/32", decode_budget_bytes=64 * MiB,
                     decode_wait_seconds=60, data_dir=tmp_path_factory.mktemp("budget-results")) as server:
        yield server


@pytest.fixture(scope="module")
def files() -> Iterator[AppServer]:
    with serve_files({"/hd-declared.png": imagegen.declaring(5000, 5000, "PNG"),
                      "/small.png": imagegen.blank_image(64, 48)}) as server:
        yield server


def _refusals(reason: str) -> float:
    return metric_value("vision_proxy_decode_budget_refusals_total", reason=reason)


def _raw_general(endpoint: str, body: bytes) -> AlibabaCloudException:
    import io

    with pytest.raises(AlibabaCloudException) as exc:
        sdk.ocr_api(endpoint).recognize_general(api_models.RecognizeGeneralRequest(body=io.BytesIO(body)))
    return exc.value


def test_declared_dimensions_refused_before_any_decode(small_budget, files):
    """8000² declared in 667 bytes, EXIF-rotated: the rotation would cost ~900 MB, over the 64 MB budget."""
    before = _refusals("too_large")
    err = _raw_general(small_budget.endpoint, imagegen.declaring(8000, 8000, "JPEG", exif_orientation=6))
    assert (err.code, err.status_code) == ("InvalidImage.Resolution", 400) and "budget" in err.message
    with pytest.raises(AlibabaCloudException) as exc:
        sdk.imageseg(small_budget.endpoint).segment_hdbody(
            seg.SegmentHDBodyRequest(image_url=f"{files.url}/hd-declared.png"))
    assert exc.value.code == "InvalidImage.Resolution" and "budget" in exc.value.message
    assert _refusals("too_large") == before + 2
    assert small_budget.services.backends.budget.used == 0


def test_within_budget_a_lying_header_is_a_bad_image_not_a_500(small_budget):
    """2000² declared (56 MB to rotate, inside the budget): decoding finds the data truncated."""
    err = _raw_general(small_budget.endpoint, imagegen.declaring(2000, 2000, "PNG", exif_orientation=6))
    assert (err.code, err.status_code) == ("InvalidImage.Format", 400)
    assert small_budget.services.backends.budget.used == 0


def test_callers_wait_for_the_budget_then_throttling(small_budget, files):
    budget = small_budget.services.backends.budget
    loop = small_budget.lt

    async def hold_all() -> tuple[asyncio.Event, asyncio.Task[None]]:
        held, stop = asyncio.Event(), asyncio.Event()

        async def holder() -> None:
            async with budget.hold(budget.capacity):
                held.set()
                await stop.wait()

        task = asyncio.create_task(holder())
        await held.wait()
        return stop, task

    def segment() -> str:
        client = sdk.imageseg(small_budget.endpoint)
        return str(client.segment_body(seg.SegmentBodyRequest(image_url=f"{files.url}/small.png",
                                                              return_form="mask")).body.data.image_url)

    stop, task = loop.run(hold_all())
    try:
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(segment)
            deadline = time.monotonic() + 60
            while budget.waiting < 1:  # the call is queued for its share, not refused
                assert time.monotonic() < deadline and not waiting.done(), "the call never queued"
                time.sleep(0.05)
            budget.wait = 0
            before = _refusals("throttled")
            with pytest.raises(AlibabaCloudException) as exc:
                segment()
            assert (exc.value.code, exc.value.status_code) == ("Throttling", 400)
            assert _refusals("throttled") == before + 1
            budget.wait = 60
            loop.loop.call_soon_threadsafe(stop.set)
            assert waiting.result(timeout=120).startswith("http")  # the waiter got its turn
    finally:
        budget.wait = 60
        loop.loop.call_soon_threadsafe(stop.set)
        loop.run(asyncio.wait_for(task, 10))
    assert (budget.used, budget.waiting) == (0, 0)

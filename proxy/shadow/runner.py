"""Shadow traffic: choose who answers (Aliyun or AWS), mirror a sample to the other side in the background,
compare the two answers by meaning, and report (metrics, a log event, the record store).

The caller's answer never waits for the mirror: mirroring is an observer that enqueues, with a bounded
queue and worker pool, its own timeout, and every drop counted by reason. Async jobs are followed to
completion on both sides before comparing; result images are downloaded (Aliyun) or taken as made (AWS).
"""

from __future__ import annotations

import asyncio
import json
import random
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from ..actions.call import Call
from ..aliyun.errors import AliyunError, Err
from ..aliyun.request import InboundRequest, new_request_id
from ..budget import comparison_bytes
from ..config import Settings
from ..exchange import Exchange
from ..images import ImageLoader
from ..jobs import JobRunner
from ..mappings import ActionSpec
from ..observability import metrics
from . import compare
from .aliyun import AliyunClient, Answer, NoAliyunKey
from .records import Record, RecordStore

log = structlog.get_logger("shadow")
TERMINAL = {"PROCESS_SUCCESS", "PROCESS_FAILED", "TIMEOUT_FAILED", "LIMIT_RETRY_FAILED", "JOB_CANCELED"}
POLL_SECONDS = 1.0
URL_KEYS = ("ImageURL", "ImageUrl", "imageUrl", "Url", "ResultUrl", "resultUrl")

AwsAnswer = Callable[[ActionSpec, InboundRequest], Awaitable[tuple[Answer, Call | None]]]


@dataclass
class Route:
    primary: str  # "aws" or "aliyun"
    mirror: bool


@dataclass
class Side:
    """One side's final answer (after following an async job) and the result image it points to."""

    answer: Answer
    body: Any
    image: bytes | None = None


@dataclass
class Mirror:
    spec: ActionSpec
    inbound: InboundRequest
    caller: str | None
    primary: str
    primary_answer: Answer
    call: Call | None


def _sampled(settings: Settings, caller: str | None) -> bool:
    if settings.shadow_sample >= 1:
        return True
    if settings.shadow_sample_by == "access-key" and caller:  # the same callers every time (GoReplay's hash)
        return zlib.crc32(caller.encode()) % 10_000 < settings.shadow_sample * 10_000
    return random.random() < settings.shadow_sample


class Shadow:
    def __init__(self, settings: Settings, aliyun: AliyunClient, store: RecordStore, images: ImageLoader,
                 jobs: JobRunner, aws_answer: AwsAnswer) -> None:
        self.settings = settings
        self.aliyun = aliyun
        self.store = store
        self.images = images
        self.jobs = jobs
        self.aws_answer = aws_answer
        self.queue: asyncio.Queue[Mirror] = asyncio.Queue(settings.shadow_queue_size)
        self._workers: list[asyncio.Task[None]] = []

    @property
    def enabled(self) -> bool:
        return self.settings.shadow_mode != "aws"

    def start(self) -> None:
        if self.enabled:
            self._workers = [asyncio.create_task(self._work(), name=f"shadow-{i}")
                             for i in range(self.settings.shadow_concurrency)]

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    # ---- on the request path: who answers, and whether to mirror

    def route(self, spec: ActionSpec, inbound: InboundRequest, caller: str | None) -> Route:
        mode = self.settings.shadow_mode
        if mode == "aws":
            return Route("aws", False)
        forwardable = self.aliyun.can_forward(inbound, caller)
        if not forwardable:
            self._drop("no_aliyun_key")
        primary = "aliyun" if mode == "shadow" and forwardable else "aws"
        chosen = self.settings.shadow_actions
        eligible = spec.shadow_safe and (not chosen or spec.action in chosen)
        if not (eligible and forwardable):
            return Route(primary, False)
        if len(inbound.body) > self.settings.shadow_max_body_bytes:
            self._drop("too_large")
            return Route(primary, False)
        if not _sampled(self.settings, caller):
            self._drop("sampled_out")
            return Route(primary, False)
        return Route(primary, True)

    async def answer_from_aliyun(self, spec: ActionSpec, inbound: InboundRequest, caller: str | None) -> web.Response:
        """Aliyun's answer, passed to the caller unchanged."""
        try:  # the caller waits on this one: the kit's timeout, not the background one
            answer = await self.aliyun.forward(inbound, spec.product, caller, timeout=self.settings.kit_timeout_seconds)
        except (TimeoutError, OSError, aiohttp.ClientError, NoAliyunKey) as exc:
            log.warning("shadow.aliyun_unreachable", error=type(exc).__name__)
            raise Err.SERVICE_UNAVAILABLE() from None
        metrics.SHADOW_SECONDS.labels(spec.action, "aliyun").observe(answer.seconds)
        return web.Response(status=answer.status, body=answer.body,
                            headers={"Content-Type": answer.content_type or "application/json;charset=utf-8"})

    def observe(self, ex: Exchange) -> None:
        """The observer: enqueue a mirror, or drop it (counted) when the queue is full."""
        if not (ex.mirror and ex.spec and ex.inbound):
            return
        body = ex.response.body if isinstance(ex.response.body, bytes) else b""
        mirror = Mirror(ex.spec, ex.inbound, ex.caller, ex.primary,
                        Answer(ex.response.status, body, ex.response.content_type, ex.seconds), ex.call)
        try:
            self.queue.put_nowait(mirror)
        except asyncio.QueueFull:
            self._drop("queue_full")

    def _drop(self, reason: str) -> None:
        metrics.SHADOW_DROPS.labels(reason).inc()

    # ---- in the background

    async def _work(self) -> None:
        while True:
            mirror = await self.queue.get()
            try:
                async with asyncio.timeout(self.settings.shadow_timeout_seconds):
                    await self.run(mirror)
            except TimeoutError:
                self._drop("timeout")
            except AliyunError as err:  # the decode budget (proxy/budget.py) refused to score the images
                log.warning("shadow.not_scored", action=mirror.spec.action, code=err.code, reason=err.message)
                self._drop("decode_budget")
            except Exception:
                log.exception("shadow.failed", action=mirror.spec.action)
                self._drop("failed")
            finally:
                self.queue.task_done()

    async def run(self, m: Mirror, mode: str | None = None) -> Record:
        """Get the other side, follow async jobs, download results, score, and record."""
        spec = m.spec
        other_is_aws = m.primary == "aliyun"
        call = m.call
        if other_is_aws:
            secondary_answer, call = await self.aws_answer(spec, replace(m.inbound, request_id=new_request_id()))
        else:
            secondary_answer = await self.aliyun.forward(m.inbound, spec.product, m.caller)
        metrics.SHADOW_SECONDS.labels(spec.action, "aws" if other_is_aws else "aliyun").observe(
            secondary_answer.seconds)
        aws_answer, aliyun_answer = (secondary_answer, m.primary_answer) if other_is_aws else \
            (m.primary_answer, secondary_answer)
        aws = await self._finish_aws(aws_answer, call)
        aliyun = await self._finish_aliyun(spec, aliyun_answer, m.caller)
        primary, secondary = (aliyun, aws) if other_is_aws else (aws, aliyun)
        noise = await self._noise(m, primary) if self.settings.shadow_noise else None
        thresholds = {**compare.thresholds_for(spec.action), **self.settings.shadow_thresholds.get(spec.action, {})}
        async with self.images.budget.hold(comparison_bytes(compare.family_of(spec.action), primary.image,
                                                            secondary.image)):
            scores, outcome = await asyncio.to_thread(_judge, spec.action, primary, secondary, thresholds, noise)
        mode = mode or self.settings.shadow_mode
        self._report(m, mode, primary, secondary, scores, outcome, noise)
        return await self.store.add_async(Record.build(
            action=spec.action, product=spec.product, mode=mode, outcome=outcome,
            scores=scores, primary=(primary.answer.status, primary.body),
            secondary=(secondary.answer.status, secondary.body),
            latency_ms=(primary.answer.seconds * 1000, secondary.answer.seconds * 1000),
            noise=noise[0] if noise else None, thresholds=thresholds,
            details={"request_id": m.inbound.request_id}), _images(call, primary, secondary))

    async def _finish_aws(self, answer: Answer, call: Call | None) -> Side:
        body = answer.json()
        if _is_async(answer, body) and call is not None:
            job_id = call.inbound.request_id
            while (data := await self.jobs.result(job_id))["Status"] not in TERMINAL:
                await asyncio.sleep(POLL_SECONDS)
            body = {"RequestId": body.get("RequestId"), "Data": data}
        image = call.stored[-1] if call and call.stored else None
        return Side(answer, body, image)

    async def _finish_aliyun(self, spec: ActionSpec, answer: Answer, caller: str | None) -> Side:
        body = answer.json()
        if _is_async(answer, body):
            if caller is None:
                raise NoAliyunKey("")
            job_id = body["RequestId"]
            while True:
                polled = await self.aliyun.call(spec.product, "GetAsyncJobResult", spec.version,
                                                {"JobId": job_id}, caller)
                body = polled.json()
                if polled.status != 200 or (body or {}).get("Data", {}).get("Status") in TERMINAL:
                    break
                await asyncio.sleep(POLL_SECONDS)
        url = _result_url(body)
        image = await self.images.download(url, self.settings.shadow_max_image_bytes) if url else None
        return Side(answer, body, image)

    async def _noise(self, m: Mirror, primary: Side) -> tuple[compare.Scores, Side] | None:
        """The primary asked again: how much it disagrees with itself (Diffy's noise floor). Not for async
        actions: a second AWS job would take a worker and a queue slot from real callers."""
        if _is_async(m.primary_answer, m.primary_answer.json()):
            return None
        try:
            if m.primary == "aliyun":
                again = await self._finish_aliyun(m.spec, await self.aliyun.forward(
                    m.inbound, m.spec.product, m.caller, fresh=True), m.caller)
            else:
                answer, call = await self.aws_answer(m.spec, replace(m.inbound, request_id=new_request_id()))
                again = await self._finish_aws(answer, call)
        except (NoAliyunKey, AliyunError, OSError, aiohttp.ClientError):
            return None
        async with self.images.budget.hold(comparison_bytes(compare.family_of(m.spec.action), primary.image,
                                                            again.image)):
            scores = await asyncio.to_thread(_scores, m.spec.action, primary, again)
        return (scores, again) if scores else None

    def _report(self, m: Mirror, mode: str, primary: Side, secondary: Side, scores: compare.Scores | None,
                outcome: compare.Outcome, noise: tuple[compare.Scores, Side] | None) -> None:
        action = m.spec.action
        metrics.SHADOW_COMPARISONS.labels(action, outcome.outcome).inc()
        for name, value in (scores.metrics.items() if scores else ()):
            if value is not None:
                metrics.SHADOW_SCORES.labels(action, name).observe(value)
        log.info("shadow.compared", request_id=m.inbound.request_id, action=action, mode=mode,
                 outcome=outcome.outcome, failed=outcome.failed,
                 scores={k: round(v, 4) for k, v in (scores.metrics.items() if scores else ()) if v is not None},
                 noise=bool(noise), primary_ms=round(primary.answer.seconds * 1000, 1),
                 secondary_ms=round(secondary.answer.seconds * 1000, 1))


def _is_async(answer: Answer, body: Any) -> bool:
    return answer.status == 200 and isinstance(body, dict) and "Data" not in body and "Message" in body


def _result_url(body: Any) -> str | None:
    data = body.get("Data") if isinstance(body, dict) else None
    if isinstance(data, dict) and isinstance(data.get("Result"), str):
        try:
            data = json.loads(data["Result"])
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    return next((data[k] for k in URL_KEYS if isinstance(data.get(k), str)), None)


def _scores(action: str, primary: Side, secondary: Side) -> compare.Scores | None:
    family = compare.family_of(action)
    if family == "ocr":
        return compare.compare_ocr(compare.ocr_lines(action, primary.body), compare.ocr_lines(action, secondary.body))
    if primary.image is None or secondary.image is None:
        return None
    if family == "matting":
        return compare.compare_masks(primary.image, secondary.image)
    if family == "super_resolution":
        return compare.compare_images(primary.image, secondary.image)
    return None


def _judge(action: str, primary: Side, secondary: Side, thresholds: dict[str, dict[str, float]],
           noise: tuple[compare.Scores, Side] | None) -> tuple[compare.Scores | None, compare.Outcome]:
    failed = compare.error_outcome(primary.answer.status, primary.body, secondary.answer.status, secondary.body)
    if failed is not None:
        return None, failed
    scores = _scores(action, primary, secondary)
    if scores is None:
        return None, compare.Outcome("error", ["no_result"], reasons=["a side gave no comparable result"])
    outcome = compare.evaluate(scores, thresholds)
    if noise is not None:
        outcome = compare.apply_noise_floor(outcome, thresholds, noise[0], scores)
    return scores, outcome


def _images(call: Call | None, primary: Side, secondary: Side) -> dict[str, bytes]:
    images = {"primary": primary.image, "secondary": secondary.image,
              "input": call.loaded.data if call and call.loaded else None}
    return {k: v for k, v in images.items() if v}


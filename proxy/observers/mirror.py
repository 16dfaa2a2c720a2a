"""The shadow mirror, a side-car observer: a sampled call's answer goes to the other side too, in the
background; both answers are compared by meaning and reported (metrics, a log event, the record store).

The caller's answer never waits for the mirror: observing only enqueues, with a bounded queue and worker
pool, its own timeout, and every drop counted by reason. Async jobs are followed to completion on both
sides before comparing; result images are downloaded (Aliyun) or taken as made (AWS). Who answers the
caller is decided on the request path (proxy/sides.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import structlog

from .. import workers
from ..aliyun.errors import AliyunError
from ..aliyun.request import InboundRequest, new_request_id
from ..config import Settings
from ..exchange import Exchange
from ..images import ImageLoader
from ..jobs import JobRunner
from ..mappings import ActionSpec, CompareSpec
from ..observability import metrics
from ..pixels import comparison_bytes
from ..shadow import answered, compare
from ..shadow.aliyun import AliyunClient, Answer, NoAliyunKey
from ..shadow.records import Record, RecordStore

log = structlog.get_logger("shadow")
TERMINAL = {"PROCESS_SUCCESS", "PROCESS_FAILED", "TIMEOUT_FAILED", "LIMIT_RETRY_FAILED", "JOB_CANCELED"}
POLL_SECONDS = 1.0

AwsAnswer = Callable[[ActionSpec, InboundRequest], Awaitable[Exchange]]
"""The AWS side asked directly (not through the gateway): its answer in JSON, as an Exchange."""


@dataclass(frozen=True)
class Side:
    """One side's final answer (after following an async job) and the result image it points to."""

    answer: Answer
    body: Any
    image: bytes | None = None


@dataclass(frozen=True)
class Noise:
    """The primary asked again: its scores against its first answer, or why that could not be measured.
    A failed re-ask (throttled, refused, timed out) is an error of the measurement, never noise: it
    excuses nothing."""

    scores: compare.Scores | None = None
    error: str | None = None


def answer_of(ex: Exchange) -> Answer:
    return Answer(ex.status, ex.body, ex.content_type, ex.seconds)


class Mirror:
    def __init__(self, settings: Settings, aliyun: AliyunClient, store: RecordStore, images: ImageLoader,
                 jobs: JobRunner, aws_answer: AwsAnswer, embedded: bool = False) -> None:
        self.settings = settings
        self.embedded = embedded  # the AWS side is the embedded backend, not a kit
        self.aliyun_label: str | None = None  # who stands in for Aliyun, when it is not Aliyun (a dry run)
        self.aliyun = aliyun
        self.store = store
        self.images = images
        self.jobs = jobs
        self.aws_answer = aws_answer
        self.queue: asyncio.Queue[Exchange] = asyncio.Queue(settings.shadow_queue_size)
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self.settings.shadow_mode != "aws":
            self._workers = [asyncio.create_task(self._work(), name=f"shadow-{i}")
                             for i in range(self.settings.shadow_concurrency)]

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def observe(self, ex: Exchange) -> None:
        """The observer: enqueue a chosen, answered call, or drop it (counted) when the queue is full."""
        if not (ex.mirror and ex.spec and ex.inbound and ex.code is None):
            return
        try:
            self.queue.put_nowait(ex)
        except asyncio.QueueFull:
            _drop("queue_full")

    async def _work(self) -> None:
        while True:
            ex = await self.queue.get()
            try:
                async with asyncio.timeout(self.settings.shadow_timeout_seconds):
                    await self.run(ex)
            except TimeoutError:
                _drop("timeout")
            except AliyunError as err:  # the decode budget (proxy/pixels.py) refused to score the images
                log.warning("shadow.not_scored", action=ex.spec.action if ex.spec else None, code=err.code,
                            reason=err.message)
                _drop("decode_budget")
            except Exception:
                log.exception("shadow.failed", action=ex.spec.action if ex.spec else None)
                _drop("failed")
            finally:
                self.queue.task_done()

    async def run(self, first: Exchange, mode: str | None = None, label: str | None = None) -> Record:
        """Get the other side, follow async jobs, download results, score, and record."""
        spec, inbound = first.spec, first.inbound
        assert spec is not None and inbound is not None, "only routed calls are mirrored"
        if first.primary == "aliyun":
            aws_ex = await self.aws_answer(spec, replace(inbound, request_id=new_request_id()))
            secondary_answer = answer_of(aws_ex)
        else:
            aws_ex = first
            secondary_answer = await self.aliyun.forward(inbound, spec.product, first.caller)
        metrics.SHADOW_SECONDS.labels(spec.action, "aws" if first.primary == "aliyun" else "aliyun").observe(
            secondary_answer.seconds)
        aliyun_answer = answer_of(first) if first.primary == "aliyun" else secondary_answer
        aws = await self._finish_aws(spec, aws_ex)
        aliyun = await self._finish_aliyun(spec, aliyun_answer, first.caller)
        primary, secondary = (aliyun, aws) if first.primary == "aliyun" else (aws, aliyun)
        noise = await self._noise(first, primary) if self.settings.shadow_noise else None
        thresholds = {**compare.thresholds_for(spec.compare.family if spec.compare else None),
                      **self.settings.shadow_thresholds.get(spec.action, {})}
        family = spec.compare.family if spec.compare else None
        async with self.images.budget.hold(comparison_bytes(family, primary.image, secondary.image)):
            scores, outcome = await workers.cpu(_judge, spec.compare, primary, secondary, thresholds, noise)
        mode = mode or self.settings.shadow_mode
        self._report(first, mode, primary, secondary, scores, outcome, noise)
        images = {"primary": primary.image, "secondary": secondary.image, "input": aws_ex.input_image}
        return await self.store.add_async(Record.build(
            action=spec.action, product=spec.product, mode=mode, outcome=outcome,
            scores=scores, primary=(primary.answer.status, _body(primary)),
            secondary=(secondary.answer.status, _body(secondary)),
            latency_ms=(primary.answer.seconds * 1000, secondary.answer.seconds * 1000),
            noise=noise.scores if noise else None, thresholds=thresholds,
            details={"request_id": inbound.request_id, **self._context(first, mode, label),
                     **({"noise_error": noise.error} if noise and noise.error else {})},
            compare=spec.compare),
            {k: v for k, v in images.items() if v})

    def _context(self, first: Exchange, mode: str, label: str | None) -> dict[str, Any]:
        """What the report names: both sides, the sample rate, and the image (file name or URL)."""
        spec, inbound = first.spec, first.inbound
        assert spec is not None and inbound is not None
        if label is None:
            url = inbound.params.get(spec.image.url_param) if spec.image else None
            label = url or (f"request body, {len(inbound.body)} bytes" if inbound.body else "")
        return {"sides": {"aws": answered.aws_side(self.settings, spec, self.embedded),
                          "aliyun": self.aliyun_label or answered.aliyun_side(spec, self.aliyun.endpoints)},
                "sample_rate": 1.0 if mode == "offline" else self.settings.shadow_sample, "image": label}

    async def _finish_aws(self, spec: ActionSpec, ex: Exchange) -> Side:
        answer = answer_of(ex)
        body = answer.json()
        images = ex.result_images
        if _is_job(spec, answer, body) and ex.inbound is not None:
            job_id = ex.inbound.request_id
            while (data := await self.jobs.result(job_id))["Status"] not in TERMINAL:
                await asyncio.sleep(POLL_SECONDS)
            body = {"RequestId": body.get("RequestId"), "Data": data}
            if ex.job_images is not None and ex.job_images.done():
                images = ex.job_images.result()
        return Side(answer, body, images[-1] if images else None)

    async def _finish_aliyun(self, spec: ActionSpec, answer: Answer, caller: str | None) -> Side:
        body = answer.json()
        if spec.job and _is_job(spec, answer, body):
            if caller is None:
                raise NoAliyunKey("")
            job_id = body["RequestId"]
            while True:
                polled = await self.aliyun.call(spec.product, spec.job.poll, spec.version, {"JobId": job_id}, caller)
                body = polled.json()
                if polled.status != 200 or (body or {}).get("Data", {}).get("Status") in TERMINAL:
                    break
                await asyncio.sleep(POLL_SECONDS)
        url = _result_url(spec, body)
        image = await self.images.download(url, self.settings.shadow_max_image_bytes) if url else None
        return Side(answer, body, image)

    async def _noise(self, first: Exchange, primary: Side) -> Noise | None:
        """The primary asked again: how much it disagrees with itself (Diffy's noise floor). Not for async
        actions: a second AWS job would take a worker and a queue slot from real callers."""
        spec, inbound = first.spec, first.inbound
        assert spec is not None and inbound is not None
        if spec.job is not None:
            return None
        try:
            if first.primary == "aliyun":
                again = await self._finish_aliyun(spec, await self.aliyun.forward(
                    inbound, spec.product, first.caller, fresh=True), first.caller)
            else:
                again = await self._finish_aws(spec, await self.aws_answer(
                    spec, replace(inbound, request_id=new_request_id())))
        except (NoAliyunKey, AliyunError, OSError, aiohttp.ClientError, TimeoutError) as exc:
            return _noise_failed(spec.action, type(exc).__name__)
        code = compare.error_code(again.answer.status, again.body)
        if code is not None:
            return _noise_failed(spec.action, code)
        family = spec.compare.family if spec.compare else None
        async with self.images.budget.hold(comparison_bytes(family, primary.image, again.image)):
            scores = await workers.cpu(_scores, spec.compare, primary, again)
        if scores is None:
            return _noise_failed(spec.action, "no comparable result")
        metrics.SHADOW_NOISE.labels("measured").inc()
        return Noise(scores)

    def _report(self, first: Exchange, mode: str, primary: Side, secondary: Side, scores: compare.Scores | None,
                outcome: compare.Outcome, noise: Noise | None) -> None:
        action = first.spec.action if first.spec else ""
        metrics.SHADOW_COMPARISONS.labels(action, outcome.outcome).inc()
        for name, value in (scores.metrics.items() if scores else ()):
            if value is not None:
                metrics.SHADOW_SCORES.labels(action, name).observe(value)
        log.info("shadow.compared", request_id=first.inbound.request_id if first.inbound else None, action=action,
                 mode=mode, outcome=outcome.outcome, failed=outcome.failed,
                 scores={k: round(v, 4) for k, v in (scores.metrics.items() if scores else ()) if v is not None},
                 noise=bool(noise and noise.scores), noise_error=noise.error if noise else None,
                 primary_ms=round(primary.answer.seconds * 1000, 1),
                 secondary_ms=round(secondary.answer.seconds * 1000, 1))


def _body(side: Side) -> Any:
    """The answer as data; a body that is neither JSON nor XML (a gateway's page, a transport failure's
    text) is kept as its first 500 characters, so the report can say why."""
    if side.body is not None or not side.answer.body:
        return side.body
    return side.answer.body[:500].decode("utf-8", "replace")


def _drop(reason: str) -> None:
    metrics.SHADOW_DROPS.labels(reason).inc()


def _noise_failed(action: str, why: str) -> Noise:
    metrics.SHADOW_NOISE.labels("error").inc()
    log.warning("shadow.noise_failed", action=action, reason=why)
    return Noise(error=f"the noise re-ask failed ({why}): nothing is excused as noise")


def _is_job(spec: ActionSpec, answer: Answer, body: Any) -> bool:
    """The answer accepted a job (the mapping says the action is async, and the call did not fail)."""
    return spec.job is not None and answer.status == 200 and isinstance(body, dict) and "Code" not in body


def _result_url(spec: ActionSpec, body: Any) -> str | None:
    """The result image's URL, under the mapping's result_keys: in Data, or in a job's Result."""
    data = body.get("Data") if isinstance(body, dict) else None
    if isinstance(data, dict) and isinstance(data.get("Result"), str):
        try:
            data = json.loads(data["Result"])
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    return next((data[k] for k in spec.result_keys if isinstance(data.get(k), str)), None)


def _scores(spec: CompareSpec | None, primary: Side, secondary: Side) -> compare.Scores | None:
    family = spec.family if spec else None
    if spec and family == "ocr":
        return compare.compare_ocr(compare.ocr_lines(spec.lines, primary.body),
                                   compare.ocr_lines(spec.lines, secondary.body))
    if primary.image is None or secondary.image is None:
        return None
    if family == "matting":
        return compare.compare_masks(primary.image, secondary.image)
    if family == "super_resolution":
        return compare.compare_images(primary.image, secondary.image)
    return None


def _judge(spec: CompareSpec | None, primary: Side, secondary: Side, thresholds: dict[str, dict[str, float]],
           noise: Noise | None) -> tuple[compare.Scores | None, compare.Outcome]:
    failed = compare.error_outcome(primary.answer.status, primary.body, secondary.answer.status, secondary.body)
    if failed is not None:
        return None, failed
    scores = _scores(spec, primary, secondary)
    if scores is None:
        return None, compare.Outcome("error", ["no_result"], reasons=["a side gave no comparable result"])
    outcome = compare.evaluate(scores, thresholds)
    if noise is not None and noise.scores is not None:
        outcome = compare.apply_noise_floor(outcome, thresholds, noise.scores, scores)
    elif noise is not None and noise.error and outcome.outcome == "mismatched":
        outcome.reasons.append(noise.error)
    return scores, outcome

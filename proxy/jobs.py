"""Aliyun async jobs: submit answers at once (the RequestId is the JobId), a bounded worker pool runs the
work, and GetAsyncJobResult reads the job record from the result store, so any replica can answer.

A record that stays QUEUING or PROCESSING past its deadline (its worker died, or the replica went away)
reads as TIMEOUT_FAILED: never PROCESSING forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from .aliyun.errors import AliyunError, Err
from .observability import metrics
from .results import ResultStore, ResultStoreError, valid_key

log = structlog.get_logger("jobs")

QUEUING, PROCESSING = "QUEUING", "PROCESSING"
SUCCESS, FAILED, TIMEOUT = "PROCESS_SUCCESS", "PROCESS_FAILED", "TIMEOUT_FAILED"
SUBMITTED_MESSAGE = ("该调用为异步调用，任务已提交成功，请以requestId的值作为jobId参数调用同类目下"
                     "GetAsyncJobResult接口查询任务执行状态和结果。")

Work = Callable[[], Awaitable[dict[str, Any]]]


def _key(job_id: str) -> str:
    return f"jobs/{job_id}"


class JobRunner:
    def __init__(self, store: ResultStore, workers: int, queue_size: int, deadline_seconds: float,
                 record_ttl_seconds: float) -> None:
        self.store = store
        self.deadline = deadline_seconds
        self.ttl = record_ttl_seconds
        self.queue: asyncio.Queue[tuple[str, Work]] = asyncio.Queue(queue_size)
        self.workers = workers
        self.running = 0
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker(), name=f"job-worker-{i}") for i in range(self.workers)]

    async def close(self, grace: float = 0.0) -> None:
        """Let queued and running jobs finish within `grace`; whatever is left is recorded as failed,
        so a caller polling another replica learns at once to resubmit."""
        if grace > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.join(), grace)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while not self.queue.empty():
            job_id, _ = self.queue.get_nowait()
            await self._stopped(job_id)

    async def _stopped(self, job_id: str) -> None:
        record = await self.store.get_record(_key(job_id)) or {"JobId": job_id, "Deadline": 0.0}
        await self._save(job_id, {**record, "Status": FAILED, **_failure(Err.JOB_STOPPED())})

    async def submit(self, job_id: str, action: str, work: Work) -> None:
        """Record the job as QUEUING and queue it; a full queue is Throttling, not an unbounded backlog."""
        if self.queue.full():
            raise Err.THROTTLING()
        now = time.time()
        await self._save(job_id, {"JobId": job_id, "Status": QUEUING, "Action": action,
                                  "Created": now, "Deadline": now + self.deadline})
        try:
            self.queue.put_nowait((job_id, work))
        except asyncio.QueueFull:  # another submit took the last slot while the record was being written
            err = Err.THROTTLING()
            await self._save(job_id, {"JobId": job_id, "Status": FAILED, **_failure(err), "Deadline": now})
            raise err from None
        metrics.JOBS_QUEUED.set(self.queue.qsize())

    async def result(self, job_id: str) -> dict[str, Any]:
        """The `Data` of GetAsyncJobResult."""
        if not valid_key(_key(job_id)):
            raise Err.JOB_NOT_FOUND(job_id)
        try:
            record = await self.store.get_record(_key(job_id))
        except ResultStoreError:
            raise Err.SERVICE_UNAVAILABLE() from None
        if record is None:
            raise Err.JOB_NOT_FOUND(job_id)
        status = record["Status"]
        if status in (QUEUING, PROCESSING) and time.time() > record["Deadline"]:
            status = TIMEOUT
            record.update(_failure(Err.JOB_TIMEOUT()))
        data: dict[str, Any] = {"JobId": job_id, "Status": status}
        if status == SUCCESS:
            data["Result"] = record["Result"]
        elif status in (FAILED, TIMEOUT):
            data["ErrorCode"] = record.get("ErrorCode", Err.INTERNAL_ERROR.code)
            data["ErrorMessage"] = record.get("ErrorMessage", "")
        return data

    async def _worker(self) -> None:
        while True:
            job_id, work = await self.queue.get()
            self.running += 1
            metrics.JOBS_QUEUED.set(self.queue.qsize())
            metrics.JOBS_RUNNING.set(self.running)
            try:
                await self._run(job_id, work)
            except Exception:  # the store failed around the work: log it, keep this worker alive
                log.exception("jobs.record_failed", job_id=job_id)
            finally:
                self.running -= 1
                metrics.JOBS_RUNNING.set(self.running)
                self.queue.task_done()

    async def _run(self, job_id: str, work: Work) -> None:
        record = await self.store.get_record(_key(job_id)) or {"JobId": job_id, "Deadline": 0.0}
        remaining = record["Deadline"] - time.time()
        if remaining <= 0:
            await self._save(job_id, {**record, "Status": TIMEOUT, **_failure(Err.JOB_QUEUE_TIMEOUT())})
            return
        await self._save(job_id, {**record, "Status": PROCESSING, "Started": time.time()})
        try:
            result = await asyncio.wait_for(work(), remaining)
        except asyncio.CancelledError:
            await self._stopped(job_id)
            raise
        except TimeoutError:
            outcome = {"Status": TIMEOUT, **_failure(Err.JOB_TIMEOUT())}
        except AliyunError as err:
            outcome = {"Status": FAILED, **_failure(err)}
        except Exception:
            log.exception("jobs.failed", job_id=job_id)
            outcome = {"Status": FAILED, **_failure(Err.INTERNAL_ERROR())}
        else:
            outcome = {"Status": SUCCESS, "Result": json.dumps(result, ensure_ascii=False, separators=(",", ":"))}
        await self._save(job_id, {**record, **outcome, "Finished": time.time()})
        metrics.JOBS_FINISHED.labels(record.get("Action", "unknown"), outcome["Status"]).inc()
        log.info("jobs.finished", job_id=job_id, status=outcome["Status"], code=outcome.get("ErrorCode"))

    async def _save(self, job_id: str, record: dict[str, Any]) -> None:
        try:
            await self.store.put_record(_key(job_id), record, self.ttl)
        except ResultStoreError:
            raise Err.SERVICE_UNAVAILABLE() from None


def _failure(err: AliyunError) -> dict[str, str]:
    """A failed job's record fields: the code and message the error table gives."""
    return {"ErrorCode": err.code, "ErrorMessage": err.message}

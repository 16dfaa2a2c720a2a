"""GetAsyncJobResult, the same for every product: the job record's status and, on success, its Result."""

from __future__ import annotations

from typing import Any

from .call import Call


async def get_async_job_result(call: Call) -> dict[str, Any]:
    return {"Data": await call.backends.jobs.result(call.params["JobId"])}

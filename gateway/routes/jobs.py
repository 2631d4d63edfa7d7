"""`GET /v1/jobs/{id}`: a job's status and, once done, the body a synchronous call would have got.

`?wait=N` long-polls up to N seconds (at most `max_job_wait_s`) for an unfinished job: the
gateway listens for the worker's completion notice (no polling), and re-checks Postgres when
the notice channel reconnected or the wait ends.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from starlette.requests import Request

from gateway.auth import authenticate
from gateway.deps import gateway_state
from gateway.responses import JSONResponse
from shared.db.jobs import JobRow, job_outcome
from shared.errors import NotFound

router = APIRouter()

FINISHED = frozenset({"succeeded", "failed", "cancelled", "expired"})


def job_object(job: JobRow) -> dict[str, Any]:
    return {
        "id": job.id,
        "object": "job",
        "kind": job.kind,
        "status": job.status,
        "model": job.requested_model,
        "created_at": int(job.created_at.timestamp()),
        "finished_at": int(job.finished_at.timestamp()) if job.finished_at else None,
        "receipt_id": job.receipt_id,
        "http_status": job.http_status,
        "response": job.response,
    }


@router.get("/v1/jobs/{job_id}")
async def retrieve_job(
    request: Request,
    job_id: str,
    wait: float = Query(default=0, ge=0, description="seconds to wait for the job to finish"),
) -> JSONResponse:
    owner = await authenticate(request)
    st = gateway_state(request)
    future = st.async_waiters.register(job_id) if wait > 0 else None
    try:
        async with st.res.db.acquire() as conn:
            job = await job_outcome(conn, job_id)
        if job is None or job.tenant_id != owner.tenant.id:
            raise NotFound(f"No job '{job_id}'.", param="job_id")
        if future is not None and job.status not in FINISHED:
            loop_deadline = min(wait, st.res.settings.max_job_wait_s)
            await st.async_waiters.wait(future, max_wait_s=loop_deadline)
            async with st.res.db.acquire() as conn:
                job = await job_outcome(conn, job_id) or job
        return JSONResponse(job_object(job))
    finally:
        if future is not None:
            st.async_waiters.discard(job_id, future)

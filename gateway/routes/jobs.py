"""`GET /v1/jobs/{id}`: a job's status and, once done, the body a synchronous call would have got.

`?wait=N` long-polls up to N seconds (at most `max_job_wait_s`) for an unfinished job, as the
synchronous path waits (`gateway.waiting`): the worker's completion notice, with Postgres
re-checked every `waiter_recheck_s` and when the notice channel reconnected.
"""

from __future__ import annotations

from fastapi import APIRouter, Query
from starlette.requests import Request

from gateway.auth import Owner
from gateway.deps import gateway_state
from gateway.objects.jobs import job_object
from gateway.responses import JSONResponse
from gateway.waiting import wait_for_outcome
from shared.db.jobs import job_outcome
from shared.errors import NotFound

router = APIRouter()


@router.get("/v1/jobs/{job_id}")
async def retrieve_job(
    request: Request,
    owner: Owner,
    job_id: str,
    wait: float = Query(default=0, ge=0, description="seconds to wait for the job to finish"),
) -> JSONResponse:
    st = gateway_state(request)
    future = st.async_waiters.register(job_id) if wait > 0 else None
    try:
        async with st.res.db.acquire() as conn:
            job = await job_outcome(conn, job_id)
        if job is None or job.tenant_id != owner.tenant.id:
            raise NotFound(f"No job '{job_id}'.", param="job_id")
        if future is not None and not job.status.finished:
            await wait_for_outcome(st.res.db, st.async_waiters, job_id, future,
                                   timeout_s=min(wait, st.res.settings.max_job_wait_s),
                                   recheck_s=st.res.settings.waiter_recheck_s)
            async with st.res.db.acquire() as conn:
                job = await job_outcome(conn, job_id) or job
        return JSONResponse(job_object(job))
    finally:
        if future is not None:
            st.async_waiters.discard(job_id, future)

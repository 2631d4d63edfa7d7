"""Submitting a synchronous call and waiting for its outcome, with no polling delay.

The waiter is registered before the job is enqueued, so the worker's completion notice
cannot be missed; `gateway.waiting` keeps Postgres as the safety net. A sync call is not
"accepted work": if it cannot be enqueued the caller gets a 503 and nothing was charged.
"""

from __future__ import annotations

import dataclasses
import time

from redis.exceptions import RedisError

from gateway.deps import GatewayState
from gateway.idempotency import NO_KEY, Binder
from gateway.waiting import wait_for_outcome
from shared.errors import GatewayTimeout, ServiceUnavailable
from shared.job_queue import enqueue_sync
from shared.jobs import DispatchJob, Outcome


async def enqueue_waited(st: GatewayState, job: DispatchJob, binder: Binder) -> None:
    """Bind the Idempotency-Key (if any) to the job and queue it with this gateway as `reply_to`;
    the caller registered its waiter first. 503 (and the key unbound) when the queue is down."""
    await binder.bind(job.job_id)
    try:
        await enqueue_sync(st.res.redis, dataclasses.replace(job, reply_to=st.waiters.channel), st.res.tracing)
    except (RedisError, OSError) as e:
        await binder.unbind(job.job_id)
        raise ServiceUnavailable("The dispatch queue is unavailable; retry shortly.") from e


async def submit_and_wait(st: GatewayState, job: DispatchJob, *, binder: Binder = NO_KEY) -> Outcome:
    """Queue `job` (its `reply_to` is set to this gateway's channel here) and wait for its outcome.
    The request's Idempotency-Key (if any) is bound to the job before it can start, and unbound
    again only if the job never reached the queue."""
    settings = st.res.settings
    job_id = job.job_id
    future = st.waiters.register(job_id)
    try:
        started = time.perf_counter()
        await enqueue_waited(st, job, binder)
        outcome = await wait_for_outcome(st.res.db, st.waiters, job_id, future,
                                         timeout_s=settings.sync_wait_timeout_s, recheck_s=settings.waiter_recheck_s)
        if outcome is not None:
            st.res.metrics.sync_end_to_end.observe(time.perf_counter() - started)
    finally:
        st.waiters.discard(job_id)
    if outcome is None:
        raise GatewayTimeout(
            f"The request did not finish within {settings.sync_wait_timeout_s:g} s. It may still complete; "
            f"GET /v1/jobs/{job_id} shows its outcome."
        )
    return outcome


"""Submitting a synchronous call and waiting for its outcome, with no polling delay.

The waiter is registered before the job is enqueued, so the worker's completion
notice cannot be missed. A notice can still be lost (Redis restarted between), so
the wait re-checks Postgres every `waiter_recheck_s`; that is a safety net, not the
normal path. A sync call is not "accepted work": if it cannot be enqueued the caller
gets a 503 and nothing was charged.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from uuid import UUID

from redis.exceptions import RedisError

from gateway.deps import GatewayState
from gateway.idempotency import NO_KEY, Binder
from shared.db.jobs import job_outcome
from shared.dispatch import Outcome
from shared.errors import GatewayTimeout, ServiceUnavailable
from shared.queue.enqueue import enqueue
from shared.queue.names import QueueName

DISPATCH_FUNCTION = "dispatch"


async def submit_and_wait(
    st: GatewayState, *, tenant_id: UUID, job_id: str, request: dict[str, Any], submitted_at: datetime,
    binder: Binder = NO_KEY,
) -> Outcome:
    """Queue the job and wait for its outcome. The request's Idempotency-Key (if any) is bound to
    the job before it can start, and unbound again only if the job never reached the queue."""
    settings = st.res.settings
    future = st.waiters.register(job_id)
    try:
        await binder.bind(job_id)
        try:
            await enqueue(
                st.res.redis,
                QueueName.INTERACTIVE,
                DISPATCH_FUNCTION,
                job_id=job_id,
                kwargs={
                    "job_id": job_id,
                    "tenant_id": str(tenant_id),
                    "kind": "sync",
                    "request": request,
                    "submitted_at": submitted_at.isoformat(),
                    "reply_to": st.waiters.channel,
                },
            )
        except (RedisError, OSError) as e:
            await binder.unbind(job_id)
            raise ServiceUnavailable("The dispatch queue is unavailable; retry shortly.") from e
        return await _wait(st, job_id, future, settings.sync_wait_timeout_s, settings.waiter_recheck_s)
    finally:
        st.waiters.discard(job_id)


async def _wait(
    st: GatewayState, job_id: str, future: asyncio.Future[bytes], timeout_s: float, recheck_s: float
) -> Outcome:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise GatewayTimeout(
                f"The request did not finish within {timeout_s:g} s. It may still complete; "
                f"GET /v1/jobs/{job_id} shows its outcome."
            )
        raw = await st.waiters.wait(future, max_wait_s=min(recheck_s, remaining))
        if raw is not None:
            return Outcome.from_message(raw)
        # No notice yet, or our subscription reconnected (a notice may be lost): ask Postgres.
        async with st.res.db.acquire() as conn:
            done = await job_outcome(conn, job_id)
        if done is not None and done.response is not None:
            return Outcome(http_status=done.http_status or 200, body=done.response, replayed=True)

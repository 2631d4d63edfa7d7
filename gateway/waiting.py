"""Waiting for a job's outcome with no polling delay: the worker's completion notice first,
Postgres as the safety net.

A notice can be lost (Redis restarted between, the subscription reconnected), so the wait
looks in Postgres every `recheck_s` and at the end; that is a safety net, not the normal path.
The synchronous path and `GET /v1/jobs/{id}?wait=` both wait through here.
"""

from __future__ import annotations

import asyncio

from shared.db.jobs import job_outcome
from shared.db.types import Pool
from shared.jobs import Outcome
from shared.queue.notify import CompletionWaiters


async def wait_for_outcome(db: Pool, waiters: CompletionWaiters, job_id: str, future: asyncio.Future[bytes], *,
                           timeout_s: float, recheck_s: float) -> Outcome | None:
    """The job's outcome once it is known, or None when `timeout_s` passed first. `future` is the
    waiter registered (before the job could finish) for `job_id` on `waiters`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        remaining = deadline - loop.time()
        raw = await waiters.wait(future, max_wait_s=max(0.0, min(recheck_s, remaining)))
        if raw is not None:
            return Outcome.from_message(raw)
        async with db.acquire() as conn:
            row = await job_outcome(conn, job_id)
        found = Outcome.from_row(row) if row is not None else None
        if found is not None:
            return found
        if loop.time() >= deadline:
            return None

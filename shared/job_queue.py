"""Putting jobs on their queues: stored jobs after their row is written, synchronous jobs with
their request in the queue entry, and a nudge for the batch supervisor.

A stored job's queue entry carries only its id (and an async call's trace context, when tracing
is on); the worker claims the stored row, so a lost entry (Redis flushed or restarted) costs
nothing but a re-enqueue, which the supervisor's reconciler does. Stored jobs run on the bulk
queue, never ahead of synchronous callers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any
from uuid import UUID

from opentelemetry.trace import Span, SpanKind
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.chat.request import ChatCompletionRequest
from shared.db.jobs import create_stored_job
from shared.db.types import Pool
from shared.jobs import DISPATCH, DISPATCH_STORED, SUPERVISE_BATCHES, DispatchJob, JobKind
from shared.logging import get_logger
from shared.queue.enqueue import enqueue, enqueue_many
from shared.queue.names import QueueName
from shared.tracing import TRACEPARENT, TRACING_OFF, Tracing

log = get_logger(__name__)


def _send_span(tracing: Tracing, queue: QueueName, job_id: str) -> AbstractContextManager[Span]:
    """The producer span of one enqueue (messaging semantic conventions: `send <queue>`); the job's
    worker span is its child."""
    if not tracing.on:
        return tracing.span("")
    return tracing.span(f"send {queue.name.lower()}", kind=SpanKind.PRODUCER, attributes={
        "messaging.system": "arq", "messaging.operation.type": "send", "messaging.destination.name": str(queue),
        "messaging.message.id": job_id})


async def enqueue_sync(redis: Redis, job: DispatchJob, tracing: Tracing = TRACING_OFF) -> None:
    """Queue a synchronous job; its request travels in the entry (it has no row yet), and so does the
    trace context of its enqueue span when tracing is on."""
    with _send_span(tracing, DISPATCH.queue, job.job_id):
        traceparent = tracing.traceparent()
        if traceparent:
            job = dataclasses.replace(job, traceparent=traceparent)
        await enqueue(redis, DISPATCH.queue, DISPATCH.name, job_id=job.job_id, kwargs=job.to_kwargs())


async def enqueue_stored(redis: Redis, job_ids: Sequence[str], *, traceparent: str | None = None) -> int:
    """Queue stored jobs by id; ids already queued are skipped. Returns how many were new.
    `traceparent`: the trace the jobs' worker spans join (an async call's)."""
    if not job_ids:
        return 0
    extra = {TRACEPARENT: traceparent} if traceparent else {}
    return await enqueue_many(redis, DISPATCH_STORED.queue, DISPATCH_STORED.name,
                              [(jid, {"job_id": jid, **extra}) for jid in job_ids])


async def submit_async(db: Pool, redis: Redis, *, job_id: str, tenant_id: UUID, request: ChatCompletionRequest,
                       now: datetime, on_created: Callable[[Any], Awaitable[None]] | None = None,
                       key_id: UUID | None = None, tracing: Tracing = TRACING_OFF) -> None:
    """Store an async call (the caller is then told it was accepted), then queue it.

    `on_created(conn)` runs in the transaction that stores the job (the gateway binds the
    request's Idempotency-Key there). Once stored, the job is accepted: an enqueue that fails
    is not the caller's problem, because the supervisor's reconciler queues stored jobs that
    lost (or never got) their queue entry within seconds.
    """
    async with db.acquire() as conn, conn.transaction():
        await create_stored_job(conn, job_id=job_id, tenant_id=tenant_id, kind=JobKind.ASYNC,
                                requested_model=request.model,
                                request=request.model_dump(exclude_unset=True, mode="json"), created_at=now,
                                key_id=key_id)
        if on_created is not None:
            await on_created(conn)
    with _send_span(tracing, DISPATCH_STORED.queue, job_id):
        try:
            await enqueue_stored(redis, [job_id], traceparent=tracing.traceparent())
        except (RedisError, OSError) as e:
            log.warning("stored_job_enqueue_deferred", job_id=job_id, error=type(e).__name__)


async def nudge_supervisor(redis: Redis, reason: str) -> None:
    """Run a batch supervisor tick now rather than at the next second (a batch was created or cancelled).

    Best effort: the tick runs every second anyway, so a nudge that cannot be sent only costs
    that second, and never turns work already committed into an error for the caller.
    """
    try:
        await enqueue(redis, SUPERVISE_BATCHES.queue, SUPERVISE_BATCHES.name, job_id=f"supervise:{reason}",
                      kwargs={})
    except (RedisError, OSError) as e:
        log.warning("supervisor_nudge_failed", reason=reason, error=type(e).__name__)

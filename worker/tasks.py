"""arq task functions: thin wrappers that call the shared use-cases and report the outcome.

This is the worker's process boundary for jobs: connection failures of Postgres or
Redis become arq retries (the job runs again later and the use-cases are idempotent);
anything unanticipated is logged, and a waiting caller is answered with a generic 500
rather than left to time out. With tracing on, a dispatch job runs under its span, a child
of the enqueue that carried its trace context (a batch line, fed from Postgres, starts a trace).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from arq import Retry
from opentelemetry.trace import Span, SpanKind
from redis.exceptions import RedisError

from shared.auth.key_access import stored_work_refusal
from shared.auth.key_settings import KeySettings
from shared.batches.finalize import finalize_batch
from shared.batches.supervisor import SupervisorConfig, supervise
from shared.db import TRANSIENT_DB_ERRORS
from shared.db.fanout import record_probe, stalled_runs
from shared.db.jobs import claim_stored_job
from shared.dispatch import run_dispatch
from shared.errors import InternalError
from shared.fanout.decide import DecisionRules, decide_run
from shared.fanout.probe import ProbeOutcome, run_probe
from shared.fanout.runs import continue_run, plan_queued_run, queue_planning, start_run
from shared.jobs import (
    DECIDE_FANOUT,
    DISPATCH,
    DISPATCH_STORED,
    FANOUT_TICK,
    FINALIZE_BATCH,
    PLAN_FANOUT,
    PROBE_MODEL,
    SUPERVISE_BATCHES,
    DispatchJob,
    JobKind,
    Outcome,
    read_request,
)
from shared.logging import get_logger
from shared.queue.names import ASYNC_CHANNEL, QueueName
from shared.queue.notify import notify_done
from shared.queue.stream_relay import StreamRelay
from shared.receipts.response import request_reported_params
from shared.resources import Resources
from shared.settings import Settings
from shared.tracing import failed, parent_of
from worker.context import resources

log = get_logger(__name__)

RETRYABLE_INFRA_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_DB_ERRORS, RedisError)
RETRY_BACKOFF_S = (0.5, 1, 2, 4, 8, 15, 30)  # then 30 s between tries

T = TypeVar("T")


async def _retrying(ctx: dict[str, Any], work: Awaitable[T], what: str) -> T:
    """Run `work`; a lost database or Redis connection becomes an arq retry with backoff."""
    job_try: int = ctx.get("job_try", 1)
    try:
        return await work
    except RETRYABLE_INFRA_ERRORS as e:
        delay = RETRY_BACKOFF_S[min(job_try - 1, len(RETRY_BACKOFF_S) - 1)]
        log.warning("job_retry_scheduled", job_id=ctx.get("job_id"), what=what, job_try=job_try, delay_s=delay,
                    error=type(e).__name__)
        raise Retry(defer=delay) from e


def _job_span(res: Resources, ctx: dict[str, Any], queue: QueueName, job_id: str,
              traceparent: str | None) -> AbstractContextManager[Span]:
    """The span of one dispatch job (messaging semantic conventions: `process <queue>`), a child of
    the enqueue's span when the job carries its trace context."""
    if not res.tracing.on:
        return res.tracing.span("")
    return res.tracing.span(f"process {queue.name.lower()}", kind=SpanKind.CONSUMER, parent=parent_of(traceparent),
                            attributes={"messaging.system": "arq", "messaging.operation.type": "process",
                                        "messaging.destination.name": str(queue), "messaging.message.id": job_id,
                                        "ainfera.job.delivery": int(ctx.get("job_try", 1))})


def _outcome_on(span: Span, outcome: Outcome | None) -> None:
    if outcome is None or not span.is_recording():
        return
    span.set_attribute("ainfera.job.http_status", outcome.http_status)
    if outcome.http_status >= 400:
        error = outcome.body.get("error")
        failed(span, str(error.get("code")) if isinstance(error, dict) else str(outcome.http_status))


def _waited(res: Resources, ctx: dict[str, Any], queue: str, kind: str) -> None:
    """Queue wait, from when the job was due (arq's score: its enqueue time unless deferred) to now,
    for first attempts (a retry's wait includes its backoff)."""
    if ctx.get("job_try", 1) == 1 and "score" in ctx:
        res.metrics.waited(queue, kind, time.time() - ctx["score"] / 1000)


async def dispatch(ctx: dict[str, Any], **kwargs: Any) -> None:
    """A synchronous call: the request travels in the job (`DispatchJob.to_kwargs`); the waiting
    gateway gets a notice."""
    res = resources(ctx)
    job = DispatchJob.from_kwargs(kwargs)
    job_id = job.job_id
    _waited(res, ctx, "interactive", "stream" if job.request is not None and job.request.stream else "sync")
    relay = stream_relay(res, job)

    async def reply(outcome: Outcome) -> None:
        if relay is not None:
            await relay.finish(outcome)
        elif job.reply_to:
            await notify_done(res.redis, job.reply_to, job_id, outcome.to_message())

    with _job_span(res, ctx, DISPATCH.queue, job_id, job.traceparent) as span:
        if span.is_recording():
            span.set_attributes({"ainfera.job.kind": job.kind.value, "ainfera.tenant_id": str(job.tenant_id)})
        try:
            outcome = await _retrying(ctx, run_dispatch(res, job, attempt=ctx.get("job_try", 1), on_committed=reply,
                                                        stream=relay), DISPATCH.name)
        except Retry:
            raise
        except Exception:
            # Process boundary: a bug must not leave a caller waiting for its timeout.
            log.exception("job_crashed", job_id=job_id)
            err = InternalError("The server had an error while processing your request.")
            await reply(Outcome(http_status=err.status, body={**err.envelope(), "ainfera": {"job_id": job_id}}))
            raise
        _outcome_on(span, outcome)


def stream_relay(res: Resources, job: DispatchJob) -> StreamRelay | None:
    """The relay of a streamed synchronous job to its waiting gateway; None for any other job."""
    if job.request is None or not job.request.stream or not job.reply_to:
        return None
    options = job.request.stream_options
    return StreamRelay(res.redis, job.reply_to, job.job_id, created=int(job.submitted_at.timestamp()),
                       include_usage=bool(options and options.include_usage),
                       legacy_functions=bool(job.request.functions),
                       reported=tuple(request_reported_params(job.request)))


async def dispatch_stored(ctx: dict[str, Any], *, job_id: str, traceparent: str | None = None) -> None:
    """A stored job (async call or batch line): claim its row, run it, tell async waiters.
    `traceparent`: an async call's trace (a batch line, or an entry the reconciler re-queued, has none)."""
    res = resources(ctx)

    async def run(span: Span) -> Outcome | None:
        async with res.db.acquire() as conn:
            claimed = await claim_stored_job(conn, job_id)
        if claimed is None:
            return None  # finished, cancelled or expired meanwhile
        _waited(res, ctx, "batch", claimed.kind)
        if span.is_recording():
            span.set_attributes({"ainfera.job.kind": claimed.kind.value, "ainfera.tenant_id": str(claimed.tenant_id),
                                 "ainfera.job.attempt": claimed.attempt})
            if claimed.batch_id:
                span.set_attribute("ainfera.batch_id", claimed.batch_id)
        key = KeySettings.from_json(claimed.key_settings) if claimed.key_id else None
        job = DispatchJob(job_id=job_id, tenant_id=claimed.tenant_id, kind=claimed.kind,
                          request=read_request(claimed.request), submitted_at=claimed.created_at,
                          key_id=claimed.key_id, key_limits=key.limits if key else None)
        refusal = stored_work_refusal(key_revoked=claimed.key_revoked, settings=key,
                                      model=job.request.model if job.request else None) if key else None

        async def announce(outcome: Outcome) -> None:
            if claimed.kind == JobKind.ASYNC:
                await notify_done(res.redis, ASYNC_CHANNEL, job_id, outcome.to_message())

        # The claim's attempt count is the lease: it grows with every worker that takes the job,
        # however the job came back (arq retry, a reconciler re-enqueue after a crash).
        return await run_dispatch(res, job, attempt=claimed.attempt, on_committed=announce, refusal=refusal)

    with _job_span(res, ctx, DISPATCH_STORED.queue, job_id, traceparent) as span:
        _outcome_on(span, await _retrying(ctx, run(span), DISPATCH_STORED.name))


async def supervise_batches(ctx: dict[str, Any], **_: Any) -> None:
    """The batch supervisor's tick (cron, and nudged when a batch is created)."""
    res = resources(ctx)
    config: SupervisorConfig = ctx["supervisor_config"]
    await _retrying(ctx, supervise(res, config), SUPERVISE_BATCHES.name)


async def finalize(ctx: dict[str, Any], *, batch_id: str) -> None:
    await _retrying(ctx, finalize_batch(resources(ctx), batch_id), FINALIZE_BATCH.name)


def decision_rules(settings: Settings) -> DecisionRules:
    return DecisionRules(deactivate_after=settings.fanout_deactivate_after,
                         reactivate_after=settings.fanout_reactivate_after,
                         pass_rate_floor=settings.fanout_pass_rate_floor)


async def probe_model(ctx: dict[str, Any], *, run_id: str, slug: str) -> None:
    """One fanout probe; the probe that completes its run applies the run's decisions."""
    res = resources(ctx)

    async def run() -> None:
        catalog = res.catalog.current
        if slug not in catalog.models:
            result = None
        else:
            result = await run_probe(res.http, res.settings, catalog, slug)
        async with res.db.acquire() as conn:
            row = result.row(run_id) if result else {
                "run_id": run_id, "model_slug": slug, "provider": "", "outcome": ProbeOutcome.SKIPPED,
                "reason": "not_in_catalog", "upstream_model": "", "upstream_url": ""}
            last = await record_probe(conn, row)
        if last:
            await decide_run(res, run_id, decision_rules(res.settings))

    await _retrying(ctx, run(), PROBE_MODEL.name)


async def plan_fanout(ctx: dict[str, Any], *, run_id: str) -> None:
    """Plan a requested fanout run here, where the probes are made (keys, simulator), and queue them."""
    res = resources(ctx)
    await _retrying(ctx, plan_queued_run(res, run_id), PLAN_FANOUT.name)


async def decide_fanout(ctx: dict[str, Any], *, run_id: str) -> None:
    res = resources(ctx)
    await _retrying(ctx, decide_run(res, run_id, decision_rules(res.settings)), DECIDE_FANOUT.name)


async def fanout_tick(ctx: dict[str, Any], **_: Any) -> None:
    """Every minute: ask for the scheduled run when one is due; re-queue planning and probe jobs
    lost with Redis."""
    res = resources(ctx)

    async def run() -> None:
        interval = res.settings.fanout_interval_s
        if interval > 0:
            slot = int(res.clock().timestamp() // interval)
            await start_run(res.db, res.redis, trigger="schedule", run_id=f"fanout_sched_{slot}")
        async with res.db.acquire() as conn:
            stalled = await stalled_runs(conn, older_than_s=max(60.0, res.settings.fanout_probe_timeout_s * 3))
        for run_id, status in stalled:
            if status == "planning":
                await queue_planning(res.redis, run_id)
            else:
                await continue_run(res, run_id)

    await _retrying(ctx, run(), FANOUT_TICK.name)

"""The dispatch use-case: one job from its request to its receipt and audit event.

`run_dispatch(res, job)` plans the call (a pinned slug, or `ainfera-auto`'s ranked
candidates), calls the provider through its wire-format adapter, falls back to the
next candidate when an `ainfera-auto` provider fails, and writes the job outcome, the
receipt and the audit event in one round trip. It is idempotent on the job id: a job
that runs twice (arq delivers at least once) leaves one receipt, one event and one
charge. It knows nothing of arq or HTTP frameworks, so tests call it directly.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from shared.audit.writer import event_payload_parts
from shared.db.jobs import JobRow, job_outcome
from shared.errors import AinferaError, UpstreamError, UpstreamRejected, UpstreamTimeout
from shared.ids import receipt_id as new_receipt_id
from shared.logging import get_logger
from shared.providers.call import call_model
from shared.receipts.build import CallRecord, finish
from shared.resources import Resources
from shared.routing.candidates import Candidate
from shared.routing.learned import record_sample
from shared.routing.plan import plan_request
from shared.routing.policy import TenantPolicy

log = get_logger(__name__)

# Kinds of job whose calls teach the router nothing about real traffic.
UNLEARNED_KINDS = frozenset({"probe"})


@dataclass(frozen=True, slots=True)
class DispatchJob:
    job_id: str
    tenant_id: UUID
    kind: str  # sync | async | batch | probe
    request: dict[str, Any]  # a validated chat-completions body
    submitted_at: datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the caller gets: an HTTP status and the JSON body (completion or error envelope)."""

    http_status: int
    body: dict[str, Any]
    replayed: bool = False  # True when the job had already finished (a second delivery)

    @property
    def meta(self) -> dict[str, Any]:
        block: dict[str, Any] = self.body.get("ainfera") or {}
        return block

    def to_message(self) -> bytes:
        """The completion notice a worker publishes to the waiting gateway."""
        return orjson.dumps({"status": self.http_status, "body": self.body})

    @staticmethod
    def from_message(raw: bytes) -> Outcome:
        message = orjson.loads(raw)
        return Outcome(http_status=int(message["status"]), body=message["body"])


OnCommitted = Callable[["Outcome"], Awaitable[None]]


async def _no_one_waits(_: Outcome) -> None:
    return None


async def run_dispatch(res: Resources, job: DispatchJob, *, job_try: int = 1,
                       on_committed: OnCommitted = _no_one_waits) -> Outcome:
    """Run `job` once; `on_committed` hears the outcome as soon as it is durable (before the
    work a waiting caller need not wait for: learned statistics, the summary log line)."""
    if job_try > 1:
        async with res.db.acquire() as conn:
            done = await job_outcome(conn, job.job_id)
        if done is not None and done.response is not None:
            outcome = _replay(done)
            await on_committed(outcome)
            return outcome

    started = time.monotonic()
    call = CallRecord()
    try:
        tenant = await res.tenants.tenant(job.tenant_id)
        call.plan = plan_request(
            job.request,
            res.catalog.current,
            policy=TenantPolicy.from_json(tenant.spend_policy if tenant else None),
            stats=res.stats.current,
            settings=res.settings,
        )
        await _call_in_order(res, job, call, deadline=started + res.settings.upstream_deadline_s)
    except AinferaError as e:
        call.error = e
    latency_ms = int((time.monotonic() - started) * 1000)
    return await _finish(res, job, call, latency_ms, on_committed)


def _may_fall_back(error: UpstreamError) -> bool:
    """Another provider may succeed where this one failed; not when the request itself was refused."""
    return not isinstance(error, UpstreamRejected)


async def _call_in_order(res: Resources, job: DispatchJob, call: CallRecord, *, deadline: float) -> None:
    """Try the plan's candidates in order until one answers; record each failure openly."""
    assert call.plan is not None
    candidates = call.plan.candidates
    body = {k: v for k, v in job.request.items() if k != "routing_hint"}
    for i, cand in enumerate(candidates):
        call.served = cand
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise UpstreamTimeout("no time left in the overall deadline for another provider")
        try:
            await _call_one(res, cand, body, call, remaining)
            return
        except UpstreamError as e:
            call.attempts += e.attempts
            last = i == len(candidates) - 1
            if last or not call.plan.auto or not _may_fall_back(e):
                raise
            call.fallbacks.append(
                {"slug": cand.model.slug, "provider": cand.provider.name,
                 "error": {"code": e.code, "message": e.message}}
            )
            log.warning("upstream_fallback", job_id=job.job_id, failed=cand.model.slug, code=e.code,
                        next=candidates[i + 1].model.slug)


async def _call_one(res: Resources, cand: Candidate, body: dict[str, Any], call: CallRecord,
                    remaining_s: float) -> None:
    if cand.reasoning_effort is not None:  # ainfera-auto chose the effort (only when the caller set none)
        body = {**body, "reasoning_effort": cand.reasoning_effort}
    result = await call_model(res.http, res.settings, cand.model, cand.provider, body, deadline_s=remaining_s)
    call.completion = result.completion
    call.attempts += result.attempts
    call.upstream_latency_ms = round(result.latency_ms)


async def _finish(res: Resources, job: DispatchJob, call: CallRecord, latency_ms: int,
                  on_committed: OnCommitted) -> Outcome:
    now = res.clock()
    done = finish(call, job_id=job.job_id, tenant_id=job.tenant_id, request=job.request,
                  receipt_id=new_receipt_id(), latency_ms=latency_ms, now=now)
    sig = res.signer.signature_of(done.receipt.public())
    receipt = dataclasses.replace(done.receipt, signature=sig["value"], signing_kid=sig["kid"])
    prefix, suffix = event_payload_parts(
        tenant_id=job.tenant_id, event_type=done.event_type, fields=done.event_fields, now=now, job_id=job.job_id
    )
    job_row = {
        "id": job.job_id,
        "tenant_id": str(job.tenant_id),
        "kind": job.kind,
        "status": done.receipt.status.value,
        "requested_model": done.receipt.requested_model,
        "response": done.body,
        "http_status": done.http_status,
        "receipt_id": done.receipt.id,
        "created_at": job.submitted_at.isoformat(),
        "finished_at": now.isoformat(),
    }
    first = await res.finisher.finish(job=job_row, receipt=receipt.row(), event_type=done.event_type,
                                      prefix=prefix, suffix=suffix)
    if not first:
        async with res.db.acquire() as conn:
            stored = await job_outcome(conn, job.job_id)
        assert stored is not None
        replayed = _replay(stored)
        await on_committed(replayed)
        return replayed
    outcome = Outcome(http_status=done.http_status, body=done.body)
    await on_committed(outcome)
    r = done.receipt
    if call.succeeded and job.kind not in UNLEARNED_KINDS and r.model_slug:
        await record_sample(res.redis, res.stats.window, r.model_slug, r.input_tokens, r.output_tokens,
                            r.upstream_latency_ms, reasoning_effort=r.reasoning_effort)
    log.info("job_finished", job_id=job.job_id, status=r.status.value, model=r.model_slug, provider=r.provider,
             error_code=r.error_code, latency_ms=latency_ms, attempts=r.attempts, fallbacks=len(call.fallbacks))
    return outcome


def _replay(done: JobRow) -> Outcome:
    assert done.response is not None
    return Outcome(http_status=done.http_status or 200, body=done.response, replayed=True)

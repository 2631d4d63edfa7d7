"""The dispatch use-case: one job from its request to its receipt and audit event.

`run_dispatch(res, job, attempt=n)` plans the call (a pinned slug, or `ainfera-auto`'s
ranked candidates), calls the provider through its wire-format adapter, falls back to the
next candidate when an `ainfera-auto` provider fails, and writes the job outcome, the
receipt and the audit event in one round trip (`shared/commit.py`). It knows nothing of
arq or HTTP frameworks, so tests call it directly.

Exactly once, whatever happens:
- a job that runs twice (arq delivers at least once) leaves one receipt, one event and one
  charge; a later attempt looks for a finished job, then for a commit an earlier attempt
  held, before it calls anyone;
- every attempt runs under a lease (`attempt`): a worker that stalled past its lease may
  still deliver a success to an unfinished job, never a failure over someone else's work;
- any exception in our own code ends the job as failed (`internal_error`) with a receipt,
  and a job past `job_max_attempts` fails for good without calling the provider;
- a commit that fails is retried with the answer in hand, never by calling the provider again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from opentelemetry.trace import Span, SpanKind
from redis.exceptions import RedisError

from shared.chat.request import upstream_body
from shared.commit import Commit, build_commit, drop_held, take_held, write_commit
from shared.db import TRANSIENT_DB_ERRORS
from shared.db.jobs import job_outcome, register_attempt
from shared.errors import (
    AinferaError,
    BudgetExceeded,
    ClientDisconnected,
    InternalError,
    InvalidRequest,
    UnsupportedByModel,
    UpstreamError,
    UpstreamRejected,
    UpstreamStreamBroken,
    UpstreamTimeout,
)
from shared.jobs import DispatchJob, JobKind, Outcome
from shared.logging import get_logger
from shared.providers.call import call_model
from shared.providers.stream import StreamCancelled, StreamTarget
from shared.receipts.call import CallRecord
from shared.resources import Resources
from shared.routing.candidates import Candidate
from shared.routing.plan import plan_request
from shared.routing.policy import TenantPolicy
from shared.routing.tokens import estimate_input_tokens
from shared.spend.budgets import Budgets, as_numeric, budget_left, check_per_call, reserve
from shared.spend.leases import LeaseScope
from shared.spend.worst_case import worst_case_usd

log = get_logger(__name__)

# Errors that mean "try this job again later" (the database or Redis went away); everything
# else raised by our own code ends the job as failed.
INFRA_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_DB_ERRORS, RedisError)


OnCommitted = Callable[[Outcome], Awaitable[None]]


class StreamOut(Protocol):
    """Where a streamed job's chunks go as they come (the worker's `StreamRelay`)."""

    async def chunk(self, model: str, choices: list[dict[str, Any]], *, dropped: tuple[str, ...]) -> None:
        """Relay one chunk's choices under the canonical `model`; `StreamCancelled` when the caller left.
        `dropped`: the fields the answering provider was not sent, for the stream's headers."""
        ...


async def _no_one_waits(_: Outcome) -> None:
    return None


async def run_dispatch(res: Resources, job: DispatchJob, *, attempt: int = 1,
                       on_committed: OnCommitted = _no_one_waits, stream: StreamOut | None = None,
                       refusal: AinferaError | None = None) -> Outcome | None:
    """Run `job` as attempt `attempt`; `on_committed` hears the outcome as soon as it is durable
    (before the work a waiting caller need not wait for: learned statistics, the summary log line).
    With `stream`, the upstream answer is streamed and relayed there as it comes. With `refusal`,
    the job ends failed with it, with a receipt, and no provider is called (stored work whose key
    no longer allows it).

    Returns None when a later attempt holds the job: this attempt's lease is stale and whoever
    holds it will answer.
    """
    if attempt > 1:
        found = await _earlier_result(res, job, attempt)
        if found is not None:
            if isinstance(found, Outcome):
                await on_committed(found)
                return found
            return await _commit(res, job, found, on_committed, None, adopted=True)
        if job.kind == JobKind.SYNC and await register_attempt_of(res, job, attempt) is None:
            return await _commit(res, job, None, on_committed, None)  # finished meanwhile: replay it

    started = time.monotonic()
    call = CallRecord()
    if attempt > res.settings.job_max_attempts:
        call.error = InternalError(f"The job was attempted {attempt - 1} times without finishing; it was stopped.")
    elif refusal is not None:
        call.error = refusal
    elif not job.request:
        call.error = InvalidRequest("This request could not be read back from storage (it holds JSON that "
                                    "Postgres cannot store, such as a \\u0000 escape).", code="unreadable_request")
    else:
        try:
            tenant = await res.tenants.tenant(job.tenant_id)
            policy = TenantPolicy.from_json(tenant.spend_policy if tenant else None)
            budgets = Budgets.of(policy.limits, job.key_limits)
            cap, cap_source = await _spend_cap(res, job, budgets) if budgets.any else (None, None)
            with res.tracing.span("route") as span:
                call.plan = plan_request(
                    job.request,
                    res.catalog.current,
                    policy=policy,
                    stats=res.stats.current,
                    settings=res.settings,
                    spend_cap_usd=cap,
                    spend_cap_source=cap_source,
                )
                if span.is_recording():
                    span.set_attributes({"ainfera.requested_model": job.request.model, "ainfera.auto": call.plan.auto,
                                         "ainfera.model": call.plan.chosen.model.slug,
                                         "ainfera.candidates": len(call.plan.candidates)})
            await _call_in_order(res, job, call, deadline=started + res.settings.upstream_deadline_s,
                                 stream=stream, budgets=budgets)
        except AinferaError as e:
            call.error = e
        except INFRA_ERRORS:
            raise
        except Exception:
            # Our own bug: end the job as failed with a receipt rather than leave it to re-run.
            log.exception("dispatch_internal_error", job_id=job.job_id)
            call.error = InternalError("The server had an error while processing your request.")
    latency_ms = int((time.monotonic() - started) * 1000)
    return await _commit(res, job, _build(res, job, call, latency_ms, attempt), on_committed, call)


async def register_attempt_of(res: Resources, job: DispatchJob, attempt: int) -> int | None:
    async with res.db.acquire() as conn:
        return await register_attempt(conn, job_id=job.job_id, tenant_id=job.tenant_id, kind=job.kind,
                                      requested_model=job.request.model if job.request else "",
                                      created_at=job.submitted_at, attempt=attempt)


async def _earlier_result(res: Resources, job: DispatchJob, attempt: int) -> Outcome | Commit | None:
    """What an earlier attempt left: the finished job's outcome, or a commit it could not write."""
    async with res.db.acquire() as conn:
        done = await job_outcome(conn, job.job_id)
    replayed = Outcome.from_row(done) if done is not None else None
    if replayed is not None:
        return replayed
    held = await take_held(res, job.job_id)
    if held is not None:
        log.info("held_commit_adopted", job_id=job.job_id, attempt=attempt)
        return held.taken_over(attempt)  # this attempt holds the lease
    return None


def _build(res: Resources, job: DispatchJob, call: CallRecord, latency_ms: int, attempt: int) -> Commit:
    kw: dict[str, Any] = {"job_id": job.job_id, "tenant_id": job.tenant_id, "kind": job.kind,
                          "request": job.request, "submitted_at": job.submitted_at, "latency_ms": latency_ms,
                          "attempt": attempt, "key_id": job.key_id}
    try:
        return build_commit(res, call, **kw)
    except Exception:
        # The answer could not be turned into rows (our bug): record the job as failed instead.
        log.exception("commit_build_failed", job_id=job.job_id, had_answer=call.completion is not None)
        failed = CallRecord(plan=call.plan, served=call.served, attempts=call.attempts,
                            error=InternalError("The server had an error while processing your request."))
        return build_commit(res, failed, **kw)


def _may_fall_back(error: UpstreamError) -> bool:
    """Another provider may succeed where this one failed; not when the request itself was refused
    (unless only this model cannot take part of it), nor once part of a streamed answer reached
    the caller."""
    if isinstance(error, UnsupportedByModel):
        return True
    return not isinstance(error, UpstreamRejected | UpstreamStreamBroken)


async def _spend_cap(res: Resources, job: DispatchJob, budgets: Budgets) -> tuple[float | None, str | None]:
    """The most this call may cost at worst, for ainfera-auto to route within: the per-call cap and
    what the daily and monthly budgets have left (read, not held: the hold decides). With a budget
    lease, what was left when it was granted: leases exist only far from the limit, where that is
    a generous cap; near it, the counters are read."""
    cap, source = budgets.per_call_usd, budgets.per_call_source
    if budgets.periodic and job.request is not None and job.request.is_auto:
        hint = res.budget_leases.left_hint(LeaseScope.of(job.tenant_id, job.key_id, budgets, res.clock()))
        if hint is not None:
            left: float | None = float(hint)
        else:
            async with res.db.acquire() as conn:
                left = await budget_left(conn, tenant_id=job.tenant_id, key_id=job.key_id, budgets=budgets,
                                         now=res.clock())
        if left is not None and (cap is None or left < cap):
            cap, source = left, "what the daily or monthly budget has left"
    return cap, source


async def _hold(res: Resources, job: DispatchJob, call: CallRecord, cand: Candidate, input_tokens: int,
                budgets: Budgets) -> None:
    """Reserve this candidate's worst case against the job's budgets (re-sizing what an earlier
    candidate held), or raise BudgetExceeded before any provider is called. From the worker's
    budget lease when it has room (no round trip), else in Postgres."""
    assert job.request is not None
    worst = worst_case_usd(cand.model, input_tokens, job.request.output_cap)
    if worst is None:
        raise BudgetExceeded(f"'{cand.model.slug}' has no catalog price, so its cost cannot be held against this "
                             "budget.", param="model")
    check_per_call(budgets, worst, cand.model.slug)
    if not budgets.periodic:
        return
    if call.lease is not None:
        res.budget_leases.give_back(call.lease)
        call.lease = None
    now = res.clock()
    call.lease = res.budget_leases.take(LeaseScope.of(job.tenant_id, job.key_id, budgets, now), as_numeric(worst))
    if call.lease is None:
        async with res.db.acquire() as conn:
            await reserve(conn, job_id=job.job_id, tenant_id=job.tenant_id, key_id=job.key_id, amount_usd=worst,
                          budgets=budgets, now=now)


async def _call_in_order(res: Resources, job: DispatchJob, call: CallRecord, *, deadline: float,
                         stream: StreamOut | None = None, budgets: Budgets | None = None) -> None:
    """Try the plan's candidates in order until one answers; record each failure openly."""
    assert call.plan is not None and job.request is not None
    candidates = call.plan.candidates
    body = upstream_body(job.request)
    input_tokens = estimate_input_tokens(body["messages"], body.get("tools")) if budgets and budgets.any else 0
    for i, cand in enumerate(candidates):
        call.served = cand
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise UpstreamTimeout("no time left in the overall deadline for another provider")
        try:
            if budgets is not None and budgets.any:
                await _hold(res, job, call, cand, input_tokens, budgets)
            await _call_one(res, cand, body, call, remaining, stream)
            return
        except BudgetExceeded as e:
            if i == len(candidates) - 1 or not call.plan.auto:
                raise
            res.metrics.fell_back(cand.provider.name, cand.model.slug)
            call.fallbacks.append({"slug": cand.model.slug, "provider": cand.provider.name,
                                   "error": {"code": e.code, "message": e.message}})
        except UpstreamError as e:
            call.attempts += e.attempts
            res.metrics.upstream_failed(cand.provider.name, cand.model.slug, e.code, e.attempts)
            last = i == len(candidates) - 1
            if last or not call.plan.auto or not _may_fall_back(e):
                raise
            res.metrics.fell_back(cand.provider.name, cand.model.slug)
            call.fallbacks.append(
                {"slug": cand.model.slug, "provider": cand.provider.name,
                 "error": {"code": e.code, "message": e.message}}
            )
            log.warning("upstream_fallback", job_id=job.job_id, failed=cand.model.slug, code=e.code,
                        next=candidates[i + 1].model.slug)


async def _call_one(res: Resources, cand: Candidate, body: dict[str, Any], call: CallRecord,
                    remaining_s: float, stream: StreamOut | None = None) -> None:
    if cand.reasoning_effort is not None:  # ainfera-auto chose the effort (only when the caller set none)
        body = {**body, "reasoning_effort": cand.reasoning_effort}
    target = None
    if stream is not None:
        slug = cand.model.slug

        async def relay(choices: list[dict[str, Any]]) -> None:
            assert target is not None
            await stream.chunk(slug, choices, dropped=target.dropped)

        target = StreamTarget(relay, input_tokens_estimate=estimate_input_tokens(body["messages"], body.get("tools")))
    try:
        with _upstream_span(res, cand, streamed=target is not None) as span:
            result = await call_model(res.http, res.settings, cand.model, cand.provider, body,
                                      deadline_s=remaining_s, stream=target)
            if span.is_recording():
                span.set_attributes({"gen_ai.usage.input_tokens": result.completion.input_tokens,
                                     "gen_ai.usage.output_tokens": result.completion.output_tokens,
                                     "ainfera.upstream.attempts": result.attempts})
    except (StreamCancelled, UpstreamStreamBroken) as e:
        # Part of the answer was generated (and paid for upstream): keep it, to bill it.
        assert target is not None
        call.relayed_chunks = target.relayed
        call.completion = target.reader.partial() if target.reader is not None else None
        if isinstance(e, UpstreamStreamBroken):
            raise
        call.cancelled = True
        raise ClientDisconnected("The client closed the connection before the stream ended.") from None
    if target is not None:
        call.relayed_chunks = target.relayed
    call.completion = result.completion
    call.dropped = result.dropped
    call.attempts += result.attempts
    call.upstream_latency_ms = round(result.latency_ms)
    res.metrics.upstream_ok(cand.provider.name, cand.model.slug, result.latency_ms / 1000, result.attempts)


def _upstream_span(res: Resources, cand: Candidate, *, streamed: bool) -> AbstractContextManager[Span]:
    """One upstream call's span, in the GenAI semantic conventions' terms (`chat <upstream model>`):
    provider, the name sent upstream and our slug; never the messages."""
    if not res.tracing.on:
        return res.tracing.span("")
    upstream = cand.model.upstream_model
    return res.tracing.span(f"chat {upstream}", kind=SpanKind.CLIENT, attributes={
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": cand.provider.name,
        "gen_ai.request.model": upstream, "ainfera.model": cand.model.slug, "ainfera.streamed": streamed})


async def _commit(res: Resources, job: DispatchJob, commit: Commit | None, on_committed: OnCommitted,
                  call: CallRecord | None, *, adopted: bool = False) -> Outcome | None:
    """Write `commit` (None: only read what is stored), answer the waiter, then learn from the call."""
    first = commit is not None and await write_commit(res, commit)
    if adopted:
        await drop_held(res, job.job_id)
    if not first:
        async with res.db.acquire() as conn:
            stored = await job_outcome(conn, job.job_id)
        replayed = Outcome.from_row(stored) if stored is not None else None
        if replayed is None:
            log.warning("lease_lost", job_id=job.job_id)  # a later attempt runs the job and will answer
            return None
        await on_committed(replayed)
        return replayed
    assert commit is not None
    outcome = Outcome(http_status=commit.http_status, body=commit.body)
    _count(res, job, commit)
    await on_committed(outcome)
    if call is not None:
        await _learn(res, job, call, commit)
    return outcome


def _count(res: Resources, job: DispatchJob, commit: Commit) -> None:
    """The metrics of a job this attempt committed (once per job, as its receipt)."""
    r, m = commit.receipt, res.metrics
    kind = "stream" if job.kind == JobKind.SYNC and job.request is not None and job.request.stream else job.kind
    m.dispatched(kind, r.status.value, r.error_code)
    if r.provider and r.model_slug:
        m.billed(r.provider, r.model_slug, r.cost_usd, r.input_tokens, r.output_tokens)
    m.appended(commit.event_type)
    if r.error_code == BudgetExceeded.default_code:
        m.budget_refusals.labels(kind).inc()


async def _learn(res: Resources, job: DispatchJob, call: CallRecord, commit: Commit) -> None:
    r = commit.receipt
    if call.succeeded and r.model_slug:
        res.stats.record(r.model_slug, r.input_tokens, r.output_tokens, r.upstream_latency_ms,
                         reasoning_effort=r.reasoning_effort, tenant=str(r.tenant_id),
                         output_cap=job.request.output_cap if job.request else None)
    log.info("job_finished", job_id=job.job_id, status=r.status.value, model=r.model_slug, provider=r.provider,
             error_code=r.error_code, latency_ms=r.latency_ms, attempts=r.attempts, fallbacks=len(call.fallbacks))




"""The batch supervisor: one tick a second keeps every open batch moving.

Each tick, under a Redis lock so ticks never overlap:
1. closes batches that expired or are being cancelled (their unstarted lines never run),
   and hands finished batches to a finalize job (which writes the output and error files);
2. feeds lines to the bulk queue: it turns the next input lines into queued jobs and
   enqueues them, keeping the queue no deeper than a watermark and taking turns between
   tenants, so one tenant's million-line batch cannot starve another's; the batch rate limits
   of a batch's tenant and of the key that created it (`shared/rate_limits.py`) hold back the
   lines over them until a later turn (they wait, never fail, and never take from the
   interactive limits);
3. reconciles: stored jobs (async calls, fed batch lines) that have not finished but have
   no queue entry any more (Redis flushed or restarted) are enqueued again. A marker key
   tells a Redis that lost its data from one that did not, and triggers a full pass.
Everything it does is derived from Postgres and safe to repeat.

One batch's failure never stops the others: each batch is advanced and fed on its own, and
an error in one (a line Postgres cannot read, a bug) is logged and that batch skipped for the
tick, while every other tenant's batches are fed and the reconciler and key expiry still run.
A line that cannot be read becomes a job without a request, which fails alone (see
`materialize_lines`). Losing the database or Redis is different: that ends the tick, which the
next second retries.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from arq.constants import job_key_prefix
from redis.exceptions import LockError, RedisError

from shared.auth.key_settings import KeySettings
from shared.batches.finalize import finalize_job_id
from shared.db import TRANSIENT_DB_ERRORS
from shared.db.batches import (
    OpenBatch,
    close_open_lines,
    has_open_lines,
    line_sizes,
    materialize_lines,
    open_batches,
    open_stored_jobs,
)
from shared.db.idempotency import expire_keys
from shared.db.tenants import get_api_key, get_tenant
from shared.job_queue import enqueue_stored
from shared.jobs import DISPATCH_STORED, FINALIZE_BATCH
from shared.logging import get_logger
from shared.queue.enqueue import enqueue
from shared.queue.names import EPOCH_KEY, SUPERVISOR_LOCK_KEY, arq_id
from shared.queue.pool import queue_redis
from shared.rate_limits import Lane, Limit, estimated_tokens, limits_for, take_batch
from shared.resources import Resources
from shared.routing.limits import RateLimits
from shared.routing.policy import TenantPolicy
from shared.routing.tokens import CHARS_PER_TOKEN
from shared.spend.budgets import release_stale

log = get_logger(__name__)

IDEMPOTENCY_TTL = timedelta(hours=24)
# Losing one of these ends the whole tick (the next one retries); any other error is one batch's own.
_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_DB_ERRORS, RedisError)


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    watermark: int = 4000  # the bulk queue is fed up to this depth
    chunk: int = 500  # lines fed per batch per turn
    reconcile_after_s: float = 10.0  # a stored job this old with no queue entry is re-enqueued
    running_grace_s: float = 180.0  # ... or this old when a worker had started it
    reconcile_limit: int = 20_000
    # Within a tick, top the queue up this often, for this long: the feed keeps pace with fast
    # workers without ticking more than once a second.
    refill_every_s: float = 0.1
    refill_for_s: float = 0.8
    # Budget reservations: a finished job's is released after this long (its receipt settles it at
    # once; this is for jobs that ended without one); one that never became a job row (a
    # synchronous job whose worker died for good) after this much longer, past any job's deadline.
    budget_release_after_s: float = 60.0
    budget_orphan_after_s: float = 3600.0


@dataclass(slots=True)
class TickReport:
    fed: int = 0
    requeued: int = 0
    finalizing: list[str] = field(default_factory=list)
    budgets_released: int = 0
    skipped: bool = False


async def supervise(res: Resources, config: SupervisorConfig) -> TickReport:
    report = TickReport()
    lock = res.redis.lock(SUPERVISOR_LOCK_KEY, timeout=10, blocking=False)  # released only by its own holder
    if not await lock.acquire():
        report.skipped = True
        return report
    try:
        now = res.clock()
        async with res.db.acquire() as conn:
            batches = await open_batches(conn)
        broken: set[str] = set()
        for b in batches:
            try:
                if await _advance(res, b, now):
                    report.finalizing.append(b.id)
            except _OUTAGE_ERRORS:
                raise
            except Exception:  # isolation boundary: one batch's bug must not stop every tenant's batches
                log.exception("batch_advance_failed", batch_id=b.id)
                broken.add(b.id)
        feedable = [b for b in batches if b.status in ("validating", "in_progress") and b.fed_through < b.total
                    and now < b.expires_at and b.id not in report.finalizing and b.id not in broken]
        report.fed = await _feed(res, feedable, config, broken)
        report.requeued = await _reconcile(res, config)
        report.fed += await _keep_fed(res, config, broken)
        async with res.db.acquire() as conn:
            await expire_keys(conn, IDEMPOTENCY_TTL)
            report.budgets_released = await release_stale(conn, age_s=config.budget_release_after_s,
                                                          orphan_age_s=config.budget_orphan_after_s)
    finally:
        with contextlib.suppress(LockError):  # expired meanwhile: another tick may hold it now
            await lock.release()
    if report.fed or report.requeued or report.finalizing:
        log.info("batch_supervisor_tick", fed=report.fed, requeued=report.requeued, finalizing=report.finalizing)
    return report


async def _advance(res: Resources, b: OpenBatch, now: datetime) -> bool:
    """Close expired and cancelling batches; hand finished ones to a finalize job. True when finishing."""
    async with res.db.acquire() as conn:
        if b.status == "cancelling":
            await close_open_lines(conn, b.id, "cancelled")
        elif b.status in ("validating", "in_progress") and now >= b.expires_at:
            await close_open_lines(conn, b.id, "expired")
        elif b.status in ("validating", "in_progress") and b.fed_through < b.total:
            return False
        if await has_open_lines(conn, b.id):
            return False
    await enqueue(res.redis, FINALIZE_BATCH.queue, FINALIZE_BATCH.name, job_id=finalize_job_id(b.id),
                  kwargs={"batch_id": b.id})
    return True


def _job_prefix(batch_id: str) -> str:
    return f"job_{batch_id.removeprefix('batch_')}_"


async def _feed(res: Resources, batches: list[OpenBatch], config: SupervisorConfig, broken: set[str]) -> int:
    """Fill the bulk queue up to the watermark, one chunk per tenant per turn, oldest-fed tenant first.

    A batch whose feed fails is added to `broken` and left alone for the rest of the tick."""
    if not batches:
        return 0
    budget = config.watermark - int(await res.redis.zcard(DISPATCH_STORED.queue))
    by_tenant: OrderedDict[Any, list[OpenBatch]] = OrderedDict()
    for b in sorted(batches, key=lambda b: (b.last_fed_at is not None, b.last_fed_at or b.expires_at)):
        by_tenant.setdefault(b.tenant_id, []).append(b)
    progress = {b.id: b.fed_through for b in batches}
    throttles = await _batch_limits(res, batches)
    fed = 0
    while budget > 0 and by_tenant:
        for tenant in list(by_tenant):
            queue = by_tenant[tenant]
            b = queue[0]
            take = min(config.chunk, budget, b.total - progress[b.id])
            try:
                if throttles.get(b.id):
                    wanted = take
                    take = await _within_rate_limits(res, throttles[b.id], b.id, progress[b.id], take)
                    if take < wanted:  # a rate-limit hit: the batch lane, the tenant's or its key's limits
                        res.metrics.rate_limited.labels(Lane.BATCH, "tenant", "any").inc()
                    if take == 0:  # over its batch rate limits: it waits for a later turn, the tenant's others go on
                        queue.pop(0)
                        if not queue:
                            del by_tenant[tenant]
                        continue
                through = progress[b.id] + take
                async with res.db.acquire() as conn:
                    ids = await materialize_lines(conn, b.id, progress[b.id], through, _job_prefix(b.id))
            except _OUTAGE_ERRORS:
                raise
            except Exception:  # isolation boundary: this batch only; the others keep being fed
                log.exception("batch_feed_failed", batch_id=b.id, lines_after=progress[b.id])
                broken.add(b.id)
                through = b.total  # drop it from this tick's turns
            else:
                await enqueue_stored(res.redis, ids)
                fed += len(ids)
                budget -= take
            progress[b.id] = through
            if through >= b.total:
                queue.pop(0)
                if not queue:
                    del by_tenant[tenant]
            if budget <= 0:
                break
    return fed


async def _batch_limits(res: Resources, batches: list[OpenBatch]) -> dict[str, list[Limit]]:
    """Each batch's batch rate limits (`batch_requests_per_minute`, `batch_tokens_per_minute`):
    its tenant's and those of the key that created it, as they are now."""
    found: dict[str, list[Limit]] = {}
    tenants: dict[Any, RateLimits | None] = {}
    keys: dict[Any, RateLimits] = {}
    async with res.db.acquire() as conn:
        for b in batches:
            if b.tenant_id not in tenants:
                row = await get_tenant(conn, b.tenant_id)
                tenants[b.tenant_id] = TenantPolicy.from_json(row.spend_policy).limits.rate_limits if row else None
            tenant_limits = tenants[b.tenant_id]
            if tenant_limits is None:
                continue
            if b.key_id is not None and b.key_id not in keys:
                key = await get_api_key(conn, b.tenant_id, b.key_id)
                keys[b.key_id] = KeySettings.from_json(key.settings).limits.rate_limits if key else RateLimits()
            key_limits = keys[b.key_id] if b.key_id is not None else RateLimits()
            found[b.id] = limits_for(b.tenant_id, tenant_limits, b.key_id, key_limits, Lane.BATCH)
    return found


async def _within_rate_limits(res: Resources, limits: list[Limit], batch_id: str, after: int, take: int) -> int:
    """How many of the `take` lines after `after` the batch's limits let through now (taken from them)."""
    async with res.db.acquire() as conn:
        sizes = await line_sizes(conn, batch_id, after, after + take)
    tokens = [estimated_tokens(-(-size // CHARS_PER_TOKEN), cap) for size, cap in sizes]
    return await take_batch(res.redis, limits, tokens)


async def _keep_fed(res: Resources, config: SupervisorConfig, broken: set[str]) -> int:
    """Refill the queue for the rest of the tick while there is something to feed."""
    loop = asyncio.get_running_loop()
    until = loop.time() + config.refill_for_s
    fed = 0
    while loop.time() < until:
        await asyncio.sleep(config.refill_every_s)
        now = res.clock()
        async with res.db.acquire() as conn:
            batches = [b for b in await open_batches(conn) if b.status in ("validating", "in_progress")
                       and b.fed_through < b.total and now < b.expires_at and b.id not in broken]
        if not batches:
            break
        fed += await _feed(res, batches, config, broken)
    return fed


async def _reconcile(res: Resources, config: SupervisorConfig) -> int:
    """Re-enqueue stored jobs that lost their queue entry. A full pass after Redis lost its data."""
    lost_everything = not await res.redis.exists(EPOCH_KEY)
    if lost_everything:
        await res.redis.set(EPOCH_KEY, res.clock().isoformat())
    age = 0.0 if lost_everything else config.reconcile_after_s
    async with res.db.acquire() as conn:
        candidates = await open_stored_jobs(conn, age, config.reconcile_limit, config.running_grace_s)
    if not candidates:
        return 0
    queue = DISPATCH_STORED.queue
    async with queue_redis(res.redis, queue).pipeline(transaction=False) as pipe:
        for job_id in candidates:
            pipe.exists(job_key_prefix + arq_id(queue, job_id))
        present = await pipe.execute()
    missing = [jid for jid, here in zip(candidates, present, strict=True) if not here]
    if missing:
        log.warning("stored_jobs_requeued", count=len(missing), redis_lost_data=lost_everything)
    requeued = await enqueue_stored(res.redis, missing)
    if requeued:
        res.metrics.reconciler_requeued.inc(requeued)
    return requeued

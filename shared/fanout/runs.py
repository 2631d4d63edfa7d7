"""Fanout runs: asked for anywhere, planned where the probes are made.

`start_run` records a run in state 'planning' and queues its planning job on the probe
queue. It needs only the database and Redis, so the CLI, the admin API and the schedule
can all ask for a run without holding any provider key. `plan_queued_run` runs on a probe
worker, the process that makes the calls and so the only one that knows which providers
it can reach (a key is set, or the simulator stands in): it plans the probes (all rows,
or one provider's), stops at the spend cap, records the ones that need no call (no
credentials) and queues one probe job per model on the probe queue, which no caller
waits behind.

Scheduled runs take their id from the schedule slot, so two workers whose cron fired at the
same moment create one run, not two. Every step is idempotent on the run id: a planning
job that runs twice plans once, and re-queues only the probes without a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis

from shared.catalog.types import Catalog
from shared.db.catalog import provider_names
from shared.db.fanout import create_run, get_run, record_probe, store_run_plan, unrecorded_probes
from shared.db.types import Pool
from shared.errors import InvalidRequest, UpstreamMisconfigured
from shared.fanout.probe import ProbeOutcome, estimated_probe_cost
from shared.ids import new_id
from shared.jobs import DECIDE_FANOUT, PLAN_FANOUT, PROBE_MODEL
from shared.logging import get_logger
from shared.providers.call import has_credential, provider_url
from shared.queue.enqueue import enqueue, enqueue_many
from shared.resources import Resources
from shared.settings import Settings

log = get_logger(__name__)



@dataclass(frozen=True, slots=True)
class RunPlan:
    to_call: list[str]  # probes that go upstream
    no_credentials: list[str]  # recorded as skipped at once
    not_probed: list[str]  # left out by the spend cap
    estimated_cost_usd: Decimal


def plan_probes(catalog: Catalog, settings: Settings, provider: str | None) -> RunPlan:
    """What a run probes, as seen by the process whose settings (keys, upstream override) are given."""
    to_call: list[str] = []
    no_credentials: list[str] = []
    not_probed: list[str] = []
    spent = 0.0
    for slug in sorted(catalog.models):
        model = catalog.models[slug]
        if provider is not None and model.provider != provider:
            continue
        prov = catalog.providers[model.provider]
        if not has_credential(settings, prov):
            no_credentials.append(slug)
            continue
        cost = estimated_probe_cost(model)
        if spent + cost > settings.fanout_spend_cap_usd:
            not_probed.append(slug)
            continue
        spent += cost
        to_call.append(slug)
    return RunPlan(to_call, no_credentials, not_probed, Decimal(str(round(spent, 10))))


def probe_job_id(run_id: str, slug: str) -> str:
    return f"probe:{run_id}:{slug}"


async def start_run(db: Pool, redis: Redis, *, trigger: str, provider: str | None = None,
                    run_id: str | None = None) -> str | None:
    """Ask for a run. Returns its id, or None when `run_id` was taken already."""
    run_id = run_id or new_id("fanout")
    async with db.acquire() as conn:
        if provider is not None and provider not in await provider_names(conn):
            raise InvalidRequest(f"Unknown provider '{provider}'.", param="provider")
        if not await create_run(conn, run_id=run_id, trigger=trigger, provider_filter=provider):
            return None
    await queue_planning(redis, run_id)
    log.info("fanout_run_requested", run_id=run_id, trigger=trigger, provider=provider)
    return run_id


async def queue_planning(redis: Redis, run_id: str) -> bool:
    return await enqueue(redis, PLAN_FANOUT.queue, PLAN_FANOUT.name, job_id=f"plan:{run_id}",
                         kwargs={"run_id": run_id})


async def plan_queued_run(res: Resources, run_id: str) -> None:
    """On a probe worker: plan a requested run with this process's credentials, then queue its probes."""
    async with res.db.acquire() as conn:
        run = await get_run(conn, run_id)
    if run is None or run["status"] == "completed":
        return
    if run["status"] == "planning":
        catalog = res.catalog.current
        plan = plan_probes(catalog, res.settings, run["provider_filter"])
        async with res.db.acquire() as conn, conn.transaction():
            planned_here = await store_run_plan(conn, run_id, plan=plan.to_call + plan.no_credentials,
                                            not_probed=plan.not_probed, estimated_cost_usd=plan.estimated_cost_usd)
            for slug in plan.no_credentials if planned_here else ():
                model = catalog.models[slug]
                await record_probe(conn, {
                    "run_id": run_id, "model_slug": slug, "provider": model.provider, "outcome": ProbeOutcome.SKIPPED,
                    "reason": "no_credentials", "upstream_model": model.upstream_model,
                    "upstream_url": _url_or_row(catalog, slug)})
        if planned_here:
            log.info("fanout_run_planned", run_id=run_id, provider=run["provider_filter"], probes=len(plan.to_call),
                     skipped=len(plan.no_credentials), not_probed=len(plan.not_probed))
    await continue_run(res, run_id)


async def continue_run(res: Resources, run_id: str) -> None:
    """Queue the planned probes that have no result yet; with none left, queue the run's decision."""
    async with res.db.acquire() as conn:
        missing = await unrecorded_probes(conn, run_id)
    if missing:
        await queue_probes(res, run_id, missing)
    else:
        await enqueue(res.redis, DECIDE_FANOUT.queue, DECIDE_FANOUT.name, job_id=f"decide:{run_id}",
                      kwargs={"run_id": run_id})


def _url_or_row(catalog: Catalog, slug: str) -> str:
    prov = catalog.providers[catalog.models[slug].provider]
    try:
        return provider_url(prov)
    except UpstreamMisconfigured:  # a broken row: describe it as stored
        return f"{prov.base_url} + {prov.chat_completions_path or ''}"


async def queue_probes(res: Resources, run_id: str, slugs: list[str]) -> int:
    jobs: list[tuple[str, dict[str, Any]]] = [
        (probe_job_id(run_id, s), {"run_id": run_id, "slug": s}) for s in slugs]
    return await enqueue_many(res.redis, PROBE_MODEL.queue, PROBE_MODEL.name, jobs)

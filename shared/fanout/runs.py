"""Starting a fanout run: plan the probes (all rows, or one provider's), stop at the spend cap,
record the ones that need no call (no credentials), and queue one probe job per model on the
probe queue, which no caller waits behind.

Scheduled runs take their id from the schedule slot, so two workers whose cron fired at the
same moment create one run, not two.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.catalog.types import Catalog
from shared.db.fanout import create_run, record_probe, unrecorded_probes
from shared.errors import InvalidRequest, UpstreamMisconfigured
from shared.fanout.probe import estimated_probe_cost
from shared.ids import new_id
from shared.logging import get_logger
from shared.providers.call import has_credential, provider_url
from shared.queue.enqueue import enqueue, enqueue_many
from shared.queue.names import QueueName
from shared.resources import Resources
from shared.settings import Settings

log = get_logger(__name__)

PROBE_FUNCTION = "probe_model"
DECIDE_FUNCTION = "decide_fanout"


@dataclass(frozen=True, slots=True)
class RunPlan:
    to_call: list[str]  # probes that go upstream
    no_credentials: list[str]  # recorded as skipped at once
    not_probed: list[str]  # left out by the spend cap
    estimated_cost_usd: Decimal


def plan_run(catalog: Catalog, settings: Settings, provider: str | None) -> RunPlan:
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


async def start_run(res: Resources, *, trigger: str, provider: str | None = None,
                    run_id: str | None = None) -> str | None:
    """Create and queue a run. Returns its id, or None when `run_id` was taken already."""
    catalog = res.catalog.current
    if provider is not None and provider not in catalog.providers:
        raise InvalidRequest(f"Unknown provider '{provider}'.", param="provider")
    plan = plan_run(catalog, res.settings, provider)
    run_id = run_id or new_id("fanout")
    async with res.db.acquire() as conn, conn.transaction():
        if not await create_run(conn, run_id=run_id, trigger=trigger, provider_filter=provider,
                                plan=plan.to_call + plan.no_credentials, not_probed=plan.not_probed,
                                estimated_cost_usd=plan.estimated_cost_usd):
            return None
        last = False
        for slug in plan.no_credentials:
            model = catalog.models[slug]
            last = await record_probe(conn, {
                "run_id": run_id, "model_slug": slug, "provider": model.provider, "outcome": "skipped",
                "reason": "no_credentials", "upstream_model": model.upstream_model,
                "upstream_url": _url_or_row(catalog, slug)})
    await queue_probes(res, run_id, plan.to_call)
    if last or not (plan.to_call or plan.no_credentials):
        await enqueue(res.redis, QueueName.CONTROL, DECIDE_FUNCTION, job_id=f"decide:{run_id}",
                      kwargs={"run_id": run_id})
    log.info("fanout_run_started", run_id=run_id, trigger=trigger, provider=provider, probes=len(plan.to_call),
             skipped=len(plan.no_credentials), not_probed=len(plan.not_probed))
    return run_id


def _url_or_row(catalog: Catalog, slug: str) -> str:
    prov = catalog.providers[catalog.models[slug].provider]
    try:
        return provider_url(prov)
    except UpstreamMisconfigured:  # a broken row: describe it as stored
        return f"{prov.base_url} + {prov.chat_completions_path or ''}"


async def queue_probes(res: Resources, run_id: str, slugs: list[str]) -> int:
    jobs: list[tuple[str, dict[str, Any]]] = [
        (probe_job_id(run_id, s), {"run_id": run_id, "slug": s}) for s in slugs]
    return await enqueue_many(res.redis, QueueName.PROBE, PROBE_FUNCTION, jobs)


async def requeue_lost_probes(res: Resources, run_id: str) -> int:
    """Queue again the probes of a run that have no result (their jobs were lost with Redis)."""
    async with res.db.acquire() as conn:
        missing = await unrecorded_probes(conn, run_id)
    return await queue_probes(res, run_id, missing)

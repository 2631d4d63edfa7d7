"""Deciding from a finished run: deactivate a model after K consecutive failed runs, reactivate it
after M consecutive passes, and write each switch with its evidence to the system audit chain.

Guard against our own outage: when the run's failures look like our side or a provider-wide
outage rather than broken rows, no model is deactivated and the run says why. Failures that
carry evidence about the row itself (the provider named the model unknown, the row's URL is
invalid, the provider's host has no such path) are not outage signs: a catalog with many
broken mappings must still be cleaned up. The rest (timeouts, connection failures, 5xx,
auth) is weighed against the passes: under a floor, or every failure a connection failure
across several providers, or no probe passing at all, decisions are withheld. Runs whose
decisions were withheld do not count towards anyone's streak. Exactly one caller applies a
run's decisions (`claim_decision`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from shared.audit.writer import append_event
from shared.catalog.types import Model
from shared.db.catalog import load_catalog, set_model_active
from shared.db.fanout import claim_decision, recent_outcomes, run_probes, store_decisions
from shared.fanout.probe import ProbeOutcome
from shared.logging import get_logger
from shared.resources import Resources

log = get_logger(__name__)

SYSTEM_TENANT = UUID("00000000-0000-0000-0000-000000000000")
PROBE_REASON_PREFIX = "probe:"
MANUAL_REASON_PREFIX = "manual:"  # an operator's switch: probes never override it
OUR_SIDE_REASONS = frozenset({"unreachable"})
# Failures that describe the row, whatever the state of the network: the provider answered and
# named the model unknown, the row's URL cannot be built, or the provider's host has no such path.
ROW_EVIDENCE_REASONS = frozenset({"model_not_found", "invalid_upstream_url", "http_404_path"})


@dataclass(frozen=True, slots=True)
class DecisionRules:
    deactivate_after: int = 2  # K consecutive failed runs
    reactivate_after: int = 1  # M consecutive passed runs
    pass_rate_floor: float = 0.5
    our_side_min_providers: int = 3  # this many providers failing to connect looks like our network


def guard_reason(probes: list[dict[str, Any]], rules: DecisionRules) -> str | None:
    """Why this run's failures should not switch anything off, or None."""
    passed = sum(p["outcome"] == ProbeOutcome.PASSED for p in probes)
    failed = [p for p in probes if p["outcome"] == ProbeOutcome.FAILED]
    if not failed:
        return None
    ambiguous = [p for p in failed if p["reason"] not in ROW_EVIDENCE_REASONS]
    if ambiguous:
        rate = passed / (passed + len(ambiguous))
        if rate < rules.pass_rate_floor:
            return (f"pass rate {rate:.0%} (leaving out {len(failed) - len(ambiguous)} failures that name a broken "
                    f"row) is under the floor of {rules.pass_rate_floor:.0%}: this looks like an outage on our "
                    "side or the providers', not broken rows")
    if passed == 0:
        return ("no probe passed: with nothing known to work, failures cannot be told apart from an outage "
                "on our side")
    unreachable = {p["provider"] for p in failed if p["reason"] in OUR_SIDE_REASONS}
    if len(unreachable) == len({p["provider"] for p in failed}) and len(unreachable) >= rules.our_side_min_providers:
        return (f"every failure was a connection failure, across {len(unreachable)} providers: "
                "this looks like our network, DNS or proxy, not broken rows")
    return None


async def decide_run(res: Resources, run_id: str, rules: DecisionRules) -> dict[str, Any] | None:
    async with res.db.acquire() as conn:
        run = await claim_decision(conn, run_id)
        if run is None:
            return None  # not finished yet, or decided by someone else
        probes = await run_probes(conn, run_id)
        catalog = await load_catalog(conn)  # fresh: a previous run may have switched rows moments ago
    guard = guard_reason(probes, rules)
    probed = [p["model_slug"] for p in probes
              if p["outcome"] != ProbeOutcome.SKIPPED and p["model_slug"] in catalog.models]
    window = max(rules.deactivate_after, rules.reactivate_after)
    async with res.db.acquire() as conn:
        history = await recent_outcomes(conn, probed, window, run_id)
    decisions: list[dict[str, Any]] = []
    for slug in probed:
        model = catalog.models[slug]
        recent = history.get(slug, [])
        if model.active and guard is None:
            streak = recent[: rules.deactivate_after]
            if len(streak) == rules.deactivate_after and all(o["outcome"] == ProbeOutcome.FAILED for o in streak):
                decisions.append(await _switch(res, run_id, model, False, streak[0]["reason"], streak))
        elif not model.active and not (model.deactivation_reason or "").startswith(MANUAL_REASON_PREFIX):
            streak = recent[: rules.reactivate_after]
            if len(streak) == rules.reactivate_after and all(o["outcome"] == ProbeOutcome.PASSED for o in streak):
                decisions.append(await _switch(res, run_id, model, True, None, streak))
    async with res.db.acquire() as conn:
        await store_decisions(conn, run_id, {"reason": guard} if guard else None, decisions)
    if guard:
        log.error("fanout_decisions_withheld", run_id=run_id, reason=guard)
    log.info("fanout_run_decided", run_id=run_id, passed=run["passed"], failed=run["failed"],
             skipped=run["skipped"], switched=len(decisions))
    return {**run, "guard": {"reason": guard} if guard else None, "decisions": decisions}


async def _switch(res: Resources, run_id: str, model: Model, active: bool, reason: str | None,
                  evidence: list[dict[str, Any]]) -> dict[str, Any]:
    slug = model.slug
    stored_reason = None if active else f"{PROBE_REASON_PREFIX}{reason}"
    decision = {
        "model": slug,
        "provider": model.provider,
        "action": "activated" if active else "deactivated",
        "reason": reason,
        "previous_reason": model.deactivation_reason,
        "evidence": evidence,
    }
    async with res.db.acquire() as conn, conn.transaction():
        await set_model_active(conn, slug, active, stored_reason)
        await append_event(conn, tenant_id=SYSTEM_TENANT, event_type=f"model.{decision['action']}",
                           fields={**decision, "run_id": run_id}, now=res.clock())
    res.metrics.appended(f"model.{decision['action']}")
    log.warning("model_" + str(decision["action"]), model=slug, reason=reason, run_id=run_id)
    return decision

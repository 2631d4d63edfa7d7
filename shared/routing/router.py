"""`ainfera-auto`: a pure, deterministic choice of model for a request, and why.

route() is a function of (request, catalog snapshot, statistics snapshot, tenant
policy, config) and nothing else: no I/O, no clock, no randomness, so the same inputs
always give the same decision and golden tests can pin it. The filter steps run in
this order, each recorded in the decision log with its survivors and the top three:

    active -> capability -> policy -> stack -> budget -> latency -> rank

An empty candidate set is an error naming the step that emptied it; never a silent
downgrade. Without hints and preferences the pick is ainfera-auto/1.0's: among the
candidates whose estimated cost fits the per-call cap, the highest aa_index, ties to
the cheaper, then to the slug. The steps 1.1 added only remove models that cannot
serve the request (context window, tools, images) or that the caller excluded.

A latency budget is a constraint the caller set (`latency.py`; docs/decisions.md has the
rule and a worked example). Candidates, their costs and expected latencies are evaluated
in `candidates.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.catalog.types import Catalog
from shared.errors import BudgetExceeded, NoEligibleModel
from shared.providers.params import unservable
from shared.routing.candidates import (
    Candidate,
    RouterConfig,
    RouteRequest,
    RoutingStats,
    cost_text,
    evaluate_rows,
    low_efforts,
    prefer,
    static_rows,
)
from shared.routing.latency import call_text, within_latency_budget
from shared.routing.policy import TenantPolicy
from shared.routing.stacks import allowed_stacks
from shared.spend.worst_case import worst_case_usd

# route() and the value types a caller hands it, importable from here.
__all__ = ["RULESET", "Decision", "RouteRequest", "RouterConfig", "RoutingStats", "route"]

RULESET = "ainfera-auto/1.5"
TOP_N = 3


@dataclass(frozen=True, slots=True)
class Decision:
    chosen: Candidate
    ranked: tuple[Candidate, ...]  # every survivor, best first: the fallback order
    log: dict[str, Any] = field(default_factory=dict)


def _capable(c: Candidate, req: RouteRequest) -> bool:
    """The estimated input plus max_tokens fits the context window; tools and images when asked for."""
    m = c.model
    if m.context_window is not None and req.input_tokens + (req.output_cap or 0) > m.context_window:
        return False
    if req.output_cap and m.max_output_tokens is not None and req.output_cap > m.max_output_tokens:
        return False
    if req.needs_tools and m.supports_tools is not True:
        return False
    if req.needs and unservable(c.model, c.provider, req.needs):
        return False
    return not (req.needs_vision and m.supports_vision is not True)


_EMPTY_HELP = {
    "active": ("no active model of a provider this deployment can call", None),
    "capability": ("no model has the context window, output limit, tools, image input, n, logprobs, audio, "
                   "structured output or PDF/audio input this request needs", "max_tokens"),
    "policy": ("the tenant's spend policy bans every remaining model", None),
    "stack": ("no remaining model is served from the requested stack", "routing_hint.stack"),
    "budget": ("every remaining model's estimated cost is above the per-call cap", "routing_hint.max_cost_usd"),
}


def route(
    req: RouteRequest,
    catalog: Catalog,
    *,
    policy: TenantPolicy | None = None,
    stats: RoutingStats | None = None,
    config: RouterConfig | None = None,
    callable_providers: frozenset[str] | None = None,
) -> Decision:
    policy = policy or TenantPolicy()
    stats = stats or RoutingStats()
    cfg = config or RouterConfig()
    # A caller's hint can only lower the tenant's cap, never raise it.
    if req.max_cost_usd is not None and (policy.max_cost_per_call_usd is None
                                         or req.max_cost_usd < policy.max_cost_per_call_usd):
        cap, cap_source = req.max_cost_usd, "routing_hint.max_cost_usd"
    elif policy.max_cost_per_call_usd is not None:
        cap, cap_source = policy.max_cost_per_call_usd, "spend_policy.max_cost_per_call_usd"
    else:
        cap, cap_source = cfg.default_max_cost_usd, "default"

    cands = evaluate_rows(static_rows(catalog, cfg), req, stats, cfg)
    cands.sort()
    steps: list[dict[str, Any]] = []
    log: dict[str, Any] = {
        "ruleset": RULESET,
        "request": {
            "input_tokens_estimate": req.input_tokens,
            "output_cap": req.output_cap,
            "needs_tools": req.needs_tools,
            "needs_vision": req.needs_vision,
            "stack": req.stack,
            "latency_budget_ms": req.latency_budget_ms,
            "reasoning_effort": req.reasoning_effort,
        },
        "max_cost_usd": cost_text(cap),
        "max_cost_source": cap_source,
        "steps": steps,
    }

    summaries: dict[tuple[str, str | None], dict[str, Any]] = {}

    def top(survivors: Sequence[Candidate]) -> list[dict[str, Any]]:
        out = []
        for c in survivors[:TOP_N]:
            summary = summaries.get((c.slug, c.reasoning_effort))
            if summary is None:
                summary = summaries[(c.slug, c.reasoning_effort)] = c.summary()
            out.append(summary)
        return out

    def record(name: str, survivors: list[Candidate], before: int, note: str | None = None) -> None:
        entry: dict[str, Any] = {"step": name, "survivors": len(survivors), "top": top(survivors)}
        if note:
            entry["note"] = note
        steps.append(entry)
        if not survivors:
            why, param = _EMPTY_HELP[name]
            log["chosen"] = None
            log["reason"] = f"step '{name}' removed the last {before} candidates: {why}"
            raise NoEligibleModel(
                f"ainfera-auto found no model: the {name} step removed the last {before} candidates ({why}).",
                param=param,
            )

    s = [c for c in cands if c.model.active and c.provider.active
         and (callable_providers is None or c.provider.name in callable_providers)]
    record("active", s, len(cands))
    before = len(s)
    s = [c for c in s if _capable(c, req)]
    record("capability", s, before)
    before = len(s)
    if policy.banned_providers or policy.banned_slugs:
        s = [c for c in s if policy.allows(c.model)]
    record("policy", s, before)
    before = len(s)
    if req.stack is not None:
        allowed = allowed_stacks(req.stack)
        s = [c for c in s if c.provider.stack in allowed]
    record("stack", s, before, None if req.stack else "no stack hint")
    before = len(s)
    s = [c for c in s if c.estimated_cost_usd is not None and c.estimated_cost_usd <= cap]
    record("budget", s, before)
    if req.spend_cap_usd is not None:
        before = len(s)
        spend_cap = req.spend_cap_usd
        s = [c for c in s if (w := worst_case_usd(c.model, req.input_tokens, req.output_cap)) is not None
             and w <= spend_cap]
        log["spend_cap_usd"] = cost_text(spend_cap)
        log["spend_cap_source"] = req.spend_cap_source
        if not s:
            steps.append({"step": "spend", "survivors": 0, "top": []})
            log["chosen"] = None
            log["reason"] = f"step 'spend' removed the last {before} candidates: no worst-case cost fits"
            raise BudgetExceeded(
                f"ainfera-auto found no model whose worst-case cost (input and max_tokens at catalog prices) fits "
                f"the ${spend_cap:g} this call may spend ({req.spend_cap_source}). Lower max_tokens, or wait for "
                "the budget's next period.", param="max_tokens")
        record("spend", s, before)

    if req.latency_budget_ms is None:
        ranked = prefer(s, policy, cfg.preferred_quality_margin)
        latency_note: str | None = None
        steps.append({"step": "latency", "survivors": len(s), "top": top(s), "note": "no latency budget"})
    else:
        ranked, latency_note, met = within_latency_budget(s, req, stats, policy, cfg, low_efforts(catalog, cfg))
        steps.append({"step": "latency", "survivors": len(ranked), "top": top(ranked), "note": latency_note})
        log["latency_budget_met"] = met
        log["expected_latency_ms"] = round(ranked[0].expected_latency_ms)

    chosen = ranked[0]
    steps.append({"step": "rank", "survivors": len(ranked), "top": top(ranked)})
    log["chosen"] = chosen.model.slug
    if chosen.reasoning_effort is not None:
        log["reasoning_effort"] = chosen.reasoning_effort
    log["reason"] = _reason(chosen, ranked, policy, cap, req, latency_note)
    return Decision(chosen=chosen, ranked=tuple(ranked), log=log)


def _reason(chosen: Candidate, ranked: Sequence[Candidate], policy: TenantPolicy, cap: float,
            req: RouteRequest, latency_note: str | None) -> str:
    parts = [f"{call_text(chosen)} (aa_index {chosen.aa_index}) is first of {len(ranked)} candidates "
             f"within the ${cap:g} per-call budget"]
    if chosen.provider.name in policy.preferred_providers:
        parts.append(f"its provider {chosen.provider.name} is preferred by the tenant")
    if req.latency_budget_ms is not None and latency_note:
        parts.append(latency_note)
    if len(parts) == 1:
        parts.append("highest aa_index wins, ties go to the cheaper, then the slug")
    return "; ".join(parts)

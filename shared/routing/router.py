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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from shared.catalog.types import Catalog, Model, Provider
from shared.errors import NoEligibleModel
from shared.routing.policy import TenantPolicy
from shared.routing.stacks import allowed_stacks

RULESET = "ainfera-auto/1.1"
TOP_N = 3
_NO_INDEX = -1.0


@dataclass(frozen=True, slots=True)
class RouteRequest:
    input_tokens: int
    output_cap: int | None = None  # max_tokens / max_completion_tokens
    needs_tools: bool = False
    needs_vision: bool = False
    max_cost_usd: float | None = None  # routing_hint.max_cost_usd
    stack: str | None = None  # routing_hint.stack
    latency_budget_ms: float | None = None  # routing_hint.latency_budget_ms


@dataclass(frozen=True, slots=True)
class RouterConfig:
    default_ratio: float = 0.5
    default_max_cost_usd: float = 0.10
    latency_quality_cap: float = 10.0  # aa points a latency budget may cost, at most
    preferred_quality_margin: float = 2.0  # preferred providers win within this many aa points of the best
    default_ttft_ms: float = 1000.0  # prior when the catalog has no first-token time
    fast_tier_ttft_ms: float = 200.0  # the same, for fast-tier providers
    default_output_tokens_per_s: float = 50.0


@dataclass(frozen=True, slots=True)
class RoutingStats:
    """What the workers learned: per slug, mean output/input ratio and median upstream latency.

    A slug is present only once it has enough samples; absent means "use the prior".
    """

    output_ratios: Mapping[str, float] = field(default_factory=dict)
    latency_ms: Mapping[str, float] = field(default_factory=dict)


class Candidate(NamedTuple):
    """One model evaluated for one request. The first three fields are the rank order:
    highest aa_index, then cheapest, then slug (tuples compare field by field)."""

    neg_aa: float
    cost_key: float
    slug: str
    model: Model
    provider: Provider
    expected_output_tokens: int
    estimated_cost_usd: float | None
    expected_latency_ms: float
    latency_observed: bool

    @property
    def aa(self) -> float:
        return -self.neg_aa

    def summary(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "provider": self.provider.name,
            "aa_index": self.model.aa_index,
            "estimated_cost_usd": cost_text(self.estimated_cost_usd),
            "expected_latency_ms": round(self.expected_latency_ms),
        }


@dataclass(frozen=True, slots=True)
class Decision:
    chosen: Candidate
    ranked: tuple[Candidate, ...]  # every survivor, best first: the fallback order
    log: dict[str, Any] = field(default_factory=dict)


def cost_text(v: float | None) -> str | None:
    """Costs go into logs (and audit payloads) as decimal strings: no float formatting drift."""
    return None if v is None else format(round(v, 10), ".10f").rstrip("0").rstrip(".") or "0"


_new_tuple = tuple.__new__
_INF = float("inf")
# (neg aa, slug, model, provider, input price, output price, prior ttft ms, ms per output token)
_StaticRow = tuple[float, str, Model, Provider, float | None, float | None, float, float]


def _static_rows(catalog: Catalog, cfg: RouterConfig) -> list[_StaticRow]:
    """Per-model facts that do not depend on the request, computed once per catalog snapshot."""
    key = f"router:{cfg.default_ttft_ms}:{cfg.fast_tier_ttft_ms}:{cfg.default_output_tokens_per_s}"
    rows: list[_StaticRow] | None = catalog.derived.get(key)
    if rows is None:
        rows = []
        for m in catalog.models.values():
            p = catalog.providers.get(m.provider)
            if p is None:
                continue
            ttft = float(m.p50_ttft_ms) if m.p50_ttft_ms is not None else (
                cfg.fast_tier_ttft_ms if p.fast_tier else cfg.default_ttft_ms)
            speed = m.output_tokens_per_s or cfg.default_output_tokens_per_s
            aa = m.aa_index if m.aa_index is not None else _NO_INDEX
            rows.append((-aa, m.slug, m, p, m.input_usd_per_mtok, m.output_usd_per_mtok, ttft, 1000.0 / speed))
        catalog.derived[key] = rows
    return rows


def _evaluate_rows(rows: Sequence[_StaticRow], req: RouteRequest, stats: RoutingStats,
                   cfg: RouterConfig) -> list[Candidate]:
    """Expected output tokens, estimated cost and expected latency of each model for this request.

    Expected output = learned ratio (or the default) x input tokens, at least 1, capped by
    max_tokens. Cost = input x input price + expected output x output price. Latency = the
    observed median when there is one, else first-token time + expected output / speed.
    """
    n = req.input_tokens
    cap_out = req.output_cap
    default_ratio = cfg.default_ratio
    ratio_of = stats.output_ratios.get
    latency_of = stats.latency_ms.get
    out_list: list[Candidate] = []
    append = out_list.append
    for neg_aa, slug, m, p, inp, outp, ttft, ms_per_token in rows:
        out = round(n * ratio_of(slug, default_ratio)) or 1
        if cap_out and out > cap_out:
            out = cap_out
        if inp is None or outp is None:
            cost, cost_key = None, _INF
        else:
            cost = cost_key = (n * inp + out * outp) / 1_000_000
        latency = latency_of(slug)
        seen = latency is not None
        if latency is None:
            latency = ttft + out * ms_per_token
        append(_new_tuple(Candidate, (neg_aa, cost_key, slug, m, p, out, cost, latency, seen)))
    return out_list


def evaluate(model: Model, provider: Provider, req: RouteRequest, stats: RoutingStats,
             cfg: RouterConfig) -> Candidate:
    """One model evaluated for one request (a pinned slug), by the same rules as route()."""
    single = Catalog(providers={provider.name: provider}, models={model.slug: model})
    return _evaluate_rows(_static_rows(single, cfg), req, stats, cfg)[0]


def _prefer(cands: list[Candidate], policy: TenantPolicy, margin: float) -> list[Candidate]:
    """Preferred providers first among candidates within `margin` aa points of the best; else unchanged."""
    if not policy.preferred_providers or not cands:
        return cands
    floor = cands[0].aa - margin
    pref = [c for c in cands if c.aa >= floor and c.provider.name in policy.preferred_providers]
    if not pref:
        return cands
    chosen = {id(c) for c in pref}
    return pref + [c for c in cands if id(c) not in chosen]


def _capable(c: Candidate, req: RouteRequest) -> bool:
    """The estimated input plus max_tokens fits the context window; tools and images when asked for."""
    m = c.model
    if m.context_window is not None and req.input_tokens + (req.output_cap or 0) > m.context_window:
        return False
    if req.output_cap and m.max_output_tokens is not None and req.output_cap > m.max_output_tokens:
        return False
    if req.needs_tools and m.supports_tools is not True:
        return False
    return not (req.needs_vision and m.supports_vision is not True)


_EMPTY_HELP = {
    "active": ("no active model of a provider this deployment can call", None),
    "capability": ("no model has the context window, output limit, tools or image input this request needs",
                   "max_tokens"),
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
    if req.max_cost_usd is not None:
        cap, cap_source = req.max_cost_usd, "routing_hint.max_cost_usd"
    elif policy.max_cost_per_call_usd is not None:
        cap, cap_source = policy.max_cost_per_call_usd, "spend_policy.max_cost_per_call_usd"
    else:
        cap, cap_source = cfg.default_max_cost_usd, "default"

    cands = _evaluate_rows(_static_rows(catalog, cfg), req, stats, cfg)
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
        },
        "max_cost_usd": cost_text(cap),
        "max_cost_source": cap_source,
        "steps": steps,
    }

    summaries: dict[str, dict[str, Any]] = {}

    def top(survivors: Sequence[Candidate]) -> list[dict[str, Any]]:
        out = []
        for c in survivors[:TOP_N]:
            summary = summaries.get(c.slug)
            if summary is None:
                summary = summaries[c.slug] = c.summary()
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

    ranked = _prefer(s, policy, cfg.preferred_quality_margin)
    latency_note: str | None = None
    if req.latency_budget_ms is None:
        steps.append({"step": "latency", "survivors": len(s), "top": top(s),
                      "note": "no latency budget"})
    else:
        unconstrained = ranked[0]
        floor = unconstrained.aa - cfg.latency_quality_cap
        budget = req.latency_budget_ms
        fits = [c for c in s if c.expected_latency_ms <= budget and c.aa >= floor]
        if fits:
            fast = _prefer([c for c in fits if c.provider.fast_tier], policy, cfg.preferred_quality_margin)
            slow = _prefer([c for c in fits if not c.provider.fast_tier], policy, cfg.preferred_quality_margin)
            ranked = fast + slow
            latency_note = (
                f"{len(fits)} models fit {budget:g} ms within {cfg.latency_quality_cap:g} aa points of the "
                f"unconstrained pick {unconstrained.model.slug} ({unconstrained.model.aa_index})"
                + ("; fast tier first" if fast else "; none of them is fast tier")
            )
            steps.append({"step": "latency", "survivors": len(fits), "top": top(ranked),
                          "note": latency_note})
        else:
            latency_note = (
                f"no model fits {budget:g} ms within {cfg.latency_quality_cap:g} aa points of "
                f"{unconstrained.model.slug} ({unconstrained.model.aa_index}); kept the pick made without the "
                "latency budget"
            )
            steps.append({"step": "latency", "survivors": len(s), "top": top(ranked),
                          "note": latency_note})
            log["latency_budget_met"] = False

    chosen = ranked[0]
    steps.append({"step": "rank", "survivors": len(ranked), "top": top(ranked)})
    log["chosen"] = chosen.model.slug
    log["reason"] = _reason(chosen, ranked, policy, cap, req, latency_note)
    return Decision(chosen=chosen, ranked=tuple(ranked), log=log)


def _reason(chosen: Candidate, ranked: Sequence[Candidate], policy: TenantPolicy, cap: float,
            req: RouteRequest, latency_note: str | None) -> str:
    parts = [f"{chosen.model.slug} (aa_index {chosen.model.aa_index}) is first of {len(ranked)} candidates "
             f"within the ${cap:g} per-call budget"]
    if chosen.provider.name in policy.preferred_providers:
        parts.append(f"its provider {chosen.provider.name} is preferred by the tenant")
    if req.latency_budget_ms is not None and latency_note:
        parts.append(latency_note)
    if len(parts) == 1:
        parts.append("highest aa_index wins, ties go to the cheaper, then the slug")
    return "; ".join(parts)

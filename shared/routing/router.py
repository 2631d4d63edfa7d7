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

A latency budget is a constraint the caller set (docs/decisions.md has the rule and a
worked example): the models expected to answer within it, including a reasoning model
called at its documented low effort, fast tier first unless that costs more than the
quality cap; when nothing fits, the fastest, and the log says the budget was not met.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from shared.catalog.types import Catalog, Model, Provider
from shared.errors import NoEligibleModel
from shared.routing.policy import TenantPolicy
from shared.routing.stacks import allowed_stacks

RULESET = "ainfera-auto/1.2"
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
    reasoning_effort: str | None = None  # the caller's own; never overridden


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
    """What the workers learned: per slug, mean output/input ratio; per (slug, effort), median latency.

    Latency is keyed by `latency_key(slug, effort)`: a reasoning model at low effort answers
    in a different time than at its default. A key is present only once it has enough
    samples; absent means "use the prior".
    """

    output_ratios: Mapping[str, float] = field(default_factory=dict)
    latency_ms: Mapping[str, float] = field(default_factory=dict)


def latency_key(slug: str, reasoning_effort: str | None) -> str:
    """Where a call's latency is learned: per model, and per reasoning effort when one was sent."""
    return slug if reasoning_effort is None else f"{slug}~{reasoning_effort}"


class Candidate(NamedTuple):
    """One model evaluated for one request. The first three fields are the rank order:
    highest aa_index, then cheapest, then slug (tuples compare field by field).

    `reasoning_effort` is set when the router chose to call the model at that effort (its
    fast variant, for a latency budget); `neg_aa` and the latency are then that variant's.
    """

    neg_aa: float
    cost_key: float
    slug: str
    model: Model
    provider: Provider
    expected_output_tokens: int
    estimated_cost_usd: float | None
    expected_latency_ms: float
    latency_observed: bool
    reasoning_effort: str | None = None

    @property
    def aa(self) -> float:
        return -self.neg_aa

    @property
    def aa_index(self) -> float | None:
        """The quality prior of the call as it will be made (the fast variant's at low effort)."""
        return None if self.neg_aa == -_NO_INDEX else self.aa

    def summary(self) -> dict[str, Any]:
        out = {
            "slug": self.slug,
            "provider": self.provider.name,
            "aa_index": self.aa_index,
            "estimated_cost_usd": cost_text(self.estimated_cost_usd),
            "expected_latency_ms": round(self.expected_latency_ms),
        }
        if self.reasoning_effort is not None:
            out["reasoning_effort"] = self.reasoning_effort
        return out


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

class _LowEffort(NamedTuple):
    """A model's fast variant as the router prices it: the effort to send, its aa and latency prior."""

    effort: str
    neg_aa: float
    ttft_ms: float
    ms_per_token: float


# (neg aa, slug, model, provider, input price, output price, prior ttft ms, ms per output token, low effort)
_StaticRow = tuple[float, str, Model, Provider, float | None, float | None, float, float, _LowEffort | None]


def _prior_ttft(ttft_ms: int | None, provider: Provider, cfg: RouterConfig) -> float:
    if ttft_ms is not None:
        return float(ttft_ms)
    return cfg.fast_tier_ttft_ms if provider.fast_tier else cfg.default_ttft_ms


def _low_effort(m: Model, p: Provider, cfg: RouterConfig) -> _LowEffort | None:
    effort, fv = m.low_effort, m.fast_variant
    if effort is None or fv is None or fv.aa_index is None:
        return None
    speed = fv.output_tokens_per_s or m.output_tokens_per_s or cfg.default_output_tokens_per_s
    return _LowEffort(effort, -fv.aa_index, _prior_ttft(fv.p50_ttft_ms, p, cfg), 1000.0 / speed)


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
            speed = m.output_tokens_per_s or cfg.default_output_tokens_per_s
            aa = m.aa_index if m.aa_index is not None else _NO_INDEX
            rows.append((-aa, m.slug, m, p, m.input_usd_per_mtok, m.output_usd_per_mtok,
                         _prior_ttft(m.p50_ttft_ms, p, cfg), 1000.0 / speed, _low_effort(m, p, cfg)))
        catalog.derived[key] = rows
    return rows


def _evaluate_rows(rows: Sequence[_StaticRow], req: RouteRequest, stats: RoutingStats,
                   cfg: RouterConfig) -> list[Candidate]:
    """Expected output tokens, estimated cost and expected latency of each model for this request.

    Expected output = learned ratio (or the default) x input tokens, at least 1, capped by
    max_tokens. Cost = input x input price + expected output x output price. Latency = the
    observed median when there is one, else first-token time + expected output / speed;
    for the caller's own reasoning effort, as learned for that effort, and from the fast
    variant's figures when it is the effort that selects that variant.
    """
    n = req.input_tokens
    cap_out = req.output_cap
    default_ratio = cfg.default_ratio
    ratio_of = stats.output_ratios.get
    latency_of = stats.latency_ms.get
    effort = req.reasoning_effort
    out_list: list[Candidate] = []
    append = out_list.append
    for neg_aa, slug, m, p, inp, outp, ttft, ms_per_token, low in rows:
        out = round(n * ratio_of(slug, default_ratio)) or 1
        if cap_out and out > cap_out:
            out = cap_out
        if inp is None or outp is None:
            cost, cost_key = None, _INF
        else:
            cost = cost_key = (n * inp + out * outp) / 1_000_000
        if effort is None:
            latency = latency_of(slug)
        else:
            latency = latency_of(latency_key(slug, effort))
            if low is not None and low.effort == effort:
                ttft, ms_per_token = low.ttft_ms, low.ms_per_token
        seen = latency is not None
        if latency is None:
            latency = ttft + out * ms_per_token
        append(_new_tuple(Candidate, (neg_aa, cost_key, slug, m, p, out, cost, latency, seen, None)))
    return out_list


def _at_low_effort(c: Candidate, low: _LowEffort, stats: RoutingStats) -> Candidate:
    """`c` called at its documented low effort: the fast variant's aa and latency."""
    latency = stats.latency_ms.get(latency_key(c.slug, low.effort))
    seen = latency is not None
    if latency is None:
        latency = low.ttft_ms + c.expected_output_tokens * low.ms_per_token
    return c._replace(neg_aa=low.neg_aa, expected_latency_ms=latency, latency_observed=seen,
                      reasoning_effort=low.effort)


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

    if req.latency_budget_ms is None:
        ranked = _prefer(s, policy, cfg.preferred_quality_margin)
        latency_note: str | None = None
        steps.append({"step": "latency", "survivors": len(s), "top": top(s), "note": "no latency budget"})
    else:
        ranked, latency_note, met = _within_latency_budget(s, req, stats, policy, cfg)
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


def _latency_options(s: Sequence[Candidate], req: RouteRequest, stats: RoutingStats,
                     cfg: RouterConfig) -> list[Candidate]:
    """Every way to call the survivors: as asked, and, when the caller set no effort, each
    reasoning model at its documented low effort as well."""
    options = list(s)
    if req.reasoning_effort is None:
        for c in s:
            low = _low_effort(c.model, c.provider, cfg)
            if low is not None:
                options.append(_at_low_effort(c, low, stats))
    return options


def _one_per_model(options: Sequence[Candidate]) -> list[Candidate]:
    """Keep each model's first (best-ranked) way of calling it: the fallback order names a model once."""
    seen: set[str] = set()
    out = []
    for c in options:
        if c.slug not in seen:
            seen.add(c.slug)
            out.append(c)
    return out


def _within_latency_budget(s: Sequence[Candidate], req: RouteRequest, stats: RoutingStats, policy: TenantPolicy,
                           cfg: RouterConfig) -> tuple[list[Candidate], str, bool]:
    """(ranked candidates, the note for the log, whether the budget is met).

    Keep the options expected to fit the budget; the best of them by rank is the pick the
    quality cap is measured against; fast-tier options no more than the cap below it come
    first. When none fits, the fastest option first (ties to the higher aa_index).
    """
    assert req.latency_budget_ms is not None
    budget = req.latency_budget_ms
    options = _latency_options(s, req, stats, cfg)
    fits = sorted(c for c in options if c.expected_latency_ms <= budget)
    margin = cfg.preferred_quality_margin
    if not fits:
        fastest = sorted(options, key=lambda c: (c.expected_latency_ms, c.neg_aa, c.cost_key, c.slug))
        ranked = _one_per_model(fastest)
        first = ranked[0]
        note = (f"no model is expected to answer within {budget:g} ms; the fastest is {_call(first)} at "
                f"{first.expected_latency_ms:.0f} ms")
        return ranked, note, False
    best = fits[0]
    floor = best.aa - cfg.latency_quality_cap
    fast = [c for c in fits if c.provider.fast_tier and c.aa >= floor]
    if fast:
        fast_ids = {id(c) for c in fast}
        ranked = _prefer(fast, policy, margin) + _prefer([c for c in fits if id(c) not in fast_ids], policy, margin)
        tier = f"fast tier first (its best is within {cfg.latency_quality_cap:g} aa points)"
    else:
        ranked = _prefer(fits, policy, margin)
        tier = ("no fast-tier model fits" if not any(c.provider.fast_tier for c in fits) else
                f"the fast tier's best is more than {cfg.latency_quality_cap:g} aa points below it")
    ranked = _one_per_model(ranked)
    note = (f"{len(fits)} ways to call {len(ranked)} models fit {budget:g} ms; the best of them is "
            f"{_call(best)} (aa_index {best.aa_index}); {tier}")
    return ranked, note, True


def _call(c: Candidate) -> str:
    return c.slug if c.reasoning_effort is None else f"{c.slug} at reasoning_effort {c.reasoning_effort}"


def _reason(chosen: Candidate, ranked: Sequence[Candidate], policy: TenantPolicy, cap: float,
            req: RouteRequest, latency_note: str | None) -> str:
    parts = [f"{_call(chosen)} (aa_index {chosen.aa_index}) is first of {len(ranked)} candidates "
             f"within the ${cap:g} per-call budget"]
    if chosen.provider.name in policy.preferred_providers:
        parts.append(f"its provider {chosen.provider.name} is preferred by the tenant")
    if req.latency_budget_ms is not None and latency_note:
        parts.append(latency_note)
    if len(parts) == 1:
        parts.append("highest aa_index wins, ties go to the cheaper, then the slug")
    return "; ".join(parts)

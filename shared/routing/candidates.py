"""What the router knows of each model for one request: the request's routing facts, the
learned statistics, and each model evaluated as a candidate (expected output, cost, latency).

Pure and cheap: per-model facts that do not depend on the request are computed once per
catalog snapshot (`Catalog.derived`); evaluating 130 models for a request is one loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from shared.catalog.types import Catalog, Model, Provider
from shared.routing.policy import TenantPolicy

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
    needs: frozenset[str] = frozenset()  # features without which the answer would differ (n > 1, logprobs, audio)
    # The most this call may cost at worst (input + max_tokens at catalog prices): the tightest of
    # the tenant's and the key's per-call caps and what their daily and monthly budgets have left.
    spend_cap_usd: float | None = None
    spend_cap_source: str | None = None


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


def cost_text(v: float | None) -> str | None:
    """Costs go into logs (and audit payloads) as decimal strings: no float formatting drift."""
    return None if v is None else format(round(v, 10), ".10f").rstrip("0").rstrip(".") or "0"


_new_tuple = tuple.__new__
_INF = float("inf")

class LowEffort(NamedTuple):
    """A model's fast variant as the router prices it: the effort to send, its aa and latency prior."""

    effort: str
    neg_aa: float
    ttft_ms: float
    ms_per_token: float


# (neg aa, slug, model, provider, input price, output price, prior ttft ms, ms per output token, low effort)
_StaticRow = tuple[float, str, Model, Provider, float | None, float | None, float, float, LowEffort | None]


def _prior_ttft(ttft_ms: int | None, provider: Provider, cfg: RouterConfig) -> float:
    if ttft_ms is not None:
        return float(ttft_ms)
    return cfg.fast_tier_ttft_ms if provider.fast_tier else cfg.default_ttft_ms


def _low_effort(m: Model, p: Provider, cfg: RouterConfig) -> LowEffort | None:
    effort, fv = m.low_effort, m.fast_variant
    if effort is None or fv is None or fv.aa_index is None:
        return None
    speed = fv.output_tokens_per_s or m.output_tokens_per_s or cfg.default_output_tokens_per_s
    return LowEffort(effort, -fv.aa_index, _prior_ttft(fv.p50_ttft_ms, p, cfg), 1000.0 / speed)


def _derived_key(cfg: RouterConfig) -> str:
    """Where this config's per-model table is kept in a catalog snapshot (it depends on the priors)."""
    return f"router:{cfg.default_ttft_ms}:{cfg.fast_tier_ttft_ms}:{cfg.default_output_tokens_per_s}"


def static_rows(catalog: Catalog, cfg: RouterConfig) -> list[_StaticRow]:
    """Per-model facts that do not depend on the request, computed once per catalog snapshot."""
    key = _derived_key(cfg)
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
        catalog.derived[key + ":low"] = {row[1]: row[8] for row in rows if row[8] is not None}
    return rows


def low_efforts(catalog: Catalog, cfg: RouterConfig) -> dict[str, LowEffort]:
    """Per slug, its documented low effort (computed with the static rows, once per snapshot)."""
    static_rows(catalog, cfg)
    lows: dict[str, LowEffort] = catalog.derived[_derived_key(cfg) + ":low"]
    return lows


def evaluate_rows(rows: Sequence[_StaticRow], req: RouteRequest, stats: RoutingStats,
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


def at_low_effort(c: Candidate, low: LowEffort, stats: RoutingStats) -> Candidate:
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
    return evaluate_rows(static_rows(single, cfg), req, stats, cfg)[0]


def prefer(cands: list[Candidate], policy: TenantPolicy, margin: float) -> list[Candidate]:
    """Preferred providers first among candidates within `margin` aa points of the best; else unchanged."""
    if not policy.preferred_providers or not cands:
        return cands
    floor = cands[0].aa - margin
    pref = [c for c in cands if c.aa >= floor and c.provider.name in policy.preferred_providers]
    if not pref:
        return cands
    chosen = {id(c) for c in pref}
    return pref + [c for c in cands if id(c) not in chosen]

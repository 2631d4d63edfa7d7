"""The latency step of ainfera-auto: a latency budget is a constraint the caller set.

The ways to call each survivor (as asked, and a reasoning model at its documented low
effort when the caller set none), kept when expected to fit the budget; the best of them
is the pick the quality cap is measured against; the fast tier leads when its best is
within the cap. When nothing fits, the fastest way first, and the log says so. The rule,
with a worked example on the seeded catalog, is in docs/decisions.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.routing.candidates import (
    Candidate,
    LowEffort,
    RouterConfig,
    RouteRequest,
    RoutingStats,
    at_low_effort,
    prefer,
)
from shared.routing.policy import TenantPolicy


def _latency_options(s: Sequence[Candidate], req: RouteRequest, stats: RoutingStats,
                     lows: Mapping[str, LowEffort]) -> list[Candidate]:
    """Every way to call the survivors: as asked, and, when the caller set no effort, each
    reasoning model at its documented low effort as well."""
    options = list(s)
    if req.reasoning_effort is None:
        for c in s:
            low = lows.get(c.slug)
            if low is not None:
                options.append(at_low_effort(c, low, stats))
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


def within_latency_budget(s: Sequence[Candidate], req: RouteRequest, stats: RoutingStats, policy: TenantPolicy,
                           cfg: RouterConfig, lows: Mapping[str, LowEffort]) -> tuple[list[Candidate], str, bool]:
    """(ranked candidates, the note for the log, whether the budget is met).

    Keep the options expected to fit the budget; the best of them by rank is the pick the
    quality cap is measured against; fast-tier options no more than the cap below it come
    first. When none fits, the fastest option first (ties to the higher aa_index).
    """
    assert req.latency_budget_ms is not None
    budget = req.latency_budget_ms
    options = _latency_options(s, req, stats, lows)
    fits = sorted(c for c in options if c.expected_latency_ms <= budget)
    margin = cfg.preferred_quality_margin
    if not fits:
        fastest = sorted(options, key=lambda c: (c.expected_latency_ms, c.neg_aa, c.cost_key, c.slug))
        ranked = _one_per_model(fastest)
        first = ranked[0]
        note = (f"no model is expected to answer within {budget:g} ms; the fastest is {call_text(first)} at "
                f"{first.expected_latency_ms:.0f} ms")
        return ranked, note, False
    best = fits[0]
    floor = best.aa - cfg.latency_quality_cap
    fast = [c for c in fits if c.provider.fast_tier and c.aa >= floor]
    if fast:
        fast_ids = {id(c) for c in fast}
        ranked = prefer(fast, policy, margin) + prefer([c for c in fits if id(c) not in fast_ids], policy, margin)
        tier = f"fast tier first (its best is within {cfg.latency_quality_cap:g} aa points)"
    else:
        ranked = prefer(fits, policy, margin)
        tier = ("no fast-tier model fits" if not any(c.provider.fast_tier for c in fits) else
                f"the fast tier's best is more than {cfg.latency_quality_cap:g} aa points below it")
    ranked = _one_per_model(ranked)
    note = (f"{len(fits)} ways to call {len(ranked)} models fit {budget:g} ms; the best of them is "
            f"{call_text(best)} (aa_index {best.aa_index}); {tier}")
    return ranked, note, True


def call_text(c: Candidate) -> str:
    return c.slug if c.reasoning_effort is None else f"{c.slug} at reasoning_effort {c.reasoning_effort}"

"""Properties of ainfera-auto over the seeded catalog and many random requests, policies and statistics."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.catalog.seed import load_seed
from shared.catalog.types import Catalog
from shared.errors import NoEligibleModel
from shared.routing.policy import TenantPolicy
from shared.routing.router import RouteRequest, RoutingStats, route
from shared.routing.stacks import STACK_HINTS, stack_allows


@cache
def seeded() -> Catalog:
    rows = load_seed()
    return Catalog(providers={p.name: p for p in rows.providers}, models={m.slug: m for m, _ in rows.models})


PROVIDERS = sorted(p.name for p in load_seed().providers)
SLUGS = sorted(m.slug for m, _ in load_seed().models)

requests = st.builds(
    RouteRequest,
    input_tokens=st.integers(1, 200_000),
    output_cap=st.none() | st.integers(1, 100_000),
    needs_tools=st.booleans(),
    needs_vision=st.booleans(),
    max_cost_usd=st.none() | st.floats(1e-6, 5.0),
    stack=st.none() | st.sampled_from(STACK_HINTS),
    latency_budget_ms=st.none() | st.floats(50, 60_000),
)


@st.composite
def policies(draw: st.DrawFn) -> TenantPolicy:
    banned = draw(st.sets(st.sampled_from(PROVIDERS), max_size=12))
    preferred = draw(st.sets(st.sampled_from([p for p in PROVIDERS if p not in banned] or PROVIDERS), max_size=3))
    return TenantPolicy(
        banned_providers=frozenset(banned),
        preferred_providers=frozenset(preferred - banned),
        banned_slugs=frozenset(draw(st.sets(st.sampled_from(SLUGS), max_size=30))),
        max_cost_per_call_usd=draw(st.none() | st.floats(1e-5, 2.0)),
    )


stats_snapshots = st.builds(
    RoutingStats,
    output_ratios=st.dictionaries(st.sampled_from(SLUGS), st.floats(0.01, 10.0), max_size=20),
    latency_ms=st.dictionaries(st.sampled_from(SLUGS), st.floats(10, 100_000), max_size=20),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests, policies(), stats_snapshots)
def test_banned_providers_and_slugs_are_never_a_candidate_or_fallback(req, policy, stats):
    try:
        decision = route(req, seeded(), policy=policy, stats=stats)
    except NoEligibleModel:
        return
    for c in decision.ranked:  # the chosen model and every fallback
        assert c.provider.name not in policy.banned_providers
        assert c.model.slug not in policy.banned_slugs


@settings(max_examples=300, deadline=None)
@given(requests, stats_snapshots)
def test_stack_hints_keep_to_their_stack(req, stats):
    try:
        decision = route(req, seeded(), stats=stats)
    except NoEligibleModel:
        return
    stacks = {c.provider.stack.value for c in decision.ranked}
    if req.stack == "avoid-china":
        assert "china" not in stacks
    elif req.stack is not None:
        assert stacks == {req.stack}


# The providers the stack rule puts under Chinese jurisdiction (tests/unit/test_stack_tags.py pins them).
CHINA_STACK = frozenset(p.name for p in load_seed().providers if p.stack.value == "china")


def _ranked_slugs(req: RouteRequest, policy: TenantPolicy, stats: RoutingStats) -> set[str]:
    try:
        return {c.model.slug for c in route(req, seeded(), policy=policy, stats=stats).ranked}
    except NoEligibleModel:
        return set()


@settings(max_examples=300, deadline=None)
@given(requests, policies(), stats_snapshots, st.sampled_from(STACK_HINTS))
def test_a_stack_hint_keeps_exactly_the_candidates_its_stacks_allow(req, policy, stats, hint):
    """Without a latency budget a stack hint is a pure filter: the hinted candidates are the unhinted ones
    whose provider `stack_allows` admits, the function `GET /v1/models?stack=` filters with."""
    base = replace(req, stack=None, latency_budget_ms=None)
    everything = {s: seeded().provider_of(seeded().models[s]) for s in _ranked_slugs(base, policy, stats)}
    expected = {s for s, p in everything.items() if stack_allows(p.stack, hint)}
    assert _ranked_slugs(replace(base, stack=hint), policy, stats) == expected


@settings(max_examples=200, deadline=None)
@given(requests, policies(), stats_snapshots)
def test_the_four_stacks_partition_the_candidates_and_avoid_china_is_the_other_three(req, policy, stats):
    base = replace(req, stack=None, latency_budget_ms=None)
    by_stack = {s: _ranked_slugs(replace(base, stack=s), policy, stats) for s in ("us", "eu", "china", "sea")}
    assert sum(len(v) for v in by_stack.values()) == len(set().union(*by_stack.values()))
    assert set().union(*by_stack.values()) == _ranked_slugs(base, policy, stats)
    avoid = _ranked_slugs(replace(base, stack="avoid-china"), policy, stats)
    assert avoid == by_stack["us"] | by_stack["eu"] | by_stack["sea"]


@settings(max_examples=300, deadline=None)
@given(requests, policies(), stats_snapshots)
def test_avoid_china_never_ranks_a_china_stack_provider(req, policy, stats):
    assert {"deepseek", "moonshot", "alibaba", "novita", "byteplus"} <= CHINA_STACK
    try:
        decision = route(replace(req, stack="avoid-china"), seeded(), policy=policy, stats=stats)
    except NoEligibleModel:
        return
    assert not {c.provider.name for c in decision.ranked} & CHINA_STACK  # chosen and every fallback


def v1_0_pick(input_tokens: int, output_cap: int | None, cap: float) -> str | None:
    """ainfera-auto/1.0 written out plainly: highest aa_index within the cap, then cheaper, then slug."""
    best = None
    for m in seeded().models.values():
        if not m.active or m.input_usd_per_mtok is None or m.output_usd_per_mtok is None:
            continue
        out = max(1, round(input_tokens * 0.5))
        if output_cap:
            out = min(out, output_cap)
        cost = (input_tokens * m.input_usd_per_mtok + out * m.output_usd_per_mtok) / 1_000_000
        if cost > cap:
            continue
        key = (-(m.aa_index if m.aa_index is not None else -1.0), cost, m.slug)
        if best is None or key < best[0]:
            best = (key, m.slug)
    return best[1] if best else None


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 6_000), st.none() | st.integers(1, 2_000), st.none() | st.floats(1e-5, 1.0))
def test_without_hints_or_preferences_the_pick_is_v1_0s(input_tokens, output_cap, cap):
    # Requests every seeded model can serve (the smallest priced context window is 16,384 tokens).
    req = RouteRequest(input_tokens=input_tokens, output_cap=output_cap, max_cost_usd=cap)
    expected = v1_0_pick(input_tokens, output_cap, cap if cap is not None else 0.10)
    try:
        got = route(req, seeded()).chosen.model.slug
    except NoEligibleModel:
        got = None
    assert got == expected


def _ways_to_call(c, req, stats):
    """(aa, expected latency, fast tier) of each way to call candidate `c`: as asked, and at its
    documented low effort when the caller set none (the fast variant's figures, else the priors)."""
    ways = [(c.aa, c.expected_latency_ms, c.provider.fast_tier)]
    m, fv = c.model, c.model.fast_variant
    if req.reasoning_effort is None and fv is not None and fv.reasoning_effort and fv.aa_index is not None:
        ttft = fv.p50_ttft_ms if fv.p50_ttft_ms is not None else (200.0 if c.provider.fast_tier else 1000.0)
        speed = fv.output_tokens_per_s or m.output_tokens_per_s or 50.0
        latency = stats.latency_ms.get(f"{m.slug}~{fv.reasoning_effort}")
        if latency is None:
            latency = ttft + c.expected_output_tokens * 1000.0 / speed
        ways.append((fv.aa_index, latency, c.provider.fast_tier))
    return ways


@settings(max_examples=400, deadline=None)
@given(requests, policies(), stats_snapshots, st.floats(50, 5_000))
def test_a_latency_budget_is_honoured_and_the_fast_tier_leads_within_the_cap(req, policy, stats, budget):
    from dataclasses import replace

    from shared.routing.router import RouterConfig

    try:
        without = route(replace(req, latency_budget_ms=None), seeded(), policy=policy, stats=stats)
    except NoEligibleModel:
        return
    ways = [w for c in without.ranked for w in _ways_to_call(c, req, stats)]
    fits = [w for w in ways if w[1] <= budget]
    decision = route(replace(req, latency_budget_ms=budget), seeded(), policy=policy, stats=stats)
    chosen = decision.chosen
    if not fits:
        assert decision.log["latency_budget_met"] is False
        assert chosen.expected_latency_ms == pytest.approx(min(w[1] for w in ways))
        return
    assert decision.log["latency_budget_met"] is True
    assert chosen.expected_latency_ms <= budget
    assert all(c.expected_latency_ms <= budget for c in decision.ranked)
    floor = max(w[0] for w in fits) - RouterConfig().latency_quality_cap
    if any(fast and aa >= floor for aa, _, fast in fits):
        assert chosen.provider.fast_tier and chosen.aa >= floor
    else:
        assert chosen.aa >= max(w[0] for w in fits) - RouterConfig().preferred_quality_margin


@settings(max_examples=200, deadline=None)
@given(requests, policies(), stats_snapshots, st.sampled_from(["minimal", "low", "medium", "high"]))
def test_the_callers_reasoning_effort_is_never_overridden(req, policy, stats, effort):
    from dataclasses import replace

    try:
        decision = route(replace(req, reasoning_effort=effort), seeded(), policy=policy, stats=stats)
    except NoEligibleModel:
        return
    assert all(c.reasoning_effort is None for c in decision.ranked)

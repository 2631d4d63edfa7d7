"""ainfera-auto v1.1: capability, policy, stack, budget and latency steps, preferences, the log."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.catalog.types import Catalog, FastVariant
from shared.errors import NoEligibleModel
from shared.routing.policy import TenantPolicy
from shared.routing.router import RouterConfig, RouteRequest, RoutingStats, route
from tests.fixtures.catalogs import model, routing_catalog

CAT = routing_catalog()


def decide(**kw):
    policy = kw.pop("policy", None)
    stats = kw.pop("stats", None)
    config = kw.pop("config", None)
    return route(RouteRequest(**{"input_tokens": 200, **kw}), CAT, policy=policy, stats=stats, config=config)


def slugs(decision) -> list[str]:
    return [c.model.slug for c in decision.ranked]


def step(decision, name: str) -> dict:
    return next(s for s in decision.log["steps"] if s["step"] == name)


def test_without_hints_the_best_affordable_model_wins():
    # tiny-context@alpha (58) fits a 200-token request; frontier@alpha (60) is best.
    assert decide().chosen.model.slug == "frontier@alpha"


@pytest.mark.parametrize(
    ("stack", "allowed"),
    [("china", {"gamma"}), ("eu", {"beta"}), ("sea", {"sigma"}), ("us", {"alpha", "delta", "zeta"}),
     ("avoid-china", {"alpha", "beta", "delta", "zeta", "sigma"})],
)
def test_stack_hint_keeps_only_that_stack(stack, allowed):
    d = decide(stack=stack)
    assert {c.provider.name for c in d.ranked} <= allowed
    assert step(d, "stack")["survivors"] == len(d.ranked)


def test_a_stack_emptied_by_the_budget_names_the_budget_step():
    with pytest.raises(NoEligibleModel, match="budget step") as e:
        decide(stack="china", max_cost_usd=1e-7)
    assert e.value.param == "routing_hint.max_cost_usd"


def test_a_stack_with_no_capable_model_names_the_stack_step():
    with pytest.raises(NoEligibleModel, match="stack step") as e:
        decide(stack="sea", needs_vision=True, max_cost_usd=1.0)  # eyes@beta is eu
    assert "capability" not in str(e.value) and e.value.param == "routing_hint.stack"


def test_tools_vision_context_and_output_limits_are_capabilities():
    assert "notools@alpha" not in slugs(decide(needs_tools=True))
    assert slugs(decide(needs_vision=True)) == ["eyes@beta"]
    assert "tiny-context@alpha" not in slugs(decide(input_tokens=4_000, output_cap=500))
    assert "tiny-context@alpha" not in slugs(decide(output_cap=2_000))
    assert "tiny-context@alpha" in slugs(decide(input_tokens=3_000, output_cap=1_000, max_cost_usd=1.0))


def test_banned_providers_and_slugs_are_never_candidates():
    d = decide(policy=TenantPolicy(banned_providers=frozenset({"alpha"}), banned_slugs=frozenset({"strong@gamma"})))
    assert all(c.provider.name != "alpha" for c in d.ranked)
    assert "strong@gamma" not in slugs(d)
    assert d.chosen.model.slug == "strong@beta"


def test_a_policy_that_bans_everything_names_the_policy_step():
    everyone = frozenset({"alpha", "beta", "gamma", "delta", "sigma", "zeta"})
    with pytest.raises(NoEligibleModel, match="policy step"):
        decide(policy=TenantPolicy(banned_providers=everyone))


def test_preferred_provider_wins_among_near_equals_only():
    # strong@beta and strong@gamma tie on aa 50; gamma is cheaper, beta is preferred.
    near = decide(max_cost_usd=0.002, needs_tools=True,
                  policy=TenantPolicy(preferred_providers=frozenset({"beta"})))
    assert near.chosen.model.slug == "strong@beta"
    assert "preferred" in near.log["reason"]
    # zeta (30) is 20 points below the best: preference does not buy that much quality loss.
    far = decide(max_cost_usd=0.002, needs_tools=True,
                 policy=TenantPolicy(preferred_providers=frozenset({"zeta"})))
    assert far.chosen.model.slug == "strong@gamma"


def test_latency_budget_prefers_a_qualifying_fast_tier_model():
    # Unconstrained pick under this cap is strong@gamma (50); quick@delta (45, fast, ~200 ms) qualifies.
    d = decide(max_cost_usd=0.002, needs_tools=True, latency_budget_ms=500)
    assert d.chosen.model.slug == "quick@delta" and d.chosen.provider.fast_tier
    assert "fast tier first" in step(d, "latency")["note"]


def test_a_latency_budget_keeps_only_models_expected_to_fit():
    # frontier@alpha (60) is expected to take ~24 s; quick@delta (45, fast tier) ~400 ms.
    d = decide(latency_budget_ms=500)
    assert d.chosen.model.slug == "quick@delta"
    assert all(c.expected_latency_ms <= 500 for c in d.ranked)
    assert d.log["latency_budget_met"] is True and d.log["expected_latency_ms"] == 400


def test_the_quality_cap_is_measured_against_the_best_model_that_fits():
    # Within 1000 ms: notools@alpha (55, ~633 ms) is the best; quick@delta (45, fast) is 10 below it.
    d = decide(latency_budget_ms=1_000, config=RouterConfig(latency_quality_cap=10))
    assert d.chosen.model.slug == "quick@delta"
    assert "fast tier first" in step(d, "latency")["note"] and "notools@alpha" in step(d, "latency")["note"]
    strict = decide(latency_budget_ms=1_000, config=RouterConfig(latency_quality_cap=5))
    assert strict.chosen.model.slug == "notools@alpha"
    assert slugs(strict)[1] == "quick@delta"  # the fast tier still serves as the next fallback by rank


def test_when_nothing_fits_the_fastest_is_chosen_and_the_log_says_so():
    d = decide(latency_budget_ms=100)
    assert d.chosen.model.slug == "quicker@zeta"  # 200 ms prior + 100 tokens at 1000/s
    assert d.log["latency_budget_met"] is False and d.log["expected_latency_ms"] == 300
    assert "no model is expected to answer within 100 ms" in step(d, "latency")["note"]
    latencies = [c.expected_latency_ms for c in d.ranked]
    assert latencies == sorted(latencies)


def _with_thinker(fast_aa: float = 57.0) -> Catalog:
    """The routing catalog plus a slow reasoning model whose low effort is documented and fast."""
    thinker = model("thinker@alpha", 70.0, 1.0, 4.0, p50_ttft_ms=60_000, output_tokens_per_s=50.0,
                    fast_variant=FastVariant(aa_index=fast_aa, p50_ttft_ms=300, output_tokens_per_s=300.0,
                                             reasoning_effort="low"))
    return replace(CAT, models={**CAT.models, thinker.slug: thinker}, derived={})


def test_a_budget_may_keep_a_reasoning_model_at_its_low_effort():
    cat = _with_thinker()
    d = route(RouteRequest(input_tokens=200, latency_budget_ms=2_000), cat)
    assert (d.chosen.model.slug, d.chosen.reasoning_effort) == ("thinker@alpha", "low")
    assert d.chosen.aa_index == 57.0 and d.chosen.expected_latency_ms == pytest.approx(300 + 100 / 300 * 1000)
    assert d.log["reasoning_effort"] == "low"
    assert "thinker@alpha at reasoning_effort low" in d.log["reason"]
    assert step(d, "latency")["top"][0]["reasoning_effort"] == "low"
    # each model once in the fallback order
    assert len(slugs(d)) == len(set(slugs(d)))


def test_low_effort_is_never_used_without_a_budget_or_against_the_callers_effort():
    cat = _with_thinker()
    plain = route(RouteRequest(input_tokens=200), cat)
    assert (plain.chosen.model.slug, plain.chosen.reasoning_effort) == ("thinker@alpha", None)
    own = route(RouteRequest(input_tokens=200, latency_budget_ms=2_000, reasoning_effort="high"), cat)
    assert all(c.reasoning_effort is None for c in own.ranked)
    assert "thinker@alpha" not in slugs(own)  # at its own effort it takes a minute


def test_the_callers_low_effort_is_priced_at_the_fast_variant():
    cat = _with_thinker()
    d = route(RouteRequest(input_tokens=200, latency_budget_ms=2_000, reasoning_effort="low"), cat)
    assert d.chosen.model.slug == "thinker@alpha" and d.chosen.reasoning_effort is None  # sent as the caller set it


def test_learned_low_effort_latency_replaces_its_prior():
    cat = _with_thinker()
    stats = RoutingStats(latency_ms={"thinker@alpha~low": 5_000.0})
    d = route(RouteRequest(input_tokens=200, latency_budget_ms=2_000), cat, stats=stats)
    assert d.chosen.model.slug != "thinker@alpha"


def test_observed_latency_replaces_the_prior():
    stats = RoutingStats(latency_ms={"quick@delta": 5_000.0, "local@sigma": 120.0})
    d = decide(max_cost_usd=0.002, needs_tools=True, latency_budget_ms=500, stats=stats,
               config=RouterConfig(latency_quality_cap=3))
    # delta is fast tier but observed slow; sigma (35) is observed fast, its prior is 900 ms;
    # zeta (30, fast tier) fits too but is more than 3 points below sigma.
    assert d.chosen.model.slug == "local@sigma"
    assert "quick@delta" not in slugs(d)
    top = {t["slug"]: t["expected_latency_ms"] for t in step(d, "budget")["top"]}
    assert top.get("quick@delta", 5_000) == 5_000


def test_learned_output_ratio_changes_the_cost_estimate():
    base = decide(input_tokens=1_000)
    assert base.chosen.expected_output_tokens == 500
    wordy = decide(input_tokens=1_000, stats=RoutingStats(output_ratios={"frontier@alpha": 4.0}))
    # 1000 x 10e-6 + 4000 x 40e-6 = 0.17 > 0.10: frontier no longer fits the default cap.
    assert wordy.chosen.model.slug != "frontier@alpha"
    assert decide(input_tokens=1_000, output_cap=100).chosen.expected_output_tokens == 100


def test_decision_log_names_ruleset_steps_choice_and_reason():
    d = decide(stack="avoid-china", latency_budget_ms=2_000, max_cost_usd=0.05)
    log = d.log
    assert log["ruleset"] == "ainfera-auto/1.5"
    assert log["request"]["stack"] == "avoid-china" and log["request"]["latency_budget_ms"] == 2_000
    assert [s["step"] for s in log["steps"]] == [
        "active", "capability", "policy", "stack", "budget", "latency", "rank"]
    assert all(len(s["top"]) <= 3 for s in log["steps"])
    assert log["chosen"] == d.chosen.model.slug and log["reason"]

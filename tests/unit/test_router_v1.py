"""ainfera-auto v1.0's picks, pinned on a fixed catalog: without hints or preferences, every later
ruleset must pick exactly these."""

import random

import pytest

from shared.catalog.types import Catalog
from shared.errors import NoEligibleModel
from shared.routing.policy import TenantPolicy
from shared.routing.router import RouteRequest, route
from tests.fixtures.catalogs import golden_v1_catalog


def pick(req: RouteRequest, **kw) -> str:
    return route(req, golden_v1_catalog(), **kw).chosen.model.slug


# (input tokens, max_tokens, request cap, tenant cap) -> expected slug
GOLDEN = [
    ((1_000, None, None, None), "frontier@alpha"),       # 0.01 + 500*40e-6 = 0.03 <= 0.10
    ((3_000, None, None, None), "frontier@alpha"),       # 0.03 + 0.06 = 0.09 still fits
    ((2_000, None, None, None), "frontier@alpha"),       # 0.02 + 0.04 = 0.06
    ((1_000, None, 0.01, None), "strong@gamma"),         # request cap drops frontier (0.03)
    ((1_000, None, None, 0.01), "strong@gamma"),         # tenant cap applies when the request has none
    # v1.0 let a request's cap raise the tenant's; since 1.5 a cap only tightens (spend governance):
    ((1_000, None, 0.05, 0.0011), "twin-a@delta"),       # the tenant's tighter cap wins over a looser hint
    ((1_000, None, 0.0011, 0.05), "twin-a@delta"),       # a tighter hint wins over the tenant's
    ((1_000, 10, None, None), "frontier@alpha"),         # max_tokens caps the expected output
    ((1_000, None, 0.0011, None), "twin-a@delta"),       # only the cheap twins fit; slug breaks the tie
    ((100_000, None, None, None), "twin-a@delta"),       # 0.05 + 0.05 = 0.10 fits exactly
]


@pytest.mark.parametrize(("args", "expected"), GOLDEN)
def test_router_v1_golden_picks(args, expected):
    tokens, max_tokens, req_cap, tenant_cap = args
    req = RouteRequest(input_tokens=tokens, output_cap=max_tokens, max_cost_usd=req_cap)
    assert pick(req, policy=TenantPolicy(max_cost_per_call_usd=tenant_cap)) == expected


def test_router_prefers_the_cheaper_of_equal_quality():
    # 3,000 tokens: frontier costs 0.03 + 0.06 = 0.09 (fits), so it still wins; at 4,000 it does not.
    assert pick(RouteRequest(input_tokens=4_000)) == "strong@gamma"


def test_router_skips_inactive_models_and_models_of_inactive_providers():
    decision = route(RouteRequest(input_tokens=10), golden_v1_catalog())
    survivors = {c.model.slug for c in decision.ranked}
    assert "retired@alpha" not in survivors and "orphan@omega" not in survivors


def test_router_never_picks_unpriced_models():
    decision = route(RouteRequest(input_tokens=10), golden_v1_catalog())
    assert "free@delta" not in {c.model.slug for c in decision.ranked}


def test_router_only_uses_providers_it_can_call():
    decision = route(RouteRequest(input_tokens=10), golden_v1_catalog(), callable_providers=frozenset({"delta"}))
    assert decision.chosen.model.slug == "twin-a@delta"


def test_router_names_the_step_that_removed_the_last_candidates():
    with pytest.raises(NoEligibleModel, match="budget step removed the last 6 candidates"):
        route(RouteRequest(input_tokens=1_000, max_cost_usd=1e-9), golden_v1_catalog())
    with pytest.raises(NoEligibleModel, match="active step"):
        route(RouteRequest(input_tokens=10), golden_v1_catalog(), callable_providers=frozenset())


def test_decision_log_records_each_step_with_top_three():
    decision = route(RouteRequest(input_tokens=1_000, max_cost_usd=0.01), golden_v1_catalog())
    log = decision.log
    assert log["ruleset"] == "ainfera-auto/1.5"
    assert [s["step"] for s in log["steps"]] == [
        "active", "capability", "policy", "stack", "budget", "latency", "rank"]
    assert [s["survivors"] for s in log["steps"]] == [6, 6, 6, 6, 4, 4, 4]
    budget = next(s for s in log["steps"] if s["step"] == "budget")
    assert [t["slug"] for t in budget["top"]] == ["strong@gamma", "strong@beta", "twin-a@delta"]
    assert set(budget["top"][0]) == {"slug", "provider", "aa_index", "estimated_cost_usd", "expected_latency_ms"}
    assert log["chosen"] == "strong@gamma"
    assert log["max_cost_usd"] == "0.01" and log["max_cost_source"] == "routing_hint.max_cost_usd"
    assert all(isinstance(t["estimated_cost_usd"], str) for s in log["steps"] for t in s["top"])


def test_router_is_deterministic_whatever_the_catalog_order():
    base = golden_v1_catalog()
    items = list(base.models.items())
    for seed in range(5):
        random.Random(seed).shuffle(items)
        shuffled = Catalog(providers=base.providers, models=dict(items), version=1)
        d = route(RouteRequest(input_tokens=1_000, max_cost_usd=0.0011), shuffled)
        assert d.chosen.model.slug == "twin-a@delta"
        assert d.log == route(RouteRequest(input_tokens=1_000, max_cost_usd=0.0011), base).log

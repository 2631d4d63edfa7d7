"""Worst-case costs and the budgets that apply to one call."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import BudgetExceeded
from shared.routing.limits import Limits, RateLimits, tightest
from shared.routing.policy import TenantPolicy
from shared.routing.router import RouteRequest, route
from shared.spend.budgets import Budgets, check_per_call
from shared.spend.worst_case import worst_case_usd
from tests.fixtures.catalogs import golden_v1_catalog
from tests.fixtures.catalogs import model as fixture_model

MODEL = fixture_model("m@p", 50, 2.0, 10.0, max_output_tokens=16_000, context_window=128_000)


def test_the_worst_case_is_input_and_every_allowed_output_token_at_catalog_prices():
    assert worst_case_usd(MODEL, 1000, 500) == pytest.approx((1000 * 2.0 + 500 * 10.0) / 1e6)
    # Without max_tokens, all the model can produce.
    assert worst_case_usd(MODEL, 1000, None) == pytest.approx((1000 * 2.0 + 16_000 * 10.0) / 1e6)
    unpriced = fixture_model("u@p", 50, None, None)
    assert worst_case_usd(unpriced, 10, 10) is None


def test_without_an_output_limit_the_context_window_bounds_the_worst_case():
    open_ended = fixture_model("o@p", 50, 1.0, 1.0, max_output_tokens=None, context_window=8000)
    assert worst_case_usd(open_ended, 3000, None) == pytest.approx((3000 + 5000) / 1e6)


def test_the_tightest_per_call_cap_applies_and_names_its_source():
    budgets = Budgets.of(Limits(max_cost_per_call_usd=0.5, daily_budget_usd=10),
                         Limits(max_cost_per_call_usd=0.2, monthly_budget_usd=50))
    assert (budgets.per_call_usd, budgets.per_call_source) == (0.2, "key.max_cost_per_call_usd")
    assert [b.name for b in budgets.periodic] == ["tenant.daily_budget_usd", "key.monthly_budget_usd"]
    with pytest.raises(BudgetExceeded) as e:
        check_per_call(budgets, 0.3, "m@p")
    assert e.value.status == 402 and "key.max_cost_per_call_usd" in e.value.message
    check_per_call(budgets, 0.2, "m@p")
    assert not Budgets.of(Limits(), None).any


@given(st.lists(st.none() | st.floats(1e-6, 1e6), max_size=4))
def test_tightest_is_the_smallest_cap_set(caps):
    present = [c for c in caps if c is not None]
    assert tightest(*caps) == (min(present) if present else None)


def test_limits_survive_the_queue_as_json():
    limits = Limits(max_cost_per_call_usd=0.1, daily_budget_usd=3, rate_limits=RateLimits(requests_per_minute=60))
    assert Limits.from_json(limits.to_json()) == limits
    assert Limits.from_json(Limits().to_json()) == Limits()


@pytest.mark.parametrize(("hint", "policy_cap", "source"), [
    (5.0, 0.001, "spend_policy.max_cost_per_call_usd"),  # a looser hint does not raise the tenant's cap
    (0.0005, 0.001, "routing_hint.max_cost_usd"),  # a tighter one lowers it
    (0.0005, None, "routing_hint.max_cost_usd"),
])
def test_a_routing_hint_only_tightens_the_tenants_cap(hint, policy_cap, source):
    decision = route(RouteRequest(input_tokens=100, output_cap=100, max_cost_usd=hint), golden_v1_catalog(),
                     policy=TenantPolicy(max_cost_per_call_usd=policy_cap))
    assert decision.log["max_cost_source"] == source


def test_ainfera_auto_refuses_with_402_when_no_worst_case_fits_what_may_be_spent():
    with pytest.raises(BudgetExceeded):
        route(RouteRequest(input_tokens=100, output_cap=1000, spend_cap_usd=1e-9, spend_cap_source="test"),
              golden_v1_catalog())

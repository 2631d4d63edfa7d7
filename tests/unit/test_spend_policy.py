"""Spend policies are validated against the schema and the catalog when they are set."""

from __future__ import annotations

import pytest

from shared.errors import InvalidRequest, PermissionDenied
from shared.routing.policy import TenantPolicy, validate_policy
from tests.fixtures.catalogs import routing_catalog

CAT = routing_catalog()


def test_a_valid_policy_is_normalised_for_storage():
    stored = validate_policy({"banned_providers": ["gamma", "gamma", "beta"], "banned_slugs": ["quick@delta"],
                              "preferred_providers": ["zeta"], "max_cost_per_call_usd": 0.05}, CAT)
    assert stored == {"banned_providers": ["beta", "gamma"], "banned_slugs": ["quick@delta"],
                      "preferred_providers": ["zeta"], "max_cost_per_call_usd": 0.05}
    assert validate_policy({}, CAT) == {}


@pytest.mark.parametrize(
    ("doc", "param", "code"),
    [
        ({"banned_providers": ["gamma", "nosuch"]}, "banned_providers.1", "unknown_provider"),
        ({"preferred_providers": ["nosuch"]}, "preferred_providers.0", "unknown_provider"),
        ({"banned_slugs": ["ghost@alpha"]}, "banned_slugs.0", "unknown_model"),
        ({"banned_provider": ["gamma"]}, "banned_provider", "invalid_value"),
        ({"banned_providers": "gamma"}, "banned_providers", "invalid_value"),
        ({"max_cost_per_call_usd": -1}, "max_cost_per_call_usd", "invalid_value"),
        ({"max_cost_per_call_usd": "cheap"}, "max_cost_per_call_usd", "invalid_value"),
        ({"banned_providers": ["beta"], "preferred_providers": ["beta"]}, "preferred_providers", "conflicting_policy"),
    ],
)
def test_bad_policies_are_refused_with_the_field_named(doc, param, code):
    with pytest.raises(InvalidRequest) as e:
        validate_policy(doc, CAT)
    assert (e.value.param, e.value.code, e.value.status) == (param, code, 400)


def test_a_policy_must_be_an_object():
    with pytest.raises(InvalidRequest):
        validate_policy(["gamma"], CAT)


def test_an_explicitly_requested_banned_model_is_a_403():
    policy = TenantPolicy.from_json({"banned_providers": ["gamma"], "banned_slugs": ["quick@delta"]})
    with pytest.raises(PermissionDenied) as e:
        policy.check_pinned(CAT.models["strong@gamma"])
    assert e.value.status == 403 and e.value.code == "provider_banned_by_policy"
    with pytest.raises(PermissionDenied) as e:
        policy.check_pinned(CAT.models["quick@delta"])
    assert e.value.code == "model_banned_by_policy"
    policy.check_pinned(CAT.models["strong@beta"])

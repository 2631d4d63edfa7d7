"""A key's name, expiry and settings are validated when set, with the field named; a key's own
checks (expiry, allowed models, status) as the gateway applies them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.auth.key_access import KeyStatus, check_model_allowed, check_not_expired, key_status
from shared.auth.key_fields import parse_key_fields
from shared.auth.key_settings import KeySettings
from shared.errors import AuthenticationFailed, InvalidRequest, PermissionDenied
from tests.fixtures.catalogs import routing_catalog

CAT = routing_catalog()
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_valid_fields_are_normalised_for_storage():
    fields = parse_key_fields({"name": "  ci bot  ", "expires_at": "2026-07-01T00:00:00Z",
                               "settings": {"allowed_models": ["quick@delta", "ainfera-inference", "quick@delta"],
                                            "monthly_budget_usd": 20, "max_cost_per_call_usd": 0.5}}, CAT, NOW)
    assert fields.name == "ci bot" and fields.expires_at == datetime(2026, 7, 1, tzinfo=UTC)
    assert fields.settings == {"allowed_models": ["ainfera-auto", "quick@delta"], "monthly_budget_usd": 20,
                               "max_cost_per_call_usd": 0.5}
    assert fields.changes() == {"name": "ci bot", "expires_at": fields.expires_at, "settings": fields.settings}


def test_only_the_fields_given_change_and_null_clears_one():
    assert parse_key_fields(None, CAT, NOW).changes() == {}
    assert parse_key_fields({}, CAT, NOW).changes() == {}
    assert parse_key_fields({"name": None, "settings": None}, CAT, NOW).changes() == {"name": None, "settings": {}}
    offset = parse_key_fields({"expires_at": "2026-06-01T14:00:01+02:00"}, CAT, NOW)
    assert offset.changes() == {"expires_at": NOW + timedelta(seconds=1)}


@pytest.mark.parametrize(
    ("data", "param", "code"),
    [
        ({"name": "line\nbreak"}, "name", "invalid_value"),
        ({"name": "del\x7f"}, "name", "invalid_value"),
        ({"name": "   "}, "name", "invalid_value"),
        ({"name": "é" * 201}, "name", "invalid_value"),
        ({"expires_at": "2026-06-01T12:00:00Z"}, "expires_at", "invalid_value"),  # now is not the future
        ({"expires_at": "2026-07-01"}, "expires_at", "invalid_value"),
        ({"expires_at": "2026-07-01T00:00:00"}, "expires_at", "invalid_value"),
        ({"expires_at": "2026-13-01T00:00:00Z"}, "expires_at", "invalid_value"),
        ({"expires_at": "9" * 100}, "expires_at", "invalid_value"),
        ({"expires_at": True}, "expires_at", "invalid_value"),
        ({"settings": {"daily_budget_usd": -5}}, "settings.daily_budget_usd", "invalid_value"),
        ({"settings": {"daily_budget_usd": 2_000_000}}, "settings.daily_budget_usd", "invalid_value"),
        ({"settings": {"rate_limits": {"tokens_per_minute": 0}}}, "settings.rate_limits.tokens_per_minute",
         "invalid_value"),
        ({"settings": {"rate_limits": {"rpm": 5}}}, "settings.rate_limits.rpm", "invalid_value"),
        ({"settings": {"allowed_models": "quick@delta"}}, "settings.allowed_models", "invalid_value"),
        ({"settings": {"allowed_models": ["quick@delta", ""]}}, "settings.allowed_models.1", "invalid_value"),
        ({"settings": {"allowed_models": ["ghost@alpha"]}}, "settings.allowed_models.0", "unknown_model"),
        ({"settings": "{}"}, "settings", "invalid_value"),
        ({"key": "sk-ainf-x"}, "key", "unknown_parameter"),
    ],
)
def test_bad_fields_are_refused_with_the_field_named(data, param, code):
    with pytest.raises(InvalidRequest) as e:
        parse_key_fields(data, CAT, NOW)
    assert (e.value.param, e.value.code, e.value.status) == (param, code, 400)


def test_a_body_that_is_not_an_object_is_refused():
    with pytest.raises(InvalidRequest):
        parse_key_fields(["name"], CAT, NOW)


def test_a_key_is_expired_from_its_expiry_on():
    check_not_expired(None, NOW)
    check_not_expired(NOW + timedelta(microseconds=1), NOW)
    with pytest.raises(AuthenticationFailed) as e:
        check_not_expired(NOW, NOW)
    assert e.value.status == 401 and e.value.code == "invalid_api_key" and "expired" in e.value.message


def test_allowed_models_name_what_a_request_may_ask_for():
    check_model_allowed(KeySettings(), "anything@at-all")
    only = KeySettings.from_json({"allowed_models": ["quick@delta"]})
    check_model_allowed(only, "quick@delta")
    for model in ("other@delta", "ainfera-auto"):
        with pytest.raises(PermissionDenied) as e:
            check_model_allowed(only, model)
        assert (e.value.status, e.value.code, e.value.param) == (403, "model_not_allowed_for_key", "model")
    auto = KeySettings.from_json({"allowed_models": ["ainfera-auto"]})
    check_model_allowed(auto, "ainfera-inference")  # the alias is the same router
    many = KeySettings.from_json({"allowed_models": [f"m{i:03d}@p" for i in range(300)]})
    with pytest.raises(PermissionDenied) as e:
        check_model_allowed(many, "x@p")
    assert "and 280 more" in e.value.message and len(e.value.message) < 600


def test_a_keys_status():
    assert key_status(None, None, NOW) == KeyStatus.ACTIVE
    assert key_status(None, NOW + timedelta(days=1), NOW) == KeyStatus.ACTIVE
    assert key_status(None, NOW, NOW) == KeyStatus.EXPIRED
    assert key_status(NOW, NOW + timedelta(days=1), NOW) == KeyStatus.REVOKED

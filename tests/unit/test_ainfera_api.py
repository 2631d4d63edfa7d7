"""Ainfera's own API at the edge, without sockets: the spend policy's ranges, the flat error shape,
and a finished job as the SDK's inference answer or refusal."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest

from shared.ainfera_api.agents import parse_policy, spend_policy_object
from shared.ainfera_api.errors import ModelUnavailable, NotSupported, flat_body
from shared.ainfera_api.inference import chat_body, failed_object, inference_object
from shared.errors import InvalidRequest
from shared.jobs import Outcome


def test_policy_amounts_are_decimals_within_ainferas_ranges():
    change = parse_policy({"per_call_cap_usd": "1.50", "daily_cap_usd": 10_000}, replace=True)
    assert change.caps == {"per_call_cap_usd": Decimal("1.50"), "daily_cap_usd": Decimal(10_000)}
    # The key's own policy, apart from what its admin set (which it never changes).
    assert change.apply({"allowed_models": ["a@b"], "monthly_budget_usd": 5.0}) == {
        "max_cost_per_call_usd": 1.5, "daily_budget_usd": 10_000.0}
    for low_or_high in ({"per_call_cap_usd": "0.0009"}, {"per_call_cap_usd": 100.001}, {"daily_cap_usd": 0.009},
                        {"daily_cap_usd": "-1"}, {"daily_cap_usd": "nan"}, {"daily_cap_usd": float("inf")}):
        with pytest.raises(InvalidRequest):
            parse_policy(low_or_high, replace=False)


def test_post_clears_what_it_does_not_name_and_patch_keeps_it():
    assert parse_policy({"daily_cap_usd": 1}, replace=True).caps == {"per_call_cap_usd": None,
                                                                      "daily_cap_usd": Decimal(1)}
    assert parse_policy({"daily_cap_usd": 1}, replace=False).caps == {"daily_cap_usd": Decimal(1)}
    clear = parse_policy({"daily_cap_usd": None}, replace=False)
    assert clear.apply({"agent_policy": {"daily_budget_usd": 3.0}}) is None  # no cap of its own left
    assert clear.apply({"agent_policy": {"daily_budget_usd": 3.0, "max_cost_per_call_usd": 1.0}}) == {
        "max_cost_per_call_usd": 1.0}


def test_policy_object_shows_decimal_strings_and_protection():
    assert spend_policy_object({"agent_policy": {"max_cost_per_call_usd": 0.001}}) == {
        "spend_policy": {"per_call_cap_usd": "0.001", "daily_cap_usd": None}, "drain_proof_status": "protected"}
    # A cap the admin set protects the key too, though it is not the agent's own to show or change.
    assert spend_policy_object({"daily_budget_usd": 5.0}) == {
        "spend_policy": {"per_call_cap_usd": None, "daily_cap_usd": None}, "drain_proof_status": "protected"}
    assert spend_policy_object({})["drain_proof_status"] == "unprotected"


def test_a_keys_own_caps_only_tighten_what_its_admin_set():
    from shared.auth.key_settings import KeySettings

    limits = KeySettings.from_json({"max_cost_per_call_usd": 0.01, "daily_budget_usd": 5.0,
                                    "agent_policy": {"max_cost_per_call_usd": 50.0, "daily_budget_usd": 1.0}}).limits
    assert (limits.max_cost_per_call_usd, limits.daily_budget_usd) == (0.01, 1.0)


def test_flat_errors_carry_what_the_sdk_reads():
    body = flat_body(ModelUnavailable("gone", model="m@p", provider="p"))
    assert body["error"] == body["code"] == "model_unavailable" and body["message"] == "gone"
    assert (body["model"], body["provider"]) == ("m@p", "p")
    body = flat_body(NotSupported("Wallets", "no wallets"))
    assert body["code"] == "not_implemented" and body["feature"] == "Wallets" and "Wallets" in body["message"]


def test_agent_id_must_be_the_calling_key():
    key = uuid4()
    assert chat_body({"agent_id": str(key), "model": "x", "messages": []}, key) == {"model": "x", "messages": []}
    with pytest.raises(InvalidRequest):
        chat_body({"agent_id": str(uuid4()), "model": "x"}, key)
    with pytest.raises(InvalidRequest):
        chat_body({"model": "x", "stream": True}, key)


META = {"job_id": "job_1", "receipt_id": "rcpt_1", "provider": "groq", "cost_usd": "0.0001",
        "requested_model": "m@groq"}


def test_a_completion_becomes_the_flat_inference_answer():
    body = {"model": "m@groq", "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1}, "ainfera": META}
    out = inference_object(Outcome(200, body))
    assert (out["inference_id"], out["receipt_id"], out["content"], out["model_used"], out["provider"]) == (
        "job_1", "rcpt_1", "hi", "m@groq", "groq")
    assert (out["finish_reason"], out["input_tokens"], out["output_tokens"], out["cost_usd"]) == ("stop", 3, 1,
                                                                                                  "0.0001")


def _refused(budget: str, reason: str) -> Outcome:
    error = {"message": "over", "type": "insufficient_quota", "code": "budget_exceeded", "param": None}
    return Outcome(402, {"error": error, "ainfera": {**META, "refusal": {"reason": reason, "budget": budget}}})


def test_the_agents_caps_are_403_and_other_budgets_402():
    status, body = failed_object(_refused("key.daily_budget_usd", "daily_cap_exceeded"))
    assert (status, body["code"], body["reason"]) == (403, "spend_policy_exceeded", "daily_cap_exceeded")
    status, body = failed_object(_refused("key.monthly_budget_usd", "monthly_cap_exceeded"))
    assert (status, body["code"]) == (402, "budget_exceeded")
    status, body = failed_object(_refused("tenant.max_cost_per_call_usd", "per_call_cap_exceeded"))
    assert (status, body["code"], body["receipt_id"]) == (402, "budget_exceeded", "rcpt_1")

"""Ainfera's own API through the real gateway and worker: `POST /v1/inference` leaves exactly the
receipt and `inference.routed` event a chat completion leaves; agents (named keys) and their spend
policy, validated with Ainfera's ranges; refusals with the codes the `ainfera` SDK maps; hostile
input a 4xx in Ainfera's flat error shape, never a 500, and no job created."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.settings import Settings
from tests.harness import ADMIN_KEY, fetch_rows, new_tenant, running_gateway, running_worker
from tests.integration.test_hostile_input import DEEP, count, with_deep

pytestmark = pytest.mark.integration

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
PINNED = "llama-3.3-70b@groq"
HELLO = [{"role": "user", "content": "hello there"}]
BODY = {"model": PINNED, "messages": HELLO, "max_tokens": 32}


@pytest.fixture
async def system(settings: Settings, sim):
    tenant_id, _ = await new_tenant(settings)
    async with running_worker(settings), running_gateway(settings) as client:
        r = await client.post(f"/v1/admin/tenants/{tenant_id}/keys", json={"name": "scout"}, headers=ADMIN)
        assert r.status_code == 201, r.text
        key = r.json()
        yield client, {"authorization": f"Bearer {key['api_key']}"}, tenant_id, key["id"]


def flat_error(r, status: int, code: str) -> dict[str, Any]:
    """Ainfera's flat error shape with this status and code (what the SDK reads)."""
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["error"] == body["code"] == code and isinstance(body["message"], str) and body["message"], body
    return body


# Receipt fields that differ between any two calls (ids, times, the route's own name for them).
_PER_CALL = {"id", "job_id", "receipt_id", "inference_id", "created_at", "latency_ms", "upstream_latency_ms",
             "signature"}


def same_call(receipt: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in receipt.items() if k not in _PER_CALL}


async def test_inference_leaves_the_receipt_and_routed_event_of_a_chat_completion(system, settings):
    client, auth, tenant_id, agent_id = system
    chat = await client.post("/v1/chat/completions", json=BODY, headers=auth)
    inf = await client.post("/v1/inference", json={"agent_id": agent_id, **BODY}, headers=auth)
    assert chat.status_code == 200 and inf.status_code == 200, inf.text
    answer = inf.json()
    assert answer["model_used"] == PINNED and answer["provider"] == "groq"
    assert answer["content"] == chat.json()["choices"][0]["message"]["content"]
    assert answer["finish_reason"] in ("stop", "length") and isinstance(answer["cost_usd"], str)
    assert answer["input_tokens"] == chat.json()["usage"]["prompt_tokens"]
    assert inf.headers["x-ainfera-receipt-id"] == answer["receipt_id"]
    receipts = {}
    for r in (chat, inf):
        got = await client.get(f"/v1/receipts/{r.headers['x-ainfera-receipt-id']}", headers=auth)
        receipts[r is inf] = got.json()
    assert same_call(receipts[True]) == same_call(receipts[False])
    assert receipts[True]["inference_id"] == answer["inference_id"] == receipts[True]["job_id"]
    events = await fetch_rows(settings, "SELECT job_id, event_type, payload FROM audit_events WHERE tenant_id = $1 "
                                        "ORDER BY seq", tenant_id)
    assert [(e["event_type"], e["job_id"]) for e in events] == [
        ("inference.routed", chat.headers["x-ainfera-job-id"]), ("inference.routed", answer["inference_id"])]
    payloads = [orjson.loads(e["payload"]) for e in events]
    skip = {"seq", "time", "job_id", "receipt_id", "latency_ms", "previous_hash"}
    chat_fields, inference_fields = ({k: v for k, v in p.items() if k not in skip} for p in payloads)
    assert chat_fields == inference_fields


async def test_ainfera_auto_runs_the_router(system):
    client, auth, _, _ = system
    r = await client.post("/v1/inference", json={"model": "ainfera-auto", "messages": HELLO, "max_tokens": 16,
                                                 "task_type": "chat", "routing_hint": {"explain": True}},
                          headers=auth)
    assert r.status_code == 200, r.text
    assert "@" in r.json()["model_used"] and r.json()["ainfera"]["decision_log"]
    assert "task_type" in r.headers["x-ainfera-dropped-params"]


async def test_agent_is_a_key_of_the_callers_tenant(system, settings):
    client, auth, tenant_id, agent_id = system
    agent = (await client.get(f"/v1/agents/{agent_id}", headers=auth)).json()
    assert (agent["id"], agent["tenant_id"], agent["name"], agent["status"]) == (agent_id, tenant_id, "scout",
                                                                                 "active")
    assert agent["drain_proof_status"] == "unprotected" and agent["created_at"]
    _, other_key = await new_tenant(settings, "other")
    other = {"authorization": f"Bearer {other_key}"}
    flat_error(await client.get(f"/v1/agents/{agent_id}", headers=other), 404, "not_found")
    flat_error(await client.get("/v1/agents/not-a-uuid", headers=auth), 404, "not_found")
    # The audit routes are shared with the OpenAI-side API and keep its envelope.
    assert (await client.get(f"/v1/audit/{agent_id}", headers=other)).json()["error"]["code"] == "not_found"
    assert (await client.get(f"/v1/audit/{agent_id}", headers=auth)).status_code == 200
    flat_error(await client.get(f"/v1/agents/{agent_id}", headers={"authorization": "Bearer nope"}), 401,
               "invalid_api_key")


@pytest.mark.parametrize(("body", "param"), [
    ({"per_call_cap_usd": 0.0005}, "per_call_cap_usd"),
    ({"per_call_cap_usd": "100.01"}, "per_call_cap_usd"),
    ({"daily_cap_usd": 0.001}, "daily_cap_usd"),
    ({"daily_cap_usd": 10_000.5}, "daily_cap_usd"),
    ({"daily_cap_usd": "NaN"}, "daily_cap_usd"),
    ({"daily_cap_usd": "Infinity"}, "daily_cap_usd"),
    ({"daily_cap_usd": "1e999999"}, "daily_cap_usd"),
    ({"daily_cap_usd": True}, "daily_cap_usd"),
    ({"daily_cap_usd": "ten"}, "daily_cap_usd"),
    ({"daily_cap_usd": "1" * 50}, "daily_cap_usd"),
    ({"daily_cap_usd": {"a": 1}}, "daily_cap_usd"),
    ({"wallet": 1}, "wallet"),
    ([1], None),
])
async def test_spend_policy_outside_ainferas_ranges_is_a_400(system, body, param):
    client, auth, _, agent_id = system
    for method in ("POST", "PATCH"):
        r = await client.request(method, f"/v1/agents/{agent_id}/spend-policy", json=body, headers=auth)
        assert r.status_code == 400, r.text
        assert r.json()["param"] == param
    agent = (await client.get(f"/v1/agents/{agent_id}", headers=auth)).json()
    assert agent["spend_policy"] == {"per_call_cap_usd": None, "daily_cap_usd": None}


async def test_spend_policy_post_replaces_and_patch_changes(system):
    client, auth, _, agent_id = system
    url = f"/v1/agents/{agent_id}/spend-policy"
    r = await client.post(url, json={"per_call_cap_usd": "1.50", "daily_cap_usd": 20}, headers=auth)
    assert r.json() == {"object": "spend_policy", "agent_id": agent_id, "drain_proof_status": "protected",
                        "spend_policy": {"per_call_cap_usd": "1.5", "daily_cap_usd": "20"}}
    r = await client.patch(url, json={"daily_cap_usd": None}, headers=auth)
    assert r.json()["spend_policy"] == {"per_call_cap_usd": "1.5", "daily_cap_usd": None}
    r = await client.post(url, json={"daily_cap_usd": "0.01"}, headers=auth)
    assert r.json()["spend_policy"] == {"per_call_cap_usd": None, "daily_cap_usd": "0.01"}
    assert (await client.get(url, headers=auth)).json()["spend_policy"]["daily_cap_usd"] == "0.01"
    flat_error(await client.patch(url, json={}, headers=auth), 400, "invalid_value")


async def test_a_key_cannot_lift_a_cap_its_admin_set_and_the_admin_keeps_the_keys_own(system):
    client, auth, tenant_id, agent_id = system
    admin_url = f"/v1/admin/tenants/{tenant_id}/keys/{agent_id}"
    r = await client.patch(admin_url, json={"settings": {"max_cost_per_call_usd": 0.001}}, headers=ADMIN)
    assert r.status_code == 200, r.text
    # The key sets a looser cap of its own (and clears every cap it can): the admin's still holds.
    for policy in ({"per_call_cap_usd": 100}, {}):
        r = await client.post(f"/v1/agents/{agent_id}/spend-policy", json=policy, headers=auth)
        assert r.status_code == 200 and r.json()["drain_proof_status"] == "protected", r.text
        big = {**BODY, "model": "gpt-4.1@openai", "max_tokens": 8000}
        refused = flat_error(await client.post("/v1/inference", json=big, headers=auth), 403, "spend_policy_exceeded")
        assert refused["budget"] == "key.max_cost_per_call_usd"
    # The key's own, tighter cap is kept when the admin changes the key's settings.
    await client.post(f"/v1/agents/{agent_id}/spend-policy", json={"daily_cap_usd": 0.01}, headers=auth)
    r = await client.patch(admin_url, json={"settings": {"allowed_models": [PINNED, "gpt-4.1@openai"]}},
                           headers=ADMIN)
    assert r.status_code == 200, r.text
    policy = (await client.get(f"/v1/agents/{agent_id}/spend-policy", headers=auth)).json()["spend_policy"]
    assert policy == {"per_call_cap_usd": None, "daily_cap_usd": "0.01"}


async def test_the_agents_caps_refuse_with_403_and_the_tenants_with_402(system, settings):
    client, auth, tenant_id, agent_id = system
    await client.post(f"/v1/agents/{agent_id}/spend-policy", json={"per_call_cap_usd": 0.001}, headers=auth)
    big = {**BODY, "model": "gpt-4.1@openai", "max_tokens": 8000}
    body = flat_error(await client.post("/v1/inference", json=big, headers=auth), 403, "spend_policy_exceeded")
    assert body["reason"] == "per_call_cap_exceeded" and body["budget"] == "key.max_cost_per_call_usd"
    assert body["receipt_id"].startswith("rcpt_")
    # The same cap holds on the chat path, refused there as chat refuses budgets (402).
    chat = await client.post("/v1/chat/completions", json=big, headers=auth)
    assert chat.status_code == 402 and chat.json()["error"]["code"] == "budget_exceeded"
    await client.post(f"/v1/agents/{agent_id}/spend-policy", json={"daily_cap_usd": 0.01}, headers=auth)
    body = flat_error(await client.post("/v1/inference", json=big, headers=auth), 403, "spend_policy_exceeded")
    assert body["reason"] == "daily_cap_exceeded"
    # A tenant's own budget is a budget refusal: 402.
    await client.post(f"/v1/agents/{agent_id}/spend-policy", json={}, headers=auth)
    r = await client.put(f"/v1/admin/tenants/{tenant_id}/spend_policy", json={"max_cost_per_call_usd": 0.0001},
                         headers=ADMIN)
    assert r.status_code == 200, r.text
    body = flat_error(await client.post("/v1/inference", json=big, headers=auth), 402, "budget_exceeded")
    assert body["budget"] == "tenant.max_cost_per_call_usd"
    events = await fetch_rows(settings, "SELECT event_type, payload FROM audit_events WHERE tenant_id = $1 "
                                        "ORDER BY seq", tenant_id)
    reasons = [orjson.loads(e["payload"])["reason"] for e in events if e["event_type"] == "inference.rejected"]
    assert reasons == ["per_call_cap_exceeded", "per_call_cap_exceeded", "daily_cap_exceeded",
                       "per_call_cap_exceeded"]


async def test_unknown_or_inactive_model_is_422_model_unavailable(system):
    client, auth, _, _ = system
    body = flat_error(await client.post("/v1/inference", json={**BODY, "model": "gpt-9@nowhere"}, headers=auth),
                      422, "model_unavailable")
    assert body["model"] == "gpt-9@nowhere" and body["provider"] is None


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": HELLO}, "model"),
    ({"model": PINNED}, "messages"),
    ({**BODY, "agent_id": "00000000-0000-0000-0000-000000000000"}, "agent_id"),
    ({**BODY, "agent_id": 7}, "agent_id"),
    ({**BODY, "stream": True}, "stream"),
    ({**BODY, "max_tokens": -1}, "max_tokens"),
    ({**BODY, "messages": [{"role": "user", "content": "hi\u0000there"}]}, None),
    ({**BODY, "tools": "all of them"}, "tools"),
])
async def test_malformed_inference_is_a_400_and_creates_no_job(system, settings, body, param):
    client, auth, _, _ = system
    r = await client.post("/v1/inference", json=body, headers=auth)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "invalid_request_error"
    if param is not None:
        assert r.json()["param"] == param
    assert await count(settings, "jobs") == 0


async def test_hostile_bodies_are_4xx_never_500(system, settings):
    client, auth, _, agent_id = system
    deep = with_deep({**BODY, "tools": [{"type": "function", "function": {"name": "t", "parameters": DEEP}}]}, 300)
    r = await client.post("/v1/inference", content=deep, headers={**auth, "content-type": "application/json"})
    assert r.status_code == 400, r.text
    huge = {**BODY, "messages": [{"role": "user", "content": "x" * (settings.max_request_bytes + 1)}]}
    assert (await client.post("/v1/inference", json=huge, headers=auth)).status_code == 413
    assert (await client.post("/v1/inference", content=b"{nope", headers=auth)).status_code == 400
    assert (await client.post("/v1/inference", json=[BODY], headers=auth)).status_code == 400
    r = await client.post(f"/v1/agents/{agent_id}/spend-policy", content=with_deep({"daily_cap_usd": DEEP}, 300),
                          headers={**auth, "content-type": "application/json"})
    assert r.status_code == 400, r.text
    r = await client.post(f"/v1/agents/{agent_id}/spend-policy", json={"daily_cap_usd": "1", "x" * 10_000: 1},
                          headers=auth)
    assert r.status_code in (400, 413), r.text
    assert (await client.get("/v1/agents/%00", headers=auth)).status_code in (400, 404)
    assert await count(settings, "jobs") == 0


@pytest.mark.parametrize(("method", "path", "feature"), [
    ("POST", "/v1/agents/signup", "Agent signup"),
    ("POST", "/v1/agents/register", "Agent registration"),
    ("GET", "/v1/agents", "Listing agents"),
    ("GET", "/v1/agents/abc/card", "Agent cards"),
    ("GET", "/v1/wallets/abc", "Wallets"),
    ("POST", "/v1/wallets/topup", "Wallet top-ups"),
    ("GET", "/v1/ledger/abc", "ledger"),
    ("GET", "/v1/audit/abc/annex-iv", "Annex IV"),
])
async def test_unsupported_sdk_calls_are_501_naming_the_feature(system, method, path, feature):
    client, _, _, _ = system
    body = flat_error(await client.request(method, path, json={}), 501, "not_implemented")
    assert feature in body["message"] and body["feature"]
    flat_error(await client.get("/v1/agents/abc/nothing-here"), 404, "unknown_url")


async def test_an_inference_repeated_with_its_idempotency_key_is_answered_once(system, settings):
    client, auth, tenant_id, _ = system
    headers = {**auth, "Idempotency-Key": "inference-once"}
    first = await client.post("/v1/inference", json=BODY, headers=headers)
    again = await client.post("/v1/inference", json=BODY, headers=headers)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json()["inference_id"] == first.json()["inference_id"]
    assert again.json()["receipt_id"] == first.json()["receipt_id"]
    rows = await fetch_rows(settings, "SELECT count(*) AS n FROM receipts WHERE tenant_id = $1", tenant_id)
    assert rows[0]["n"] == 1  # one job, one charge

"""The synchronous path on real parts: gateway -> Redis -> worker -> simulated provider -> Postgres."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import orjson
import pytest

from shared.queue.names import QueueName
from shared.routing.stacks import STACK_HINTS, allowed_stacks
from shared.settings import Settings
from tests.harness import new_tenant, running_gateway, running_worker

pytestmark = pytest.mark.integration


def chat(model: str, text: str = "Say hello in five words.", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


async def rows(settings: Settings, query: str, *args) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.session_database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


@pytest.fixture
async def system(settings: Settings, sim: httpx.AsyncClient):
    """Gateway and worker running; yields (client, auth headers, tenant id)."""
    tenant_id, key = await new_tenant(settings)
    async with running_worker(settings), running_gateway(settings) as client:
        yield client, {"Authorization": f"Bearer {key}"}, tenant_id


async def test_pinned_model_is_served_under_its_canonical_slug(system, settings, sim):
    client, auth, tenant_id = system
    r = await client.post("/v1/chat/completions", json=chat("llama-3.3-70b@groq"), headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "llama-3.3-70b@groq"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    assert r.headers["x-ainfera-job-id"] == body["ainfera"]["job_id"]
    assert r.headers["x-ainfera-receipt-id"] == body["ainfera"]["receipt_id"]
    assert float(r.headers["x-ainfera-cost-usd"]) > 0

    # The upstream got the provider's own name; everything we keep names the slug.
    stats = (await sim.get("/_sim/stats")).json()
    assert stats["by_model"] == {"llama-3.3-70b-versatile": 1}
    [receipt] = await rows(settings, "SELECT * FROM receipts")
    assert receipt["id"] == body["ainfera"]["receipt_id"]
    assert (receipt["model_slug"], receipt["provider"], receipt["upstream_model"]) == (
        "llama-3.3-70b@groq", "groq", "llama-3.3-70b-versatile")
    assert receipt["status"] == "succeeded" and receipt["input_tokens"] == body["usage"]["prompt_tokens"]
    assert str(receipt["tenant_id"]) == tenant_id
    [event] = await rows(settings, "SELECT * FROM audit_events WHERE tenant_id = $1", receipt["tenant_id"])
    payload = orjson.loads(event["payload"])
    assert event["event_type"] == "inference.routed" and event["seq"] == 1 and event["previous_hash"] is None
    assert payload["model"] == "llama-3.3-70b@groq" and payload["receipt_id"] == receipt["id"]
    assert payload["cost_usd"] == body["ainfera"]["cost_usd"]
    assert "Say hello" not in event["payload"]  # hashes of the prompt, never the prompt


async def test_auto_routes_and_records_its_decision(system, settings):
    client, auth, _ = system
    r = await client.post("/v1/chat/completions", json=chat("ainfera-auto", routing_hint={"explain": True}),
                          headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    decision = body["ainfera"]["decision_log"]
    assert decision["chosen"] == body["model"]
    assert [s["step"] for s in decision["steps"]] == [
        "active", "capability", "policy", "stack", "budget", "latency", "rank"]
    [event] = await rows(settings, "SELECT payload FROM audit_events WHERE job_id = $1", body["ainfera"]["job_id"])
    assert orjson.loads(event["payload"])["decision_log"] == decision
    receipt = (await client.get(f"/v1/receipts/{body['ainfera']['receipt_id']}", headers=auth)).json()
    assert receipt["routing"]["decision_log"] == decision


async def test_the_decision_log_is_in_the_answer_only_when_asked_and_always_in_the_receipt_and_audit(
        system, settings):
    client, auth, _ = system
    r = await client.post("/v1/chat/completions", json=chat("ainfera-auto"), headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "decision_log" not in body["ainfera"] and body["ainfera"]["receipt_id"]
    receipt = (await client.get(f"/v1/receipts/{body['ainfera']['receipt_id']}", headers=auth)).json()
    assert receipt["routing"]["decision_log"]["chosen"] == body["model"]
    [event] = await rows(settings, "SELECT payload FROM audit_events WHERE job_id = $1", body["ainfera"]["job_id"])
    assert orjson.loads(event["payload"])["decision_log"] == receipt["routing"]["decision_log"]
    [job] = await rows(settings, "SELECT response FROM jobs WHERE id = $1", body["ainfera"]["job_id"])
    assert "decision_log" not in job["response"]  # not stored twice either
    refused = await client.post("/v1/chat/completions", json=chat("ainfera-auto", routing_hint={"explain": "yes"}),
                                headers=auth)
    assert refused.status_code == 400 and "explain" in refused.text


async def test_alias_ainfera_inference_routes_like_auto(system):
    client, auth, _ = system
    a = (await client.post("/v1/chat/completions", json=chat("ainfera-auto"), headers=auth)).json()
    b = (await client.post("/v1/chat/completions", json=chat("ainfera-inference"), headers=auth)).json()
    assert a["model"] == b["model"]


async def test_unknown_model_is_404_and_nothing_is_enqueued(system, settings, sim, redis_flushed):
    client, auth, _ = system
    r = await client.post("/v1/chat/completions", json=chat("gpt-9@nowhere"), headers=auth)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found" and r.json()["error"]["param"] == "model"
    assert await redis_flushed.zcard(QueueName.INTERACTIVE) == 0
    assert await rows(settings, "SELECT id FROM jobs") == []
    assert (await sim.get("/_sim/stats")).json()["total"] == 0


async def test_inactive_model_is_refused_with_its_reason(system, settings):
    client, auth, _ = system
    await rows(settings, "UPDATE models SET active = false, deactivation_reason = 'probe:model_not_found' "
                         "WHERE slug = 'gpt-4o@openai'")
    for _ in range(250):  # the catalog cache reloads on NOTIFY; wait for it without sleeping blindly (bounded: 5 s)
        r = await client.post("/v1/chat/completions", json=chat("gpt-4o@openai"), headers=auth)
        if r.status_code == 404:
            break
        await asyncio.sleep(0.02)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_inactive"
    assert "probe:model_not_found" in r.json()["error"]["message"]


@pytest.mark.parametrize("header", [None, "Bearer sk-ainf-wrong", "Basic abc", "Bearer "])
async def test_bad_or_missing_keys_get_the_same_401(system, header):
    client, _, _ = system
    headers = {"Authorization": header} if header else {}
    r = await client.post("/v1/chat/completions", json=chat("ainfera-auto"), headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert r.json()["error"]["message"].startswith("Incorrect API key provided.")


async def test_oversized_body_is_413(system, settings):
    client, auth, _ = system
    big = "x" * (settings.max_request_bytes + 10)
    r = await client.post("/v1/chat/completions", json=chat("ainfera-auto", big), headers=auth)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"model": "ainfera-auto", "messages": [{"role": "user", "content": "x"}], "temperature": NaN}', b"",
     b"[1, 2]"],
)
async def test_malformed_bodies_are_400_not_500(system, raw):
    client, auth, _ = system
    r = await client.post("/v1/chat/completions", content=raw, headers={**auth, "content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


async def test_steering_fields_are_refused_and_nothing_is_contacted(system, sim):
    client, auth, _ = system
    r = await client.post("/v1/chat/completions", headers=auth,
                          json=chat("llama-3.3-70b@groq", base_url="http://127.0.0.1:9/steal", api_key="sk-x"))
    assert r.status_code == 400 and r.json()["error"]["param"] in ("base_url", "api_key")
    assert (await sim.get("/_sim/stats")).json()["total"] == 0


async def test_max_tokens_beyond_the_model_limit_is_400(system):
    client, auth, _ = system
    r = await client.post("/v1/chat/completions", headers=auth, json=chat("llama-4-scout@groq", max_tokens=9000))
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"


@pytest.mark.parametrize(
    ("directive", "status", "code"),
    [
        ("[sim:fail=500]", 502, "upstream_server_error"),
        ("[sim:fail=429] [sim:retry-after=0]", 502, "upstream_rate_limited"),
        ("[sim:malformed]", 502, "upstream_malformed_response"),
        ("[sim:truncated]", 502, "upstream_malformed_response"),
        ("[sim:fail=401]", 502, "upstream_auth_failed"),
    ],
)
async def test_upstream_failures_are_clear_errors_and_never_charged(system, settings, directive, status, code):
    client, auth, _ = system
    r = await client.post("/v1/chat/completions", json=chat("kimi-k2.6@moonshot", f"hi {directive}"), headers=auth)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and "Traceback" not in r.text
    [job] = await rows(settings, "SELECT status FROM jobs")
    assert job["status"] == "failed"
    [receipt] = await rows(settings, "SELECT status, cost_usd, error_code, attempts FROM receipts")
    assert receipt["status"] == "failed" and receipt["cost_usd"] == 0 and receipt["error_code"] == code
    retried = code in ("upstream_server_error", "upstream_rate_limited")
    assert receipt["attempts"] == (1 + settings.upstream_max_retries if retried else 1)
    [event] = await rows(settings, "SELECT event_type FROM audit_events")
    assert event["event_type"] == "inference.failed"


async def test_upstream_timeout_is_504(settings, sim):
    tight = settings.model_copy(update={"upstream_read_timeout_s": 0.3, "upstream_deadline_s": 2.0})
    _, key = await new_tenant(tight)
    async with running_worker(tight), running_gateway(tight) as client:
        r = await client.post("/v1/chat/completions", json=chat("kimi-k2.6@moonshot", "hi [sim:hang]"),
                              headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"


async def test_rate_limit_then_success_is_retried_and_charged_once(system, settings):
    client, auth, _ = system
    r = await client.post("/v1/chat/completions", headers=auth,
                          json=chat("kimi-k2.6@moonshot", "hi [sim:fail=429] [sim:retry-after=0] [sim:fail-times=1]"))
    assert r.status_code == 200, r.text
    [receipt] = await rows(settings, "SELECT attempts, status FROM receipts")
    assert receipt["attempts"] == 2 and receipt["status"] == "succeeded"


async def test_anthropic_models_are_translated_both_ways(system, sim):
    client, auth, _ = system
    body = chat("claude-haiku-4.5@anthropic", max_tokens=50)
    body["messages"].insert(0, {"role": "system", "content": "Be brief."})
    r = await client.post("/v1/chat/completions", json=body, headers=auth)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model"] == "claude-haiku-4.5@anthropic"
    assert isinstance(out["choices"][0]["message"]["content"], str)
    assert out["choices"][0]["finish_reason"] in ("stop", "length")
    assert (await sim.get("/_sim/stats")).json()["by_model"] == {"claude-haiku-4-5": 1}


async def test_models_list_shows_active_models_with_our_fields(system, settings):
    client, auth, _ = system
    r = await client.get("/v1/models", headers=auth)
    assert r.status_code == 200
    data = r.json()["data"]
    ids = {m["id"] for m in data}
    assert "ainfera-auto" in ids and "llama-3.3-70b@groq" in ids
    assert "llama-3.3-70b@cerebras" not in ids  # seeded inactive: the research marks it retired
    groq = next(m for m in data if m["id"] == "llama-3.3-70b@groq")
    assert groq["provider"] == "groq" and groq["stack"] == "us" and groq["fast_tier"] is True
    assert groq["serving_region"] is None  # no source read states it
    qwen = next(m for m in data if m.get("provider") == "alibaba")
    assert qwen["stack"] == "china" and qwen["serving_region"].startswith("Singapore")
    assert groq["pricing"] == {"input_usd_per_mtok": 0.59, "output_usd_per_mtok": 0.79,
                               "cached_input_usd_per_mtok": None, "cache_write_usd_per_mtok": None}
    claude = next(m for m in data if m["id"] == "claude-sonnet-4.5@anthropic")
    assert claude["pricing"] == {"input_usd_per_mtok": 3.0, "output_usd_per_mtok": 15.0,
                                 "cached_input_usd_per_mtok": 0.3, "cache_write_usd_per_mtok": 3.75}
    china = (await client.get("/v1/models?stack=china", headers=auth)).json()["data"]
    assert {m["stack"] for m in china if m["id"] != "ainfera-auto"} == {"china"}
    assert {m["provider"] for m in china if m["id"] != "ainfera-auto"} == {
        "deepseek", "moonshot", "alibaba", "novita", "byteplus"}
    avoid = (await client.get("/v1/models?stack=avoid-china", headers=auth)).json()["data"]
    assert "china" not in {m.get("stack") for m in avoid}
    everything = {m["id"]: m for m in data if m["id"] != "ainfera-auto"}
    for hint in STACK_HINTS:  # the listing filters with the router's own mapping
        listed = (await client.get(f"/v1/models?stack={hint}", headers=auth)).json()["data"]
        assert {m["id"] for m in listed if m["id"] != "ainfera-auto"} == {
            i for i, m in everything.items() if m["stack"] in allowed_stacks(hint)}
    bad = await client.get("/v1/models?stack=mars", headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "stack"
    one = await client.get("/v1/models/llama-3.3-70b@groq", headers=auth)
    assert one.status_code == 200 and one.json()["id"] == "llama-3.3-70b@groq"
    missing = await client.get("/v1/models/nope@nowhere", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"

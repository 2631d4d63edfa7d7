"""Admin API, a tenant's own receipts and jobs, health, and what never reaches a log."""

from __future__ import annotations

import asyncio

import pytest

from shared.settings import Settings
from tests.harness import ADMIN_KEY, new_tenant, running_gateway, running_worker

pytestmark = pytest.mark.integration

CHAT = {"model": "gpt-oss-20b@groq", "messages": [{"role": "user", "content": "the secret word is pelican"}]}


@pytest.fixture
async def client(settings: Settings, sim):
    async with running_worker(settings), running_gateway(settings) as c:
        yield c


async def test_admin_creates_tenants_and_keys_with_the_admin_key_only(client):
    denied = await client.post("/v1/admin/tenants", json={"name": "x"}, headers={"Authorization": "Bearer nope"})
    assert denied.status_code == 401
    r = await client.post("/v1/admin/tenants", json={"name": "globex"},
                          headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 201
    created = r.json()
    assert created["api_key"].startswith("sk-ainf-") and created["name"] == "globex"
    ok = await client.get("/v1/models", headers={"Authorization": f"Bearer {created['api_key']}"})
    assert ok.status_code == 200
    again = await client.post(f"/v1/admin/tenants/{created['tenant_id']}/keys",
                              headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert again.status_code == 201 and again.json()["api_key"] != created["api_key"]
    missing = await client.post("/v1/admin/tenants/00000000-0000-0000-0000-00000000abcd/keys",
                                headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert missing.status_code == 404
    bad = await client.post("/v1/admin/tenants", json={"name": ""}, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "name"


async def test_a_tenant_reads_its_own_receipts_and_jobs_and_nobody_elses(client, settings):
    _, key_a = await new_tenant(settings, "a")
    _, key_b = await new_tenant(settings, "b")
    a, b = {"Authorization": f"Bearer {key_a}"}, {"Authorization": f"Bearer {key_b}"}
    done = await client.post("/v1/chat/completions", json=CHAT, headers=a)
    assert done.status_code == 200
    rid, jid = done.headers["x-ainfera-receipt-id"], done.headers["x-ainfera-job-id"]

    receipt = (await client.get(f"/v1/receipts/{rid}", headers=a)).json()
    assert receipt["model"] == "gpt-oss-20b@groq" and receipt["upstream_model"] == "openai/gpt-oss-20b"
    assert receipt["cost_usd"] == done.json()["ainfera"]["cost_usd"] and receipt["status"] == "succeeded"
    job = (await client.get(f"/v1/jobs/{jid}", headers=a)).json()
    assert job["status"] == "succeeded" and job["response"]["id"] == done.json()["id"]

    for url in (f"/v1/receipts/{rid}", f"/v1/jobs/{jid}", "/v1/receipts/rcpt_nope", "/v1/jobs/job_nope"):
        r = await client.get(url, headers=b)
        assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["postgres"] == "ok"


async def test_unknown_routes_and_methods_use_the_error_envelope(client):
    r = await client.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"
    r = await client.get("/v1/chat/completions")
    assert r.status_code == 405 and "error" in r.json()


async def test_keys_and_prompts_never_reach_the_logs(client, settings, capfd):
    _, key = await new_tenant(settings, "quiet")
    r = await client.post("/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
    await client.post("/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer sk-ainf-leaked?"})
    logs = ""
    for _ in range(250):  # the worker logs its summary line after it answered: wait for it (bounded: 5 s)
        out, err = capfd.readouterr()
        logs += out + err
        if "job_finished" in logs:
            break
        await asyncio.sleep(0.02)
    assert "job_finished" in logs  # the logs were captured
    for secret in (key, "sk-ainf-leaked", "pelican", ADMIN_KEY):
        assert secret not in logs


async def test_openapi_schema_describes_the_chat_request(client):
    doc = (await client.get("/openapi.json")).json()
    body = doc["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ChatCompletionRequest"}
    schema = doc["components"]["schemas"]["ChatCompletionRequest"]
    assert {"model", "messages"} <= set(schema["required"])
    assert "RoutingHint" in doc["components"]["schemas"]


async def test_openapi_schema_describes_the_messages_requests_apart_from_the_chat_ones(client):
    doc = (await client.get("/openapi.json")).json()
    for path, name in (("/v1/messages", "MessagesRequest"), ("/v1/messages/count_tokens", "CountTokensRequest")):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/Anthropic{name}"}
    schemas = doc["components"]["schemas"]
    assert "max_tokens" in schemas["AnthropicMessagesRequest"]["required"]
    assert "role" in schemas["AnthropicMessage"]["properties"] and "role" in schemas["Message"]["properties"]
    assert schemas["AnthropicMessage"] != schemas["Message"]

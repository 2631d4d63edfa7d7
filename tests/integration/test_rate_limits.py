"""Rate limits on real parts: tenant and key limits enforced by the gateway through Redis, shared by
every gateway, with OpenAI's headers and 429s (Anthropic's on /v1/messages)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from redis.asyncio import Redis

from shared import rate_limits
from shared.settings import Settings
from tests.harness import new_tenant, running_gateway, running_worker

pytestmark = pytest.mark.integration

MODEL = "llama-3.3-70b@groq"


def chat(text: str = "Say hello.", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


async def execute(settings: Settings, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(settings.session_database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def set_key_limits(settings: Settings, tenant_id: str, limits: dict[str, int]) -> None:
    await execute(settings, "UPDATE api_keys SET settings = $2::jsonb WHERE tenant_id = $1::uuid", tenant_id,
                  orjson.dumps({"rate_limits": limits}).decode())


async def jobs(settings: Settings) -> int:
    [row] = await execute(settings, "SELECT count(*) AS n FROM jobs")
    return int(row["n"])


async def upstream_calls(sim: httpx.AsyncClient) -> int:
    return sum((await sim.get("/_sim/stats")).json()["by_model"].values())


@pytest.fixture
async def worker(settings: Settings):
    async with running_worker(settings):
        yield


async def tenant_client(settings: Settings, limits: dict[str, int] | None = None,
                        key_limits: dict[str, int] | None = None) -> tuple[str, dict[str, str]]:
    tenant_id, key = await new_tenant(settings, policy={"rate_limits": limits} if limits else None)
    if key_limits:
        await set_key_limits(settings, tenant_id, key_limits)
    return tenant_id, {"Authorization": f"Bearer {key}"}


async def test_requests_per_minute_are_enforced_with_openais_headers(settings, sim, worker):
    _, auth = await tenant_client(settings, {"requests_per_minute": 2})
    async with running_gateway(settings) as client:
        first = await client.post("/v1/chat/completions", json=chat(), headers=auth)
        second = await client.post("/v1/chat/completions", json=chat(), headers=auth)
        third = await client.post("/v1/chat/completions", json=chat(), headers=auth)
    assert first.status_code == second.status_code == 200, first.text
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert [first.headers["x-ratelimit-remaining-requests"], second.headers["x-ratelimit-remaining-requests"]] == [
        "1", "0"]
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert "x-ratelimit-limit-tokens" not in first.headers  # no tokens limit is set

    assert third.status_code == 429
    error = third.json()["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert "this tenant" in error["message"] and "requests per minute" in error["message"]
    assert "try again in" in error["message"]
    assert 1 <= int(third.headers["retry-after"]) <= 30  # the next request of 2 a minute frees in 30 s
    assert third.headers["x-ratelimit-remaining-requests"] == "0"
    # Refused before anything was stored or sent upstream.
    assert await jobs(settings) == 2 and await upstream_calls(sim) == 2


async def test_two_gateways_share_one_allowance(settings, sim, worker):
    _, auth = await tenant_client(settings, {"requests_per_minute": 3})
    async with running_gateway(settings) as one, running_gateway(settings) as two:
        answers = await asyncio.gather(*(client.post("/v1/chat/completions", json=chat(), headers=auth)
                                         for client in (one, two, one, two, one, two)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200, 200, 200, 429, 429, 429]
    assert await upstream_calls(sim) == 3


async def test_a_refused_request_consumes_nothing(settings, worker):
    # The tenant allows 2 requests; the key 200 tokens. The second call is refused by the key's tokens
    # limit: it must not have taken one of the tenant's requests, so the third (small) call still passes.
    _, auth = await tenant_client(settings, {"requests_per_minute": 2}, {"tokens_per_minute": 200})
    async with running_gateway(settings) as client:
        first = await client.post("/v1/chat/completions", json=chat(max_tokens=150), headers=auth)
        refused = await client.post("/v1/chat/completions", json=chat(max_tokens=150), headers=auth)
        third = await client.post("/v1/chat/completions", json=chat(max_tokens=5), headers=auth)
    assert first.status_code == 200, first.text
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "tokens"
    assert "this API key" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 1
    assert third.status_code == 200, third.text
    assert third.headers["x-ratelimit-remaining-requests"] == "0"


async def test_a_key_limit_tighter_than_the_tenants_holds_that_key_only(settings, worker):
    _, auth = await tenant_client(settings, {"requests_per_minute": 100}, {"requests_per_minute": 1})
    async with running_gateway(settings) as client:
        ok = await client.post("/v1/chat/completions", json=chat(), headers=auth)
        refused = await client.post("/v1/chat/completions", json=chat(), headers=auth)
    assert ok.status_code == 200, ok.text
    assert ok.headers["x-ratelimit-limit-requests"] == "1"  # the tightest limit is the one reported
    assert refused.status_code == 429
    assert "this API key" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) in range(55, 61)


async def test_tokens_per_minute_count_input_and_max_tokens(settings, worker):
    _, auth = await tenant_client(settings, {"tokens_per_minute": 300})
    async with running_gateway(settings) as client:
        first = await client.post("/v1/chat/completions", json=chat(max_tokens=100), headers=auth)
        second = await client.post("/v1/chat/completions", json=chat(max_completion_tokens=100), headers=auth)
        third = await client.post("/v1/chat/completions", json=chat(max_tokens=100), headers=auth)
        too_large = await client.post("/v1/chat/completions", json=chat(max_tokens=5000), headers=auth)
        no_cap = await client.post("/v1/chat/completions", json=chat(), headers=auth)  # counts the default 1024
    assert first.status_code == second.status_code == 200, first.text
    remaining = [int(r.headers["x-ratelimit-remaining-tokens"]) for r in (first, second)]
    used = 300 - remaining[0]
    assert 100 < used < 130 and remaining[1] == 300 - 2 * used
    assert third.status_code == 429 and third.json()["error"]["type"] == "tokens"
    assert too_large.status_code == 429 and "Request too large" in too_large.json()["error"]["message"]
    assert "retry-after" not in too_large.headers
    assert no_cap.status_code == 429 and "Request too large" in no_cap.json()["error"]["message"]


async def test_streaming_and_async_calls_count_too(settings, worker):
    _, auth = await tenant_client(settings, {"requests_per_minute": 2})
    async with running_gateway(settings) as client:
        streamed = await client.post("/v1/chat/completions", json=chat(stream=True), headers=auth)
        queued = await client.post("/v1/chat/completions", json=chat(),
                                   headers={**auth, "Prefer": "respond-async"})
        refused = await client.post("/v1/chat/completions", json=chat(stream=True), headers=auth)
    assert streamed.status_code == 200 and "data: [DONE]" in streamed.text
    assert streamed.headers["x-ratelimit-remaining-requests"] == "1"
    assert queued.status_code == 202 and queued.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.status_code == 429


async def test_messages_refusal_is_anthropics_rate_limit_error(settings, worker):
    _, key = await new_tenant(settings, policy={"rate_limits": {"requests_per_minute": 1}})
    auth = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    message = {"model": "claude-haiku-4.5@anthropic", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
    async with running_gateway(settings) as client:
        ok = await client.post("/v1/messages", json=message, headers=auth)
        refused = await client.post("/v1/messages", json=message, headers=auth)
    assert ok.status_code == 200, ok.text
    assert ok.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.status_code == 429
    body = refused.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert "requests per minute" in body["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 1


async def test_a_refused_request_does_not_burn_its_idempotency_key(settings, worker):
    _, auth = await tenant_client(settings, {"requests_per_minute": 1})
    async with running_gateway(settings) as client:
        assert (await client.post("/v1/chat/completions", json=chat(), headers=auth)).status_code == 200
        keyed = {**auth, "Idempotency-Key": "retry-me"}
        refused = await client.post("/v1/chat/completions", json=chat(), headers=keyed)
        again = await client.post("/v1/chat/completions", json=chat(), headers=keyed)
    assert refused.status_code == again.status_code == 429
    assert "idempotent-replayed" not in again.headers  # checked again, not replayed


async def test_no_limits_means_no_rate_limit_call_to_redis(settings, worker):
    redis = Redis.from_url(settings.redis_url)
    sha = hashlib.sha1(rate_limits._GCRA.encode(), usedforsecurity=False).hexdigest()
    try:
        await redis.script_flush()
        _, auth = await tenant_client(settings)
        async with running_gateway(settings) as client:
            r = await client.post("/v1/chat/completions", json=chat(), headers=auth)
        assert r.status_code == 200, r.text
        assert not any(h.startswith("x-ratelimit-") for h in r.headers)
        assert await redis.script_exists(sha) == [False]  # the limiter's script never ran
        assert await redis.keys(f"{rate_limits.KEY_PREFIX}:*") == []
    finally:
        await redis.aclose()


@pytest.mark.parametrize("body", [
    chat(max_tokens=10**30), chat(max_tokens=-1), chat(max_tokens="100"), chat(max_completion_tokens=1e300),
    chat(text="x" * 200_000, max_tokens=1),
])
async def test_hostile_input_cannot_crash_the_limiter(settings, worker, body):
    _, auth = await tenant_client(settings, {"tokens_per_minute": 1000, "requests_per_minute": 1000})
    async with running_gateway(settings) as client:
        r = await client.post("/v1/chat/completions", json=body, headers=auth)
    assert r.status_code in (400, 429), r.text


def batch_line(custom_id: str, **body: Any) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
                         "body": {**chat(), **body}}) + b"\n"


async def start_batch(client: httpx.AsyncClient, auth: dict[str, str], lines: list[bytes]) -> str:
    up = await client.post("/v1/files", headers=auth, data={"purpose": "batch"},
                           files={"file": ("requests.jsonl", b"".join(lines), "application/jsonl")})
    assert up.status_code == 200, up.text
    b = await client.post("/v1/batches", headers=auth, json={
        "input_file_id": up.json()["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"})
    assert b.status_code == 200, b.text
    return str(b.json()["id"])


async def batch_counts(client: httpx.AsyncClient, auth: dict[str, str], batch_id: str,
                       until: Any, timeout_s: float = 30) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        b = (await client.get(f"/v1/batches/{batch_id}", headers=auth)).json()
        if until(b):
            return dict(b)
        assert loop.time() < deadline, b
        await asyncio.sleep(0.1)


async def test_batch_lines_do_not_consume_the_interactive_limits(settings, worker):
    _, auth = await tenant_client(settings, {"requests_per_minute": 1, "tokens_per_minute": 2000})
    async with running_gateway(settings) as client:
        batch_id = await start_batch(client, auth, [batch_line(f"r{i}") for i in range(3)])
        done = await batch_counts(client, auth, batch_id, lambda b: b["status"] == "completed")
        r = await client.post("/v1/chat/completions", json=chat(max_tokens=10), headers=auth)
    assert done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    assert r.status_code == 200, r.text
    assert r.headers["x-ratelimit-remaining-requests"] == "0"


@pytest.mark.parametrize(("limits", "key_limits", "body"), [
    ({"batch_requests_per_minute": 2}, None, {}),
    ({"batch_tokens_per_minute": 2500}, None, {"max_tokens": 1000}),  # about 1,050 tokens a line: two fit
    ({}, {"batch_requests_per_minute": 2}, {}),  # the limit of the key that created the batch
])
async def test_batch_lines_over_their_limit_wait_and_never_fail(settings, worker, limits, key_limits, body):
    # The interactive limit is tight too: a batch line must neither take from it nor be held by it.
    _, auth = await tenant_client(settings, {"requests_per_minute": 1, **limits}, key_limits)
    async with running_gateway(settings) as client:
        batch_id = await start_batch(client, auth, [batch_line(f"r{i}", **body) for i in range(5)])
        first = await batch_counts(client, auth, batch_id, lambda b: b["request_counts"]["completed"] >= 2)
        await asyncio.sleep(2.5)  # two more supervisor ticks: nothing more may be released this minute
        later = (await client.get(f"/v1/batches/{batch_id}", headers=auth)).json()
        r = await client.post("/v1/chat/completions", json=chat(max_tokens=10), headers=auth)
        await client.post(f"/v1/batches/{batch_id}/cancel", headers=auth)
    assert first["status"] == later["status"] == "in_progress"
    assert later["request_counts"] == {"total": 5, "completed": 2, "failed": 0}
    [row] = await execute(settings, "SELECT count(*) AS n FROM jobs WHERE batch_id = $1", batch_id)
    assert row["n"] == 2  # the other three lines are not even queued yet
    assert r.status_code == 200, r.text


async def test_the_limiter_fails_closed_when_redis_is_down():
    from types import SimpleNamespace

    from gateway.rate_limits import check_rate_limits
    from shared.chat.request import validate_chat_request
    from shared.db.tenants import KeyOwner, TenantRow
    from shared.errors import ServiceUnavailable
    from shared.routing.policy import TenantPolicy
    from tests.harness import free_port

    dead = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    st: Any = SimpleNamespace(res=SimpleNamespace(redis=dead))
    policy = {"rate_limits": {"requests_per_minute": 5}}
    owner = KeyOwner(uuid.uuid4(), TenantRow(uuid.uuid4(), "acme", policy))
    try:
        with pytest.raises(ServiceUnavailable):
            await check_rate_limits(st, owner, TenantPolicy.from_json(policy), validate_chat_request(chat()))
        # Without limits the limiter never asks Redis, so nothing fails.
        assert await check_rate_limits(st, owner, TenantPolicy(), validate_chat_request(chat())) == {}
    finally:
        await dead.aclose()

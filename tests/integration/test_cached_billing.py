"""Prompt caching billed end to end: gateway -> worker -> simulated provider (which caches as the
provider documents) -> receipt, audit event and response."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from shared.catalog.seed import load_seed
from shared.catalog.types import Model
from shared.receipts.types import money
from shared.settings import Settings
from shared.signing import public_keys, verify
from tests.harness import new_tenant, running_gateway, running_worker

pytestmark = pytest.mark.integration

MODELS = {m.slug: m for m, _ in load_seed().models}
CLAUDE = "claude-sonnet-4.5@anthropic"
GPT = "gpt-4.1@openai"
DEEPSEEK = "deepseek-v4-flash@deepseek"
EPHEMERAL = {"type": "ephemeral"}


@pytest.fixture
async def system(settings: Settings, sim: httpx.AsyncClient):
    tenant_id, key = await new_tenant(settings)
    async with running_worker(settings), running_gateway(settings) as client:
        yield client, {"Authorization": f"Bearer {key}"}, tenant_id


def manual() -> str:
    """About 2,000 tokens, different in every test run: the simulator's cache outlives a test."""
    return f"Operations manual {uuid.uuid4()}. " + "Check the valve, log the pressure, then report. " * 160


def expected_cost(model: Model, receipt: dict[str, Any]) -> str:
    usage = receipt["usage"]
    cached, written = usage.get("cached_input_tokens", 0), usage.get("cache_write_tokens", 0)
    price = {name: Decimal(str(getattr(model, name))) for name in (
        "input_usd_per_mtok", "cached_input_usd_per_mtok", "cache_write_usd_per_mtok", "output_usd_per_mtok")
        if getattr(model, name) is not None}
    total = ((usage["input_tokens"] - cached - written) * price["input_usd_per_mtok"]
             + cached * price.get("cached_input_usd_per_mtok", price["input_usd_per_mtok"])
             + written * price.get("cache_write_usd_per_mtok", price["input_usd_per_mtok"])
             + usage["output_tokens"] * price["output_usd_per_mtok"])
    return money(total / 1_000_000)


def full_price(model: Model, receipt: dict[str, Any]) -> Decimal:
    assert model.input_usd_per_mtok is not None and model.output_usd_per_mtok is not None
    usage = receipt["usage"]
    return (usage["input_tokens"] * Decimal(str(model.input_usd_per_mtok))
            + usage["output_tokens"] * Decimal(str(model.output_usd_per_mtok))) / 1_000_000


async def call(client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]) -> tuple[dict, dict]:
    r = await client.post("/v1/chat/completions", json=body, headers=auth)
    assert r.status_code == 200, r.text
    answer = r.json()
    receipt = (await client.get(f"/v1/receipts/{answer['ainfera']['receipt_id']}", headers=auth)).json()
    return answer, receipt


def claude_request(text: str, question: str) -> dict[str, Any]:
    return {"model": CLAUDE, "max_tokens": 64, "messages": [
        {"role": "system", "content": [{"type": "text", "text": text, "cache_control": EPHEMERAL}]},
        {"role": "user", "content": question}]}


async def test_a_tenants_cached_claude_prompt_is_billed_at_the_cached_price(system, settings):
    client, auth, _ = system
    model, text = MODELS[CLAUDE], manual()
    first_answer, first = await call(client, auth, claude_request(text, "Summarise the manual."))
    answer, second = await call(client, auth, claude_request(text, "What comes after the valve?"))

    # The first call wrote the prefix to the cache, at the cache-write price.
    assert first["usage"]["cache_write_tokens"] > 1024 and "cached_input_tokens" not in first["usage"]
    assert first["cost_usd"] == expected_cost(model, first) == first_answer["ainfera"]["cost_usd"]
    # The second read it: billed at the cached price, strictly below the full price.
    usage = second["usage"]
    assert usage["cached_input_tokens"] == first["usage"]["cache_write_tokens"]
    assert "cache_write_tokens" not in usage
    assert second["cost_usd"] == expected_cost(model, second) == answer["ainfera"]["cost_usd"]
    assert Decimal(second["cost_usd"]) < full_price(model, second)
    # prompt_tokens counts the cached tokens too (OpenAI's convention), shown in OpenAI's shape.
    assert answer["usage"]["prompt_tokens"] == usage["input_tokens"]
    assert answer["usage"]["prompt_tokens_details"]["cached_tokens"] == usage["cached_input_tokens"]

    # The receipt's signature covers the split; so does the audit event.
    keys = public_keys((await client.get("/.well-known/jwks.json")).json())
    assert verify(second, keys) is None
    assert verify({**second, "usage": {**usage, "cached_input_tokens": 0}}, keys) == "signature does not match"
    conn = await asyncpg.connect(settings.session_database_url)
    try:
        event = await conn.fetchrow("SELECT payload FROM audit_events WHERE job_id = $1", answer["ainfera"]["job_id"])
        row = await conn.fetchrow("SELECT cached_input_tokens, cache_write_tokens FROM receipts WHERE id = $1",
                                  second["id"])
    finally:
        await conn.close()
    assert orjson.loads(event["payload"])["usage"] == usage
    assert (row["cached_input_tokens"], row["cache_write_tokens"]) == (usage["cached_input_tokens"], 0)


async def test_a_streamed_cached_claude_call_is_billed_the_same_way(system):
    client, auth, _ = system
    model, text = MODELS[CLAUDE], manual()
    await call(client, auth, claude_request(text, "Summarise the manual."))
    async with client.stream("POST", "/v1/chat/completions", headers=auth,
                             json={**claude_request(text, "And the pressure?"), "stream": True}) as r:
        assert r.status_code == 200
        lines = [line async for line in r.aiter_lines() if line.startswith("data: {")]
    receipt_id = orjson.loads(lines[-1].removeprefix("data: "))["ainfera"]["receipt_id"]
    receipt = (await client.get(f"/v1/receipts/{receipt_id}", headers=auth)).json()
    assert receipt["streamed"] is True and receipt["usage"]["cached_input_tokens"] > 1024
    assert receipt["cost_usd"] == expected_cost(model, receipt)


def chat(model: str, text: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "system", "content": text},
                                         {"role": "user", "content": "Summarise the manual."}]}


async def test_openais_automatic_cache_is_billed_at_the_cached_price(system):
    client, auth, _ = system
    model, text = MODELS[GPT], manual()
    _, first = await call(client, auth, chat(GPT, text))
    answer, second = await call(client, auth, chat(GPT, text))
    assert "cached_input_tokens" not in first["usage"]
    cached = second["usage"]["cached_input_tokens"]
    assert cached >= 1024 and cached % 128 == 0 and cached <= second["usage"]["input_tokens"]
    assert answer["usage"]["prompt_tokens_details"]["cached_tokens"] == cached
    assert second["cost_usd"] == expected_cost(model, second)
    assert Decimal(second["cost_usd"]) < full_price(model, second) == Decimal(first["cost_usd"])


async def test_deepseeks_cache_hits_are_billed_at_its_cache_hit_price(system):
    client, auth, _ = system
    model, text = MODELS[DEEPSEEK], manual()
    await call(client, auth, chat(DEEPSEEK, text))
    answer, second = await call(client, auth, chat(DEEPSEEK, text))
    assert second["usage"]["cached_input_tokens"] == second["usage"]["input_tokens"]  # the whole prompt hit
    assert answer["usage"]["prompt_tokens_details"] == {"cached_tokens": second["usage"]["input_tokens"]}
    assert second["cost_usd"] == expected_cost(model, second)
    assert Decimal(second["cost_usd"]) < full_price(model, second)

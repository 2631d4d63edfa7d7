"""The simulator refuses what each provider's documented rules refuse, with the error bodies the
researched rules file quotes (`error_examples`): the simulator and the research cannot drift apart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.catalog.param_rules import rule_book
from shared.simulator.server import create_app

OPENAI = "/api.openai.com/v1/chat/completions"
ANTHROPIC = "/api.anthropic.com/v1/messages"
BEARER = {"Authorization": "Bearer sim-key"}
ANTHROPIC_HEADERS = {"x-api-key": "sim-key", "anthropic-version": "2023-06-01"}
HI = [{"role": "user", "content": "Hi"}]
TOOLS = [{"name": "f", "input_schema": {"type": "object"}}]


@pytest.fixture
async def sim() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(latency_ms=0))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield client


# Rule id in the rules file's error_examples -> a request that breaks that rule.
BREAKING: dict[tuple[str, str], dict[str, Any]] = {
    ("openai", "max_tokens_unsupported"): {"model": "gpt-5.5", "messages": HI, "max_tokens": 64},
    ("openai", "temperature_default_only"): {"model": "gpt-5.5", "messages": HI, "temperature": 0.2},
    ("openai", "logprobs_unsupported"): {"model": "o4-mini", "messages": HI, "logprobs": True},
    ("openai", "reasoning_effort_unsupported"): {"model": "gpt-4o", "messages": HI, "reasoning_effort": "low"},
    ("anthropic", "temperature_top_p_exclusive"):
        {"model": "claude-sonnet-4-5", "messages": HI, "max_tokens": 64, "temperature": 0.5, "top_p": 0.9},
    ("anthropic", "temperature_default_only"):
        {"model": "claude-opus-4-8", "messages": HI, "max_tokens": 64, "temperature": 0.5},
    ("anthropic", "thinking_budget_too_small"):
        {"model": "claude-sonnet-4-5", "messages": HI, "max_tokens": 4096,
         "thinking": {"type": "enabled", "budget_tokens": 512}},
    ("anthropic", "thinking_budget_exceeds_max_tokens"):
        {"model": "claude-sonnet-4-5", "messages": HI, "max_tokens": 2048,
         "thinking": {"type": "enabled", "budget_tokens": 2048}},
    ("anthropic", "thinking_enabled_unsupported"):
        {"model": "claude-opus-4-8", "messages": HI, "max_tokens": 4096,
         "thinking": {"type": "enabled", "budget_tokens": 2048}},
    ("anthropic", "thinking_forced_tool_choice"):
        {"model": "claude-sonnet-4-5", "messages": HI, "max_tokens": 4096, "tools": TOOLS,
         "tool_choice": {"type": "any"}, "thinking": {"type": "enabled", "budget_tokens": 2048}},
    ("anthropic", "temperature_with_thinking"):
        {"model": "claude-sonnet-4-5", "messages": HI, "max_tokens": 4096, "temperature": 0.5,
         "thinking": {"type": "enabled", "budget_tokens": 2048}},
}
EXAMPLES = [(provider, example) for provider in ("openai", "anthropic")
            for example in rule_book().error_examples(provider)]


def test_every_researched_error_of_openai_and_anthropic_is_enforced():
    """A new researched error example needs its rule enforced (and listed above), or this fails."""
    assert {(p, e.rule) for p, e in EXAMPLES} - {("openai", "reasoning_effort_unsupported_value")} == set(BREAKING)


@pytest.mark.parametrize(("provider", "example"), EXAMPLES, ids=[f"{p}-{e.rule}" for p, e in EXAMPLES])
async def test_the_simulator_answers_a_broken_rule_with_the_providers_own_error(sim, provider, example):
    if (provider, example.rule) not in BREAKING:
        pytest.skip("the effort check answers in the catalog-cited wording (test_simulator.py)")
    path, headers = (OPENAI, BEARER) if provider == "openai" else (ANTHROPIC, ANTHROPIC_HEADERS)
    r = await sim.post(path, json=BREAKING[provider, example.rule], headers=headers)
    assert r.status_code == example.status
    assert r.json()["error"]["message"] == example.body["error"]["message"]
    if provider == "openai":
        assert r.json()["error"].get("code") == example.body["error"].get("code")


@pytest.mark.parametrize("body", [
    {"model": "gpt-5.5", "messages": HI, "max_completion_tokens": 64, "temperature": 1},
    {"model": "gpt-4o", "messages": HI, "max_tokens": 64, "temperature": 0.2, "logprobs": True},
    {"model": "gpt-4.1", "messages": HI, "response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}}},
])
async def test_what_the_rules_allow_is_answered(sim, body):
    r = await sim.post(OPENAI, json=body, headers=BEARER)
    assert r.status_code == 200, r.text


async def test_a_json_schema_answer_follows_the_schema(sim):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}, "required": ["a"]}
    body = {"model": "gpt-4.1", "messages": HI,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}
    r = await sim.post(OPENAI, json=body, headers=BEARER)
    assert r.json()["choices"][0]["message"]["content"] == '{"a":1}'


async def test_a_model_without_json_schema_refuses_it(sim):
    body = {"model": "llama-3.3-70b-versatile", "messages": HI,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}}
    r = await sim.post("/api.groq.com/openai/v1/chat/completions", json=body, headers=BEARER)
    assert r.status_code == 400 and r.json()["error"]["param"] == "response_format"


async def test_a_text_only_model_refuses_an_image(sim):
    part = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    body = {"model": "gpt-oss-120b", "messages": [{"role": "user", "content": [part]}]}
    r = await sim.post("/api.groq.com/openai/v1/chat/completions", json={**body, "model": "openai/gpt-oss-120b"},
                       headers=BEARER)
    assert r.status_code == 400 and "image_url" in r.json()["error"]["message"]


async def test_the_bodies_received_are_kept_for_tests_to_read(sim):
    await sim.post(OPENAI, json={"model": "gpt-4.1", "messages": HI, "max_tokens": 5}, headers=BEARER)
    [entry] = (await sim.get("/_sim/requests")).json()["requests"]
    assert entry == {"provider": "openai", "model": "gpt-4.1",
                     "body": {"model": "gpt-4.1", "messages": HI, "max_tokens": 5}}
    await sim.delete("/_sim/stats")
    assert (await sim.get("/_sim/requests")).json()["requests"] == []

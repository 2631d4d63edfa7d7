"""The simulated providers' prompt caches report usage the way each provider documents it."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.simulator.prompt_cache import PromptCache
from shared.simulator.server import SimulatorApp, create_app

ANTHROPIC = "/api.anthropic.com/v1/messages"
OPENAI = "/api.openai.com/v1/chat/completions"
DEEPSEEK = "/api.deepseek.com/chat/completions"
GROQ = "/api.groq.com/openai/v1/chat/completions"
ANTHROPIC_HEADERS = {"x-api-key": "sim-key", "anthropic-version": "2023-06-01"}
BEARER = {"Authorization": "Bearer sim-key"}
SONNET = "claude-sonnet-4-5"
HAIKU = "claude-haiku-4-5"
EPHEMERAL = {"type": "ephemeral"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(clock: Clock) -> SimulatorApp:
    app = create_app(latency_ms=0)
    app.prompt_cache = PromptCache(clock=clock)
    return app


@pytest.fixture
async def sim(app: SimulatorApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
        yield client


def tokens(text: str) -> int:
    """One message's tokens by the simulator's rule (answers.py)."""
    return math.ceil(len(text) / 4) + 4


def document(chars: int, seed: str = "doc") -> str:
    return (seed + " lorem ipsum dolor sit amet ") * (chars // (len(seed) + 23)) + seed


def cached_system(text: str, model: str = SONNET, question: str = "Summarise it.", **control: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 64,
            "system": [{"type": "text", "text": text, "cache_control": {**EPHEMERAL, **control}}],
            "messages": [{"role": "user", "content": question}]}


async def usage_of(sim: httpx.AsyncClient, body: dict[str, Any], path: str = ANTHROPIC,
                   headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await sim.post(path, headers=headers or (ANTHROPIC_HEADERS if path == ANTHROPIC else BEARER), json=body)
    assert response.status_code == 200, response.text
    usage: dict[str, Any] = response.json()["usage"]
    return usage


# --- Anthropic: explicit breakpoints ------------------------------------------------------


async def test_a_marked_prefix_is_written_once_then_read(sim: httpx.AsyncClient) -> None:
    system = document(6000)
    first = await usage_of(sim, cached_system(system))
    second = await usage_of(sim, cached_system(system, question="Now list its claims."))
    assert first["cache_creation_input_tokens"] == tokens(system) and first["cache_read_input_tokens"] == 0
    assert first["input_tokens"] == tokens("Summarise it.")
    assert second["cache_read_input_tokens"] == tokens(system) and second["cache_creation_input_tokens"] == 0
    assert second["input_tokens"] == tokens("Now list its claims.")


async def test_a_prefix_under_the_minimum_is_not_cached(sim: httpx.AsyncClient) -> None:
    system = document(3000)  # about 750 tokens: under Sonnet's 1024
    for _ in range(2):
        usage = await usage_of(sim, cached_system(system))
        assert (usage["cache_creation_input_tokens"], usage["cache_read_input_tokens"]) == (0, 0)
        assert usage["input_tokens"] == tokens(system) + tokens("Summarise it.")


async def test_haiku_needs_a_longer_prefix(sim: httpx.AsyncClient) -> None:
    system = document(6000)  # about 1500 tokens: enough for Sonnet, not for Haiku 4.5's 4096
    assert (await usage_of(sim, cached_system(system, model=HAIKU)))["cache_creation_input_tokens"] == 0
    assert (await usage_of(sim, cached_system(system)))["cache_creation_input_tokens"] == tokens(system)
    longer = document(18000)  # about 4500 tokens
    assert (await usage_of(sim, cached_system(longer, model=HAIKU)))["cache_creation_input_tokens"] == tokens(longer)


async def test_an_entry_lives_five_minutes_from_its_last_use(sim: httpx.AsyncClient, clock: Clock) -> None:
    system = document(6000)
    await usage_of(sim, cached_system(system))
    clock.now += 299
    assert (await usage_of(sim, cached_system(system)))["cache_read_input_tokens"] > 0  # and refreshed
    clock.now += 299
    assert (await usage_of(sim, cached_system(system)))["cache_read_input_tokens"] > 0
    clock.now += 301
    usage = await usage_of(sim, cached_system(system))
    assert usage["cache_read_input_tokens"] == 0 and usage["cache_creation_input_tokens"] == tokens(system)


async def test_an_hour_long_entry_outlives_five_minutes(sim: httpx.AsyncClient, clock: Clock) -> None:
    system = document(6000)
    await usage_of(sim, cached_system(system, ttl="1h"))
    clock.now += 1800
    assert (await usage_of(sim, cached_system(system, ttl="1h")))["cache_read_input_tokens"] == tokens(system)


async def test_caches_are_per_api_key_and_model(sim: httpx.AsyncClient) -> None:
    system = document(6000)
    await usage_of(sim, cached_system(system))
    other_key = {**ANTHROPIC_HEADERS, "x-api-key": "another-org"}
    assert (await usage_of(sim, cached_system(system), headers=other_key))["cache_read_input_tokens"] == 0
    assert (await usage_of(sim, cached_system(system, model="claude-opus-4-7")))["cache_read_input_tokens"] == 0


async def test_a_conversation_reads_the_previous_turn_and_writes_the_new_one(sim: httpx.AsyncClient) -> None:
    context = document(6000)
    turn1 = [{"role": "user", "content": [{"type": "text", "text": context, "cache_control": EPHEMERAL}]}]
    body: dict[str, Any] = {"model": SONNET, "max_tokens": 64, "messages": turn1}
    assert (await usage_of(sim, body))["cache_creation_input_tokens"] == tokens(context)
    turn2 = [{"role": "user", "content": [{"type": "text", "text": context}]},
             {"role": "assistant", "content": "Noted."},
             {"role": "user", "content": [{"type": "text", "text": "And then?", "cache_control": EPHEMERAL}]}]
    usage = await usage_of(sim, {**body, "messages": turn2})
    assert usage["cache_read_input_tokens"] == tokens(context)  # found by looking back from the new breakpoint
    assert usage["cache_creation_input_tokens"] == tokens("Noted.") + tokens("And then?")
    assert usage["input_tokens"] == 0


async def test_a_changed_tool_misses_the_cache(sim: httpx.AsyncClient) -> None:
    system = document(6000)
    tool = {"name": "lookup", "input_schema": {"type": "object", "properties": {}}}
    await usage_of(sim, {**cached_system(system), "tools": [tool]})
    assert (await usage_of(sim, {**cached_system(system), "tools": [tool]}))["cache_read_input_tokens"] > 0
    changed = {**tool, "description": "Look something up."}
    assert (await usage_of(sim, {**cached_system(system), "tools": [changed]}))["cache_read_input_tokens"] == 0


@pytest.mark.parametrize(
    ("control", "message"),
    [({"type": "persistent"}, "cache_control.type"), ({"type": "ephemeral", "ttl": "2h"}, "cache_control.ttl")],
)
async def test_a_malformed_cache_control_is_refused(sim: httpx.AsyncClient, control: dict[str, Any],
                                                    message: str) -> None:
    body = cached_system("Be terse.")
    body["system"][0]["cache_control"] = control
    response = await sim.post(ANTHROPIC, headers=ANTHROPIC_HEADERS, json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


async def test_more_than_four_breakpoints_are_refused(sim: httpx.AsyncClient) -> None:
    blocks = [{"type": "text", "text": f"part {i}", "cache_control": EPHEMERAL} for i in range(5)]
    body = {"model": SONNET, "max_tokens": 64, "system": blocks, "messages": [{"role": "user", "content": "Hi"}]}
    response = await sim.post(ANTHROPIC, headers=ANTHROPIC_HEADERS, json=body)
    assert response.status_code == 400 and "maximum of 4" in response.json()["error"]["message"]


async def test_a_streamed_answer_reports_the_cache_in_message_start(sim: httpx.AsyncClient) -> None:
    system = document(6000)
    await usage_of(sim, cached_system(system))
    async with sim.stream("POST", ANTHROPIC, headers=ANTHROPIC_HEADERS,
                          json={**cached_system(system), "stream": True}) as response:
        text = "".join([chunk async for chunk in response.aiter_text()])
    start = next(line for line in text.splitlines() if line.startswith("data: ") and "message_start" in line)
    assert f'"cache_read_input_tokens":{tokens(system)}' in start


# --- OpenAI-style automatic caching -------------------------------------------------------


def chat(text: str, model: str = "gpt-4.1") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "system", "content": "You are terse."},
                                         {"role": "user", "content": text}]}


async def test_openai_caches_long_prompts_in_128_token_steps(sim: httpx.AsyncClient) -> None:
    text = document(6000)
    first = await usage_of(sim, chat(text), OPENAI)
    second = await usage_of(sim, chat(text), OPENAI)
    assert first["prompt_tokens_details"]["cached_tokens"] == 0
    prompt = second["prompt_tokens"]
    assert prompt == tokens("You are terse.") + tokens(text)
    assert second["prompt_tokens_details"]["cached_tokens"] == prompt // 128 * 128


async def test_openai_reads_only_the_shared_prefix(sim: httpx.AsyncClient) -> None:
    shared = document(6000)
    await usage_of(sim, chat(shared + " Summarise it."), OPENAI)
    usage = await usage_of(sim, chat(shared + " Now list every claim it makes, one per line."), OPENAI)
    divergence = tokens("You are terse.") + 4 + (len(shared) + 1) // 4  # whole 4-character pieces both share
    assert usage["prompt_tokens_details"]["cached_tokens"] == divergence // 128 * 128


async def test_openai_does_not_cache_short_prompts(sim: httpx.AsyncClient) -> None:
    for _ in range(2):
        usage = await usage_of(sim, chat(document(3000)), OPENAI)
        assert usage["prompt_tokens_details"]["cached_tokens"] == 0


async def test_deepseek_reports_hits_in_its_own_fields(sim: httpx.AsyncClient) -> None:
    body = chat(document(400), model="deepseek-v4-flash")
    first = await usage_of(sim, body, DEEPSEEK)
    second = await usage_of(sim, body, DEEPSEEK)
    assert "prompt_tokens_details" not in second
    assert (first["prompt_cache_hit_tokens"], first["prompt_cache_miss_tokens"]) == (0, first["prompt_tokens"])
    assert (second["prompt_cache_hit_tokens"], second["prompt_cache_miss_tokens"]) == (second["prompt_tokens"], 0)


async def test_providers_without_documented_caching_report_none(sim: httpx.AsyncClient) -> None:
    body = chat(document(6000), model="llama-3.3-70b-versatile")
    for _ in range(2):
        assert (await usage_of(sim, body, GROQ))["prompt_tokens_details"]["cached_tokens"] == 0


def test_the_cache_is_bounded() -> None:
    from shared.simulator.prompt_cache import cache_scope

    cache = PromptCache(max_entries=50)
    text = document(40_000)  # about 10,000 tokens: 70 boundaries of 128 from 1024
    messages = [{"role": "user", "content": text}]
    cache.automatic_usage("openai", cache_scope("h", "k", "m"), messages, None)
    assert len(cache) == 50  # the shortest prefixes went first
    again = cache.automatic_usage("openai", cache_scope("h", "k", "m"), messages, None)
    assert again is not None and again.read == tokens(text) // 128 * 128

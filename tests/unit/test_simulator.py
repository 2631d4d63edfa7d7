"""The simulated provider answers like each catalog provider, through ASGI (no sockets)."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.simulator.answers import output_ratio
from shared.simulator.knowledge import CATALOG_FILE, load_knowledge
from shared.simulator.server import SimulatorApp, create_app

CATALOG = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
KNOWLEDGE = load_knowledge()
GROQ = "/api.groq.com/openai/v1/chat/completions"
ANTHROPIC = "/api.anthropic.com/v1/messages"
BEARER = {"Authorization": "Bearer sim-key"}
ANTHROPIC_HEADERS = {"x-api-key": "sim-key", "anthropic-version": "2023-06-01"}
GROQ_MODEL = "llama-3.3-70b-versatile"
CLAUDE = "claude-sonnet-4-5"


@pytest.fixture
def app() -> SimulatorApp:
    return create_app(latency_ms=0)


@pytest.fixture
async def sim(app: SimulatorApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield client


def chat(text: str = "Say hello.", model: str = GROQ_MODEL, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def message(text: str = "Say hello.", model: str = CLAUDE, **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": text}], **extra}


# --- knowledge and routes ----------------------------------------------------------------


def test_knowledge_covers_every_catalog_provider_and_model() -> None:
    assert {p.name for p in KNOWLEDGE.providers} == {p["name"] for p in CATALOG["providers"]}
    for row in CATALOG["models"]:
        facts = next(p for p in KNOWLEDGE.providers if p.name == row["provider"])
        assert (row["provider_model_name"] or row["slug"]) in facts.models


def test_knowledge_keeps_real_host_and_exact_path() -> None:
    routes = set(KNOWLEDGE.by_route)
    assert "/api.groq.com/openai/v1/chat/completions" in routes
    assert "/api.deepseek.com/chat/completions" in routes
    assert "/api.anthropic.com/v1/messages" in routes
    anthropic = KNOWLEDGE.by_route[ANTHROPIC]
    assert anthropic.auth_header == "x-api-key"
    assert anthropic.required_headers == {"anthropic-version": "2023-06-01"}


@pytest.mark.parametrize("provider", CATALOG["providers"], ids=lambda p: p["name"])
async def test_every_provider_path_answers_each_of_its_models(sim: httpx.AsyncClient, provider: dict[str, Any]) -> None:
    url = provider["chat_completions_url"].removeprefix("https://")
    names = [m["provider_model_name"] or m["slug"] for m in CATALOG["models"] if m["provider"] == provider["name"]]
    for name in names:
        if provider["wire_format"] == "anthropic-messages":
            response = await sim.post(f"/{url}", headers=ANTHROPIC_HEADERS, json=message(model=name))
        else:
            response = await sim.post(f"/{url}", headers=BEARER, json=chat(model=name))
        assert response.status_code == 200, response.text
        assert response.json()["model"] == name


async def test_doubled_version_segment_is_an_openai_style_404(sim: httpx.AsyncClient) -> None:
    response = await sim.post("/api.openai.com/v1/v1/chat/completions", headers=BEARER, json=chat(model="gpt-4o"))
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": "Invalid URL (POST /v1/v1/chat/completions)",
            "type": "invalid_request_error",
            "param": None,
            "code": "unknown_url",
        }
    }


async def test_unknown_host_is_a_plain_404(sim: httpx.AsyncClient) -> None:
    response = await sim.post("/api.example.com/v1/chat/completions", headers=BEARER, json=chat())
    assert response.status_code == 404
    assert "error" in response.json()


async def test_wrong_path_on_anthropic_host_is_an_anthropic_404(sim: httpx.AsyncClient) -> None:
    response = await sim.post("/api.anthropic.com/v1/v1/messages", headers=ANTHROPIC_HEADERS, json=message())
    assert response.status_code == 404
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "not_found_error"


async def test_healthz_is_ok(sim: httpx.AsyncClient) -> None:
    response = await sim.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# --- auth and validation -----------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer "}, {"Authorization": "Bearer invalid"}])
async def test_openai_style_401_for_missing_or_invalid_key(sim: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await sim.post(GROQ, headers=headers, json=chat())
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key"
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("key", ["", "invalid"])
async def test_anthropic_style_401_for_missing_or_invalid_key(sim: httpx.AsyncClient, key: str) -> None:
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    response = await sim.post(ANTHROPIC, headers=headers, json=message())
    assert response.status_code == 401
    assert response.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    }


async def test_anthropic_requires_version_header(sim: httpx.AsyncClient) -> None:
    response = await sim.post(ANTHROPIC, headers={"x-api-key": "k"}, json=message())
    assert response.status_code == 400
    assert "anthropic-version" in response.json()["error"]["message"]


async def test_wrong_model_name_is_openai_style_model_not_found(sim: httpx.AsyncClient) -> None:
    response = await sim.post(GROQ, headers=BEARER, json=chat(model="llama-3.3-70b"))
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert error["message"] == "The model `llama-3.3-70b` does not exist or you do not have access to it."


async def test_wrong_model_name_is_anthropic_style_not_found(sim: httpx.AsyncClient) -> None:
    response = await sim.post(ANTHROPIC, headers=ANTHROPIC_HEADERS, json=message(model="claude-sonnet-4.5"))
    assert response.status_code == 404
    assert response.json() == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "model: claude-sonnet-4.5"},
    }


async def test_bad_json_is_400_in_provider_style(sim: httpx.AsyncClient) -> None:
    openai = await sim.post(GROQ, headers={**BEARER, "content-type": "application/json"}, content=b"{nope")
    anthropic = await sim.post(ANTHROPIC, headers=ANTHROPIC_HEADERS, content=b"{nope")
    assert openai.status_code == 400
    assert openai.json()["error"]["type"] == "invalid_request_error"
    assert anthropic.status_code == 400
    assert anthropic.json()["error"]["type"] == "invalid_request_error"


async def test_missing_messages_is_400(sim: httpx.AsyncClient) -> None:
    response = await sim.post(GROQ, headers=BEARER, json={"model": GROQ_MODEL})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"model": CLAUDE, "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
        (message(messages=[{"role": "system", "content": "be terse"}, {"role": "user", "content": "hi"}]), "system"),
        (message(messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]), "alternate"),
        (message(temperature=1.5), "temperature"),
        (message(frequency_penalty=0.5), "Extra inputs"),
        (
            message(
                messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x", "content": "1"}]}]
            ),
            "tool_use_id",
        ),
    ],
    ids=["no-max-tokens", "system-role", "no-alternation", "temperature", "extra-field", "orphan-tool-result"],
)
async def test_anthropic_refuses_what_the_real_api_refuses(
    sim: httpx.AsyncClient, body: dict[str, Any], complaint: str
) -> None:
    response = await sim.post(ANTHROPIC, headers=ANTHROPIC_HEADERS, json=body)
    assert response.status_code == 400
    assert complaint in response.json()["error"]["message"]


async def test_anthropic_accepts_blocks_system_and_tool_turns(sim: httpx.AsyncClient) -> None:
    body = message(
        system="Be terse.",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Paris"}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]},
        ],
    )
    response = await sim.post(ANTHROPIC, headers=ANTHROPIC_HEADERS, json=body)
    assert response.status_code == 200, response.text


# --- deterministic answers ---------------------------------------------------------------


async def test_usage_follows_the_documented_rule(sim: httpx.AsyncClient) -> None:
    body = {
        "model": GROQ_MODEL,
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}],
    }
    response = await sim.post(GROQ, headers=BEARER, json=body)
    usage = response.json()["usage"]
    prompt = (math.ceil(len("You are terse.") / 4) + 4) + (math.ceil(len("Say hello.") / 4) + 4)
    assert usage["prompt_tokens"] == prompt
    assert usage["completion_tokens"] == max(1, math.floor(output_ratio(GROQ_MODEL) * prompt))
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    text = response.json()["choices"][0]["message"]["content"]
    assert len(text.split()) == usage["completion_tokens"]


async def test_same_request_gets_the_same_usage_and_text(sim: httpx.AsyncClient) -> None:
    first = (await sim.post(GROQ, headers=BEARER, json=chat("Tell me about the sea."))).json()
    second = (await sim.post(GROQ, headers=BEARER, json=chat("Tell me about the sea."))).json()
    assert first["usage"] == second["usage"]
    assert first["choices"] == second["choices"]


def test_output_ratio_is_stable_and_bounded() -> None:
    ratios = [output_ratio(name) for p in KNOWLEDGE.providers for name in p.models]
    assert all(0.2 <= r <= 1.5 for r in ratios)
    assert output_ratio(GROQ_MODEL) == output_ratio(GROQ_MODEL)
    assert len(set(ratios)) > 1


async def test_max_tokens_caps_the_answer_with_finish_reason_length(sim: httpx.AsyncClient) -> None:
    long_prompt = "word " * 200
    openai = (await sim.post(GROQ, headers=BEARER, json=chat(long_prompt, max_completion_tokens=3))).json()
    assert openai["usage"]["completion_tokens"] == 3
    assert openai["choices"][0]["finish_reason"] == "length"
    anthropic = (
        await sim.post(ANTHROPIC, headers=ANTHROPIC_HEADERS, json={**message(long_prompt), "max_tokens": 3})
    ).json()
    assert anthropic["usage"]["output_tokens"] == 3
    assert anthropic["stop_reason"] == "max_tokens"


async def test_short_answers_end_with_stop(sim: httpx.AsyncClient) -> None:
    openai = (await sim.post(GROQ, headers=BEARER, json=chat())).json()
    assert openai["choices"][0]["finish_reason"] == "stop"
    assert openai["object"] == "chat.completion"
    anthropic = (await sim.post(ANTHROPIC, headers=ANTHROPIC_HEADERS, json=message())).json()
    assert anthropic["stop_reason"] == "end_turn"
    assert anthropic["type"] == "message"
    assert anthropic["role"] == "assistant"
    assert anthropic["content"][0]["type"] == "text"


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


async def test_tool_directive_answers_with_an_openai_tool_call(sim: httpx.AsyncClient) -> None:
    body = chat("Weather in Paris? [sim:tool]", tools=[WEATHER_TOOL])
    choice = (await sim.post(GROQ, headers=BEARER, json=body)).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function"
    assert call["function"]["name"] == "weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "sim"}


async def test_forced_tool_choice_answers_with_an_anthropic_tool_use(sim: httpx.AsyncClient) -> None:
    tool = {"name": "weather", "input_schema": WEATHER_TOOL["function"]["parameters"]}  # type: ignore[index]
    body = message("Weather in Paris?", tools=[tool], tool_choice={"type": "tool", "name": "weather"})
    answer = (await sim.post(ANTHROPIC, headers=ANTHROPIC_HEADERS, json=body)).json()
    assert answer["stop_reason"] == "tool_use"
    assert answer["content"][0]["type"] == "tool_use"
    assert answer["content"][0]["input"] == {"city": "sim"}
    assert answer["content"][0]["id"].startswith("toolu_")


async def test_tool_choice_none_answers_with_text(sim: httpx.AsyncClient) -> None:
    body = chat("Weather? [sim:tool]", tools=[WEATHER_TOOL], tool_choice="none")
    choice = (await sim.post(GROQ, headers=BEARER, json=body)).json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert "tool_calls" not in choice["message"]

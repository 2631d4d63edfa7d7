"""Adapters against the simulator (in process): what they build is accepted, what comes back parses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.catalog.types import WireFormat
from shared.catalog.urls import route_via
from shared.providers.registry import adapter_for
from shared.providers.types import Completion
from shared.simulator.server import create_app

TARGETS = [
    pytest.param(
        WireFormat.OPENAI_CHAT, "https://api.groq.com/openai/v1/chat/completions",
        "meta-llama/llama-4-scout-17b-16e-instruct", id="groq"
    ),
    pytest.param(
        WireFormat.ANTHROPIC_MESSAGES, "https://api.anthropic.com/v1/messages", "claude-haiku-4-5", id="anthropic"
    ),
]
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(latency_ms=0))) as client:
        yield client


async def roundtrip(
    http: httpx.AsyncClient, wire: WireFormat, url: str, model: str, body: dict[str, Any]
) -> Completion:
    adapter = adapter_for(wire)
    request = adapter.build(url=route_via(url, "http://sim"), api_key="sim-key", upstream_model=model, body=body)
    response = await http.post(request.url, headers=dict(request.headers), content=request.body)
    return adapter.parse(response.status_code, response.headers, response.content)


@pytest.mark.parametrize(("wire", "url", "model"), TARGETS)
async def test_system_prompt_and_text_answer(http: httpx.AsyncClient, wire: WireFormat, url: str, model: str) -> None:
    body = {
        "model": "slug",
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}],
    }
    completion = await roundtrip(http, wire, url, model, body)
    assert completion.input_tokens == 15  # same rule for both formats: 2 x (ceil(chars/4) + 4)
    assert completion.output_tokens >= 1
    assert completion.finish_reason == "stop"
    assert completion.upstream_model == model
    assert len(completion.choices[0]["message"]["content"].split()) == completion.output_tokens


@pytest.mark.parametrize(("wire", "url", "model"), TARGETS)
async def test_max_tokens_cut_reads_as_length(http: httpx.AsyncClient, wire: WireFormat, url: str, model: str) -> None:
    body = {"model": "slug", "messages": [{"role": "user", "content": "tell me more " * 50}], "max_tokens": 2}
    completion = await roundtrip(http, wire, url, model, body)
    assert completion.finish_reason == "length"
    assert completion.output_tokens == 2


@pytest.mark.parametrize(("wire", "url", "model"), TARGETS)
async def test_forced_tool_choice_comes_back_as_tool_calls(
    http: httpx.AsyncClient, wire: WireFormat, url: str, model: str
) -> None:
    body = {
        "model": "slug",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
    }
    completion = await roundtrip(http, wire, url, model, body)
    assert completion.finish_reason == "tool_calls"
    call = completion.choices[0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "sim"}


@pytest.mark.parametrize(("wire", "url", "model"), TARGETS)
async def test_tool_results_and_images_are_accepted(
    http: httpx.AsyncClient, wire: WireFormat, url: str, model: str
) -> None:
    body = {
        "model": "slug",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Where is this, and what is the weather there?"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_9", "content": "sunny, 21C"},
        ],
        "tools": [WEATHER],
        "stop": ["\n\n"],
        "temperature": 0.3,
    }
    completion = await roundtrip(http, wire, url, model, body)
    assert completion.finish_reason == "stop"
    assert completion.input_tokens > 85  # the image counts


@pytest.mark.parametrize(("wire", "url", "model"), TARGETS)
async def test_same_request_same_usage(http: httpx.AsyncClient, wire: WireFormat, url: str, model: str) -> None:
    body = {"model": "slug", "messages": [{"role": "user", "content": "Deterministic?"}]}
    first = await roundtrip(http, wire, url, model, body)
    second = await roundtrip(http, wire, url, model, body)
    assert (first.input_tokens, first.output_tokens) == (second.input_tokens, second.output_tokens)

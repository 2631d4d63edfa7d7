"""The OpenAI-compatible adapter: pass-through build, strict parse."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.catalog.types import WireFormat
from shared.errors import ProviderNotConfigured, UpstreamMalformed
from shared.providers.openai_chat import OpenAIChatAdapter
from shared.providers.registry import adapter_for

ADAPTER = OpenAIChatAdapter()
URL = "https://api.groq.com/openai/v1/chat/completions"


def answer(**overrides: Any) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "llama-3.3-70b-versatile",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }
    body.update(overrides)
    return orjson.dumps({k: v for k, v in body.items() if v is not None})


def test_registry_gives_the_openai_adapter_for_openai_chat() -> None:
    assert isinstance(adapter_for(WireFormat.OPENAI_CHAT), OpenAIChatAdapter)
    assert isinstance(adapter_for("openai-chat"), OpenAIChatAdapter)


def test_build_swaps_in_the_upstream_model_and_keeps_the_rest() -> None:
    body = {
        "model": "llama-3.3-70b@groq",
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0.2,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    request = ADAPTER.build(url=URL, api_key="gsk-secret", upstream_model="llama-3.3-70b-versatile", body=body)
    sent = orjson.loads(request.body)
    assert sent["model"] == "llama-3.3-70b-versatile"
    assert sent["messages"] == body["messages"]
    assert sent["temperature"] == 0.2
    assert sent["tools"] == body["tools"]
    assert "stream" not in sent and "stream_options" not in sent
    assert body["model"] == "llama-3.3-70b@groq"  # the caller's dict is not changed
    assert request.url == URL
    assert request.headers["Authorization"] == "Bearer gsk-secret"
    assert request.headers["Content-Type"] == "application/json"


def test_request_repr_never_shows_the_key_or_prompt() -> None:
    request = ADAPTER.build(
        url=URL, api_key="gsk-secret", upstream_model="m", body={"messages": [{"role": "user", "content": "private"}]}
    )
    assert "gsk-secret" not in repr(request)
    assert "private" not in repr(request)


def test_build_without_a_key_is_provider_not_configured() -> None:
    with pytest.raises(ProviderNotConfigured):
        ADAPTER.build(url=URL, api_key="", upstream_model="m", body={"messages": []})


def test_parse_reads_choices_usage_id_and_model() -> None:
    completion = ADAPTER.parse(200, {}, answer())
    assert completion.choices[0]["message"]["content"] == "Hi."
    assert completion.finish_reason == "stop"
    assert (completion.input_tokens, completion.output_tokens) == (12, 3)
    assert completion.upstream_id == "chatcmpl-1"
    assert completion.upstream_model == "llama-3.3-70b-versatile"


def test_parse_keeps_tool_calls_in_openai_shape() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}
    choices = [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None, "tool_calls": [call]},
            "finish_reason": "tool_calls",
        }
    ]
    completion = ADAPTER.parse(200, {}, answer(choices=choices))
    assert completion.choices[0]["message"]["tool_calls"] == [call]
    assert completion.finish_reason == "tool_calls"


def test_parse_accepts_integral_float_usage() -> None:
    completion = ADAPTER.parse(200, {}, answer(usage={"prompt_tokens": 12.0, "completion_tokens": 3}))
    assert completion.input_tokens == 12


@pytest.mark.parametrize(
    "content",
    [
        b"<html>bad gateway</html>",
        b"[1, 2]",
        answer(choices=[]),
        answer(choices=[{"index": 0}]),
        orjson.dumps({"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}}]}),
        answer(usage={"prompt_tokens": "12", "completion_tokens": 3}),
        answer(usage={"prompt_tokens": True, "completion_tokens": 3}),
        answer(usage={"total_tokens": 15}),
        orjson.dumps({"error": {"message": "upstream overloaded"}}),
    ],
    ids=[
        "html",
        "array",
        "no-choices",
        "choice-without-message",
        "no-usage",
        "string-usage",
        "bool-usage",
        "total-only",
        "error-with-200",
    ],
)
def test_parse_refuses_bodies_it_cannot_trust(content: bytes) -> None:
    with pytest.raises(UpstreamMalformed):
        ADAPTER.parse(200, {}, content)


def test_malformed_message_never_quotes_the_body() -> None:
    with pytest.raises(UpstreamMalformed) as caught:
        ADAPTER.parse(200, {}, b"secret completion text that is not json")
    assert "secret" not in caught.value.message

"""The Anthropic Messages adapter: OpenAI chat-completions in, Anthropic request out, and back."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.catalog.types import WireFormat
from shared.errors import InvalidRequest, UnsupportedByModel, UpstreamMalformed
from shared.providers.anthropic_messages import AnthropicMessagesAdapter
from shared.providers.anthropic_translate import DEFAULT_MAX_TOKENS, STRUCTURED_TOOL
from shared.providers.registry import adapter_for

ADAPTER = AnthropicMessagesAdapter()


class _AnyText(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)

    __hash__ = str.__hash__


ANY_TEXT = _AnyText()
URL = "https://api.anthropic.com/v1/messages"
MODEL = "claude-sonnet-4-5"


def build(model: str = MODEL, **body: Any) -> dict[str, Any]:
    body.setdefault("messages", [{"role": "user", "content": "Hi"}])
    request = ADAPTER.build(url=URL, api_key="sk-ant-secret", upstream_model=model, body={"model": "slug", **body})
    result: dict[str, Any] = orjson.loads(request.body)
    return result


def reply(content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int) -> bytes:
    return orjson.dumps(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 4, **usage},
        }
    )


def test_registry_gives_the_anthropic_adapter_for_anthropic_messages() -> None:
    assert isinstance(adapter_for(WireFormat.ANTHROPIC_MESSAGES), AnthropicMessagesAdapter)


def test_headers_carry_key_version_and_json() -> None:
    request = ADAPTER.build(
        url=URL, api_key="sk-ant-secret", upstream_model=MODEL, body={"messages": [{"role": "user", "content": "Hi"}]}
    )
    assert request.headers["x-api-key"] == "sk-ant-secret"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers


def test_system_and_developer_messages_become_top_level_system() -> None:
    sent = build(
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hi"},
        ]
    )
    assert sent["system"] == "Be terse.\n\nAnswer in French."
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert sent["model"] == MODEL


def test_max_tokens_defaults_and_prefers_max_completion_tokens() -> None:
    assert build()["max_tokens"] == DEFAULT_MAX_TOKENS
    assert build(max_tokens=100)["max_tokens"] == 100
    assert build(max_tokens=100, max_completion_tokens=50)["max_tokens"] == 50


def test_sampling_fields_are_translated() -> None:
    # Ranges and exclusivity are settled before translation, by the model's rules (test_normalise.py).
    sent = build(temperature=0.7, stop="END", user="tenant-7", frequency_penalty=0.3, seed=4)
    assert sent["temperature"] == 0.7
    assert build(top_p=0.9)["top_p"] == 0.9
    assert sent["stop_sequences"] == ["END"]
    assert sent["metadata"] == {"user_id": "tenant-7"}
    assert "frequency_penalty" not in sent and "seed" not in sent
    assert build(stop=["a", "b"])["stop_sequences"] == ["a", "b"]


def test_images_become_base64_or_url_sources() -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
    ]
    sent = build(messages=[{"role": "user", "content": content}])
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_tool_calls_and_results_become_tool_use_and_tool_result_blocks() -> None:
    sent = build(
        messages=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "functions.weather:2",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "functions.weather:2", "content": [{"type": "text", "text": "rain"}]},
            {"role": "user", "content": "Thanks, and tomorrow?"},
        ]
    )
    assert [turn["role"] for turn in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "functions_weather_2", "name": "weather", "input": {"city": "Rome"}},
    ]
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "functions_weather_2", "content": "rain"},
        {"type": "text", "text": "Thanks, and tomorrow?"},
    ]


def test_consecutive_user_messages_are_merged_into_one_turn() -> None:
    sent = build(messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


def test_tools_become_input_schemas() -> None:
    parameters = {"type": "object", "properties": {"city": {"type": "string"}}}
    sent = build(
        tools=[
            {
                "type": "function",
                "function": {"name": "weather", "description": "Weather now", "parameters": parameters},
            },
            {"type": "function", "function": {"name": "ping"}},
        ]
    )
    assert sent["tools"] == [
        {"name": "weather", "description": "Weather now", "input_schema": parameters},
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
    ]


TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        (None, None, None),
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ({"type": "function", "function": {"name": "weather"}}, None, {"type": "tool", "name": "weather"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ],
)
def test_tool_choice_is_translated(tool_choice: Any, parallel: Any, expected: Any) -> None:
    body: dict[str, Any] = {"tools": TOOLS}
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert build(**body).get("tool_choice") == expected


@pytest.mark.parametrize(
    "body",
    [
        {"n": 2},
        {"logprobs": True},
        {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x"}}]}]},
        {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}]},
    ],
    ids=["n", "logprobs", "audio", "file-id"],
)
def test_what_the_model_cannot_take_is_refused_so_another_model_may_be_tried(body: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedByModel) as e:
        build(**body)
    assert e.value.param


@pytest.mark.parametrize(
    "body",
    [
        {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AA"}}]}
            ]
        },
        {"messages": [{"role": "user", "content": ""}]},
        {"messages": [{"role": "function", "name": "f", "content": "x"}]},
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
    ],
    ids=["tiff", "empty-user", "function-role", "schema-missing"],
)
def test_untranslatable_requests_are_refused_before_sending(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        build(**body)


# A Claude model without native structured output (the rules file's Anthropic defaults).
TOOL_ONLY = "claude-3-7-sonnet-20250219"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA}}


def test_json_schema_is_sent_as_native_structured_output_where_the_model_has_it() -> None:
    request = ADAPTER.build(url=URL, api_key="k", upstream_model=MODEL,
                            body={"messages": [{"role": "user", "content": "Hi"}], "response_format": JSON_SCHEMA})
    sent = orjson.loads(request.body)
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "tools" not in sent and "anthropic-beta" not in request.headers


def test_json_schema_becomes_a_forced_tool_whose_input_is_the_answer() -> None:
    sent = build(TOOL_ONLY, response_format=JSON_SCHEMA)
    assert sent["tools"] == [{"name": STRUCTURED_TOOL, "input_schema": SCHEMA, "description": ANY_TEXT}]
    assert sent["tool_choice"] == {"type": "tool", "name": STRUCTURED_TOOL}
    completion = ADAPTER.parse(200, {}, reply([{"type": "tool_use", "id": "toolu_1", "name": STRUCTURED_TOOL,
                                                "input": {"city": "Paris"}}], stop_reason="tool_use"))
    (choice,) = completion.choices
    assert orjson.loads(choice["message"]["content"]) == {"city": "Paris"}
    assert "tool_calls" not in choice["message"] and choice["finish_reason"] == "stop"


def test_json_schema_beside_the_callers_tools_lets_the_model_pick_one_of_them_or_answer() -> None:
    weather = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    sent = build(TOOL_ONLY, response_format=JSON_SCHEMA, tools=[weather], tool_choice="auto")
    assert [t["name"] for t in sent["tools"]] == ["weather", STRUCTURED_TOOL]
    assert sent["tool_choice"] == {"type": "any"}


def test_json_object_becomes_a_forced_tool_taking_any_object() -> None:
    sent = build(TOOL_ONLY, response_format={"type": "json_object"})
    assert sent["tools"][0]["input_schema"] == {"type": "object"}


def test_a_streamed_structured_answer_arrives_as_text() -> None:
    reader = ADAPTER.stream_reader(input_tokens_estimate=5)
    events = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_1", "model": MODEL,
                                                                "usage": {"input_tokens": 9, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "tool_use", "id": "toolu_1", "name": STRUCTURED_TOOL,
                                                   "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "input_json_delta", "partial_json": '{"city": '}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "input_json_delta", "partial_json": '"Rome"}'}}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                           "usage": {"output_tokens": 7}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    chunks = [c for name, data in events if (c := reader.event(name, orjson.dumps(data).decode()))]
    text = "".join(c[0]["delta"].get("content") or "" for c in chunks)
    assert orjson.loads(text) == {"city": "Rome"}
    assert all("tool_calls" not in c[0]["delta"] for c in chunks)
    assert chunks[-1][0]["finish_reason"] == "stop"


def test_a_pdf_file_part_becomes_a_document_block() -> None:
    part = {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}}
    sent = build(messages=[{"role": "user", "content": [part, {"type": "text", "text": "Summarise"}]}])
    assert sent["messages"][0]["content"][0] == {
        "type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}}


def test_thinking_is_sent_as_given() -> None:
    thinking = {"type": "enabled", "budget_tokens": 2048}
    assert build(thinking=thinking, max_tokens=4096)["thinking"] == thinking


def test_parse_joins_text_blocks_and_reads_usage() -> None:
    completion = ADAPTER.parse(
        200,
        {},
        reply(
            [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}],
            cache_read_input_tokens=5,
            cache_creation_input_tokens=1,
        ),
    )
    assert completion.choices == [
        {"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop", "logprobs": None}
    ]
    assert (completion.input_tokens, completion.output_tokens) == (16, 4)
    assert completion.upstream_id == "msg_1"
    assert completion.upstream_model == MODEL


def test_parse_turns_tool_use_into_tool_calls() -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
    ]
    choice = ADAPTER.parse(200, {}, reply(blocks, "tool_use")).choices[0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    call = choice["message"]["tool_calls"][0]
    assert call == {
        "id": "toolu_1",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
    }


def test_parse_tool_only_answer_has_null_content() -> None:
    blocks = [{"type": "tool_use", "id": "toolu_1", "name": "ping", "input": {}}]
    message = ADAPTER.parse(200, {}, reply(blocks, "tool_use")).choices[0]["message"]
    assert message["content"] is None


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons_map_to_finish_reasons(stop_reason: str, finish_reason: str) -> None:
    completion = ADAPTER.parse(200, {}, reply([{"type": "text", "text": "x"}], stop_reason))
    assert completion.finish_reason == finish_reason


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        orjson.dumps({"type": "message", "content": [{"type": "text", "text": "x"}]}),
        orjson.dumps({"type": "message", "content": [], "usage": {"input_tokens": "1", "output_tokens": 1}}),
        orjson.dumps({"type": "error", "error": {"type": "api_error", "message": "x"}}),
        orjson.dumps({"type": "message", "content": ["text"], "usage": {"input_tokens": 1, "output_tokens": 1}}),
    ],
    ids=["not-json", "no-usage", "string-usage", "error-with-200", "block-not-object"],
)
def test_parse_refuses_bodies_it_cannot_trust(content: bytes) -> None:
    with pytest.raises(UpstreamMalformed):
        ADAPTER.parse(200, {}, content)

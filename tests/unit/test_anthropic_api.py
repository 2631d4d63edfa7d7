"""The Messages API translation: Anthropic requests into chat-completions requests, answers and
streamed chunks back into Anthropic's message and events, and our errors in Anthropic's shape."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.anthropic_api.chat_request import chat_body
from shared.anthropic_api.errors import error_body, from_envelope
from shared.anthropic_api.events import MessageEvents, replay_events
from shared.anthropic_api.models import catalog_slug
from shared.anthropic_api.request import CountTokensRequest, MessagesRequest, validate_messages_request
from shared.anthropic_api.response import to_message, usage
from shared.catalog.seed import load_seed
from shared.catalog.types import Catalog
from shared.chat.chunks import chunk, closing_chunks
from shared.chat.request import upstream_body, validate_chat_request
from shared.errors import InvalidRequest

EPHEMERAL = {"type": "ephemeral"}
TOOL = {"name": "get_weather", "description": "The weather.", "cache_control": EPHEMERAL,
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


def translate(**fields: Any) -> dict[str, Any]:
    body = {"model": "claude-haiku-4.5@anthropic", "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi"}], **fields}
    req = validate_messages_request(body, MessagesRequest)
    return chat_body(req, req.model)


# --- requests ------------------------------------------------------------------------------------


def test_system_blocks_become_a_system_message_keeping_cache_control():
    body = translate(system=[{"type": "text", "text": "Be terse.", "cache_control": EPHEMERAL},
                             {"type": "text", "text": "Be kind."}])
    assert body["messages"][0] == {"role": "system", "content": [
        {"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Be kind."}]}
    assert translate(system="Be terse.")["messages"][0] == {"role": "system", "content": "Be terse."}


def test_sampling_fields_map_to_chat_fields():
    body = translate(temperature=0.5, top_p=0.9, stop_sequences=["END"], metadata={"user_id": "u-1"},
                     service_tier="standard_only", stream=True)
    assert body["max_tokens"] == 100 and body["temperature"] == 0.5 and body["top_p"] == 0.9
    assert body["stop"] == ["END"] and body["user"] == "u-1" and body["service_tier"] == "default"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_images_become_image_url_parts():
    body = translate(messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"},
         "cache_control": EPHEMERAL},
        {"type": "text", "text": "What are these?"}]}])
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}, "cache_control": EPHEMERAL},
        {"type": "text", "text": "What are these?"}]}]


def test_tool_use_and_tool_result_become_tool_calls_and_tool_messages():
    body = translate(tools=[TOOL], tool_choice={"type": "any", "disable_parallel_tool_use": True}, messages=[
        {"role": "user", "content": "Weather in Lisbon?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Let me look.", "signature": "sig"},
            {"type": "text", "text": "Looking it up."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Lisbon"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 C", "cache_control": EPHEMERAL},
            {"type": "text", "text": "And tomorrow?"}]}])
    assert body["tools"] == [{"type": "function", "cache_control": EPHEMERAL, "function": {
        "name": "get_weather", "description": "The weather.", "parameters": TOOL["input_schema"]}}]
    assert body["tool_choice"] == "required" and body["parallel_tool_calls"] is False
    assert body["messages"][1:] == [
        {"role": "assistant", "content": [{"type": "text", "text": "Looking it up."}], "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather",
                                                               "arguments": '{"city":"Lisbon"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1",
         "content": [{"type": "text", "text": "18 C", "cache_control": EPHEMERAL}]},
        {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]}]


def test_an_assistant_turn_of_nothing_but_thinking_is_dropped():
    body = translate(messages=[{"role": "user", "content": "a"},
                               {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "x"}]},
                               {"role": "user", "content": "b"}])
    assert [m["role"] for m in body["messages"]] == ["user", "user"]


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, "auto"), ({"type": "none"}, "none"),
    ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}})])
def test_tool_choice_maps_to_openais(choice, expected):
    assert translate(tools=[TOOL], tool_choice=choice)["tool_choice"] == expected


def test_the_translated_body_is_a_valid_chat_request_that_forwards_cache_control():
    req = validate_chat_request(translate(system=[{"type": "text", "text": "S", "cache_control": EPHEMERAL}],
                                          tools=[TOOL], top_k=5, thinking={"type": "enabled", "budget_tokens": 2048}))
    sent = upstream_body(req)
    assert sent["messages"][0]["content"][0]["cache_control"] == EPHEMERAL
    assert sent["tools"][0]["cache_control"] == EPHEMERAL
    # top_k has no chat-completions field: reported as dropped, never forwarded. thinking has one.
    assert req.unknown_params == ["top_k"]
    assert "top_k" not in sent and sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_a_pdf_document_becomes_a_file_part():
    doc = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
           "title": "q3.pdf", "cache_control": EPHEMERAL}
    body = translate(messages=[{"role": "user", "content": [doc, {"type": "text", "text": "Summarise"}]}])
    assert body["messages"][0]["content"][0] == {
        "type": "file", "file": {"filename": "q3.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"},
        "cache_control": EPHEMERAL}


def test_a_chat_only_field_is_refused_rather_than_forwarded():
    with pytest.raises(InvalidRequest, match="seed: Extra inputs are not permitted"):
        translate(seed=1)


def test_missing_max_tokens_is_anthropics_own_message():
    with pytest.raises(InvalidRequest, match=r"^max_tokens: Field required$"):
        validate_messages_request({"model": "m", "messages": [{"role": "user", "content": "x"}]}, MessagesRequest)


def test_count_tokens_ignores_a_messages_own_fields():
    req = validate_messages_request({"model": "m", "max_tokens": 5, "stream": True, "temperature": 0.2,
                                     "messages": [{"role": "user", "content": "x"}]}, CountTokensRequest)
    assert chat_body(req, "m") == {"model": "m", "messages": [{"role": "user", "content": "x"}]}


def test_anthropic_model_ids_name_the_catalog_row():
    rows = load_seed()
    catalog = Catalog(providers={p.name: p for p in rows.providers}, models={m.slug: m for m, _ in rows.models})
    assert catalog_slug(catalog, "claude-sonnet-4-5") == "claude-sonnet-4.5@anthropic"
    assert catalog_slug(catalog, "claude-haiku-4-5-20251001") == "claude-haiku-4.5@anthropic"
    assert catalog_slug(catalog, "gpt-4.1@openai") == "gpt-4.1@openai"
    assert catalog_slug(catalog, "ainfera-auto") == "ainfera-auto"
    assert catalog_slug(catalog, "claude-unknown-9") == "claude-unknown-9"


# --- answers -------------------------------------------------------------------------------------

META = {"job_id": "job_abc123", "receipt_id": "rcpt_1", "cost_usd": "0.0001"}


def completion(message: dict[str, Any], finish: str, **usage_extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-abc123", "object": "chat.completion", "created": 1, "model": "gpt-4.1@openai",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150, **usage_extra},
            "ainfera": META}


def test_a_completion_becomes_an_anthropic_message():
    message = to_message(completion({"role": "assistant", "content": "Hello."}, "stop"))
    assert message == {"id": "msg_abc123", "type": "message", "role": "assistant", "model": "gpt-4.1@openai",
                       "content": [{"type": "text", "text": "Hello."}], "stop_reason": "end_turn",
                       "stop_sequence": None, "usage": {"input_tokens": 120, "output_tokens": 30},
                       "ainfera": META}


def test_tool_calls_become_tool_use_blocks():
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Porto"}'}}
    message = to_message(completion({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"))
    assert message["content"] == [{"type": "tool_use", "id": "call_1", "name": "get_weather",
                                   "input": {"city": "Porto"}}]
    assert message["stop_reason"] == "tool_use"
    broken = {**call, "function": {"name": "f", "arguments": "{oops"}}
    kept = to_message(completion({"role": "assistant", "tool_calls": [broken]}, "tool_calls"))
    assert kept["content"][0]["input"] == {"_unparsed_arguments": "{oops"}


@pytest.mark.parametrize(("finish", "reason"), [("length", "max_tokens"), ("content_filter", "refusal"),
                                                ("stop", "end_turn"), (None, "end_turn")])
def test_finish_reasons_become_stop_reasons(finish, reason):
    assert to_message(completion({"role": "assistant", "content": "x"}, finish))["stop_reason"] == reason


def test_cached_tokens_are_reported_apart_from_input_tokens():
    assert usage({"prompt_tokens": 120, "completion_tokens": 30,
                  "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 15}}) == {
        "input_tokens": 5, "output_tokens": 30, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 15}
    assert usage({"prompt_tokens": 10, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 4}}) == {
        "input_tokens": 6, "output_tokens": 2, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 0}


# --- streams -------------------------------------------------------------------------------------


def parse(stream: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in stream.decode().split("\n\n"):
        if frame:
            name_line, data_line = frame.split("\n")
            name, data = name_line.removeprefix("event: "), orjson.loads(data_line.removeprefix("data: "))
            assert data["type"] == name
            out.append((name, data))
    return out


def relay(events: MessageEvents, *choices: list[dict[str, Any]], body: dict[str, Any]) -> bytes:
    """What the gateway writes for a stream: each relayed chunk, then the committed job's closing chunks."""
    out = b""
    for piece in choices:
        out += events.chunk(orjson.dumps(chunk("job_abc123", 1, "gpt-4.1@openai", piece, usage=None)))
    finish = [{"index": 0, "delta": {}, "finish_reason": body["choices"][0]["finish_reason"]}]
    for piece in closing_chunks(body, finish, created=1, include_usage=True):
        out += events.chunk(orjson.dumps(piece))
    return out + events.end()


def test_text_chunks_become_anthropic_events():
    events = MessageEvents("job_abc123", input_tokens_estimate=99)
    body = completion({"role": "assistant", "content": "Hello there."}, "stop")
    stream = parse(relay(events, [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
                         [{"index": 0, "delta": {"content": "Hello"}}], [{"index": 0, "delta": {"content": " there."}}],
                         body=body))
    assert [name for name, _ in stream] == ["message_start", "ping", "content_block_start", "content_block_delta",
                                            "content_block_delta", "content_block_stop", "message_delta",
                                            "message_stop"]
    start = stream[0][1]["message"]
    assert start["id"] == "msg_abc123" and start["model"] == "gpt-4.1@openai" and start["usage"]["input_tokens"] == 99
    assert stream[2][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert "".join(d["delta"]["text"] for n, d in stream if n == "content_block_delta") == "Hello there."
    delta = stream[6][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"] == {"input_tokens": 120, "output_tokens": 30} and delta["ainfera"] == META


def test_tool_call_chunks_become_a_tool_use_block_with_input_json_deltas():
    events = MessageEvents("job_abc123", input_tokens_estimate=1)
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Porto"}'}}
    body = completion({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls")
    stream = parse(relay(
        events,
        [{"index": 0, "delta": {"content": "Let me check."}}],
        [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                "function": {"name": "get_weather", "arguments": ""}}]}}],
        [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}}],
        [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"Porto"}'}}]}}],
        body=body))
    starts = [d for n, d in stream if n == "content_block_start"]
    assert [s["content_block"]["type"] for s in starts] == ["text", "tool_use"]
    assert starts[1] == {"type": "content_block_start", "index": 1, "content_block": {
        "type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}}
    json_deltas = [d["delta"]["partial_json"] for n, d in stream
                   if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"]
    assert "".join(json_deltas) == '{"city":"Porto"}'
    assert [d["index"] for n, d in stream if n == "content_block_stop"] == [0, 1]
    assert stream[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_a_stored_answer_replays_as_the_same_events():
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    stream = parse(replay_events(completion({"role": "assistant", "content": "Hi.", "tool_calls": [call]},
                                            "tool_calls")))
    assert [n for n, _ in stream] == ["message_start", "ping"] + ["content_block_start", "content_block_delta",
                                                                  "content_block_stop"] * 2 + ["message_delta",
                                                                                               "message_stop"]
    assert stream[0][1]["message"]["usage"]["input_tokens"] == 120
    assert stream[6][1]["delta"] == {"type": "input_json_delta", "partial_json": '{"a":1}'}


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "kind", "sent"), [
    (400, "invalid_request_error", 400), (401, "authentication_error", 401), (403, "permission_error", 403),
    (404, "not_found_error", 404), (413, "request_too_large", 413), (422, "invalid_request_error", 422),
    (429, "rate_limit_error", 429), (500, "api_error", 500), (502, "api_error", 502),
    (503, "overloaded_error", 529), (504, "timeout_error", 504)])
def test_statuses_map_to_anthropic_error_types(status, kind, sent):
    envelope = {"error": {"message": "nope", "type": "whatever", "code": "x", "param": None}, "ainfera": META}
    assert from_envelope(status, envelope) == (sent, {"type": "error", "error": {"type": kind, "message": "nope"}})
    assert error_body(status, "m")["error"]["type"] == kind

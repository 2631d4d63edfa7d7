"""Bad chat-completions input gets a 400 that names the field; good input passes through unchanged."""

import pytest

from shared.chat.request import parse_body, upstream_body, validate_chat_request
from shared.errors import InvalidRequest

OK = {"model": "gpt-4o@openai", "messages": [{"role": "user", "content": "hi"}]}


def bad(**changes) -> dict:
    body = {**OK, **changes}
    return {k: v for k, v in body.items() if v is not ...}


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "invalid_json"),
        (b'{"model": "x", "messages": [], "temperature": NaN}', "invalid_json"),
        (b'{"model": "x", "temperature": Infinity}', "invalid_json"),
        (b'{"a": 1} trailing', "invalid_json"),
    ],
)
def test_malformed_json_is_refused(raw, code):
    with pytest.raises(InvalidRequest) as e:
        parse_body(raw)
    assert e.value.code == code and e.value.status == 400


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (bad(messages=...), "messages"),
        (bad(messages=[]), "messages"),
        (bad(messages="hi"), "messages"),
        (bad(model=...), "model"),
        (bad(model=""), "model"),
        (bad(model=7), "model"),
        (bad(max_tokens=-1), "max_tokens"),
        (bad(max_tokens=0), "max_tokens"),
        (bad(max_tokens=10**12), "max_tokens"),
        (bad(max_tokens="100"), "max_tokens"),
        (bad(max_tokens=True), "max_tokens"),
        (bad(max_completion_tokens=-5), "max_completion_tokens"),
        (bad(temperature=3), "temperature"),
        (bad(temperature="hot"), "temperature"),
        (bad(messages=[{"role": "wizard", "content": "x"}]), "messages.0.role"),
        (bad(messages=[{"role": "user", "content": 5}]), "messages.0.content"),
        (bad(routing_hint={"stack": "mars"}), "routing_hint.stack"),
        (bad(routing_hint={"max_cost_usd": -1}), "routing_hint.max_cost_usd"),
        (bad(routing_hint={"max_cost_usd": "cheap"}), "routing_hint.max_cost_usd"),
        (bad(routing_hint={"latency_budget_ms": 0}), "routing_hint.latency_budget_ms"),
        (bad(routing_hint={"colour": "red"}), "routing_hint.colour"),
        (bad(n=0), "n"),
        (bad(n=129), "n"),
        (bad(reasoning_effort="extreme"), "reasoning_effort"),
        (bad(verbosity="chatty"), "verbosity"),
        (bad(logit_bias={"50256": 101}), "logit_bias.50256"),
        (bad(functions=[{"name": "f"}], tools=[]), "functions"),
        (bad(stream="yes"), "stream"),
        (bad(stream_options={"include_usage": True}), "stream_options"),  # without stream, as OpenAI refuses
        (bad(stream=True, stream_options={"include_usage": "yes"}), "stream_options.include_usage"),
    ],
)
def test_invalid_fields_are_named(body, param):
    with pytest.raises(InvalidRequest) as e:
        validate_chat_request(body)
    assert e.value.status == 400
    assert e.value.param == param


@pytest.mark.parametrize("field", ["base_url", "api_base", "api_key", "headers", "extra_headers", "url"])
def test_fields_that_try_to_choose_the_upstream_or_key_are_refused(field):
    with pytest.raises(InvalidRequest) as e:
        validate_chat_request({**OK, field: "http://attacker.example"})
    assert e.value.param == field and e.value.code == "unknown_parameter"
    assert "never by the request" in e.value.message


def test_a_body_that_is_not_an_object_is_refused():
    with pytest.raises(InvalidRequest):
        validate_chat_request([OK])


def test_valid_request_passes_through_without_our_extension():
    req = validate_chat_request({**OK, "temperature": 0.2, "stop": ["\n"], "routing_hint": {"max_cost_usd": 0.5},
                                 "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}],
                                               "name": "bob"}]})
    body = upstream_body(req)
    assert "routing_hint" not in body
    assert body["temperature"] == 0.2 and body["stop"] == ["\n"]
    assert body["messages"][0]["name"] == "bob"
    assert req.routing_hint is not None and req.routing_hint.max_cost_usd == 0.5


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"messages": [{"role": "assistant", "content": "x", "tool_calls": 1}]}, "messages.0.tool_calls"),
        ({"messages": [{"role": "assistant", "content": "x", "tool_calls": True}]}, "messages.0.tool_calls"),
        ({"messages": [{"role": "assistant", "content": "x", "tool_calls": ["s"]}]}, "messages.0.tool_calls.0"),
        ({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                                                             "function": {"name": "f", "arguments": {}}}]}]},
         "messages.0.tool_calls.0.function.arguments"),
        ({"tools": [{"type": "function", "function": "f"}]}, "tools.0.function"),
        ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools.0.function.name"),
        ({"tool_choice": {"type": "function", "function": "f"}}, "tool_choice"),
    ],
)
def test_tool_shapes_that_our_code_reads_are_checked_at_the_edge(changes, param):
    # Each of these once passed validation and then raised inside the worker (token estimate,
    # the Anthropic adapter): the request must be a 400 naming the field instead.
    with pytest.raises(InvalidRequest) as e:
        validate_chat_request(bad(**changes))
    assert e.value.status == 400 and e.value.param == param


def test_well_formed_tools_and_tool_calls_pass_through_unchanged():
    body = bad(
        messages=[{"role": "user", "content": "weather?"},
                  {"role": "assistant", "content": None, "tool_calls": [
                      {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{}"}}]},
                  {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}],
        tools=[{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}, "x-vendor": 1}}],
        tool_choice={"type": "function", "function": {"name": "get"}},
    )
    assert upstream_body(validate_chat_request(body)) == body

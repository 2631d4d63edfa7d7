"""The whole current Chat Completions request surface: every field OpenAI documents is accepted with
its type, unknown fields are kept but never forwarded, and each provider is sent only what it takes."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai.types.chat.completion_create_params import CompletionCreateParamsBase

from shared.catalog.types import Catalog, Model, Provider, WireFormat
from shared.chat.functions import as_legacy_functions
from shared.chat.request import ChatCompletionRequest, upstream_body, validate_chat_request
from shared.errors import InvalidRequest, UnsupportedByModel
from shared.providers.anthropic_messages import AnthropicMessagesAdapter
from shared.providers.openai_chat import OpenAIChatAdapter
from shared.providers.params import OPENAI_PLATFORM_ONLY, forwardable, needed_features, unservable
from shared.routing.candidates import RoutingStats
from shared.routing.plan import plan_request
from shared.routing.policy import TenantPolicy
from shared.settings import Settings
from tests.fixtures.catalogs import model as fixture_model
from tests.fixtures.catalogs import provider as fixture_provider

OK = {"model": "gpt-4o@openai", "messages": [{"role": "user", "content": "hi"}]}

# One valid value for each field the SDK's request type declares (openai-python 3.57.0).
EVERY_FIELD = {
    "audio": {"voice": "alloy", "format": "wav"}, "frequency_penalty": 0.5, "function_call": "auto",
    "functions": [{"name": "f", "parameters": {"type": "object"}}], "logit_bias": {"50256": -100},
    "logprobs": True, "top_logprobs": 2, "max_completion_tokens": 64, "max_tokens": 64, "metadata": {"k": "v"},
    "modalities": ["text"], "moderation": {"model": "omni-moderation-latest"}, "n": 2,
    "parallel_tool_calls": False, "prediction": {"type": "content", "content": "x"}, "presence_penalty": 0.1,
    "prompt_cache_key": "tenant-42", "prompt_cache_options": {"mode": "implicit", "ttl": "30m"},
    "prompt_cache_retention": "24h", "reasoning_effort": "xhigh", "response_format": {"type": "json_object"},
    "safety_identifier": "user-hash", "seed": 7, "service_tier": "flex", "stop": ["\n"], "store": False,
    "stream": True, "stream_options": {"include_usage": True}, "temperature": 0.2, "tool_choice": "auto",
    "top_p": 0.9, "user": "u1", "verbosity": "low",
    "web_search_options": {"search_context_size": "low"},
}


def test_every_field_of_the_sdk_request_type_is_declared_here():
    sdk_fields = set(CompletionCreateParamsBase.__annotations__)
    assert sdk_fields <= set(ChatCompletionRequest.model_fields), sdk_fields - set(ChatCompletionRequest.model_fields)
    assert sdk_fields - {"messages", "model"} <= set(EVERY_FIELD) | {"tools"}


def test_a_request_with_every_field_validates():
    everything = {k: v for k, v in EVERY_FIELD.items() if k != "tool_choice"}  # tool_choice needs tools
    req = validate_chat_request({**OK, **everything, "tool_choice": None})
    assert req.unknown_params == []
    assert req.reasoning_effort == "xhigh" and req.n == 2


@pytest.mark.parametrize("effort", ["none", "minimal", "low", "medium", "high", "xhigh", "max"])
def test_every_current_reasoning_effort_is_accepted(effort):
    assert validate_chat_request({**OK, "reasoning_effort": effort}).reasoning_effort == effort


def test_unknown_fields_are_kept_to_be_reported_and_never_forwarded():
    req = validate_chat_request({**OK, "foo": 1, "vendor_knob": {"a": 1}})
    assert req.unknown_params == ["foo", "vendor_knob"]
    assert "foo" not in upstream_body(req) and "vendor_knob" not in upstream_body(req)


def test_a_strict_tenant_gets_openais_400_for_an_unknown_field():
    with pytest.raises(InvalidRequest) as e:
        validate_chat_request({**OK, "foo": 1}, strict=True)
    assert e.value.param == "foo" and e.value.code == "unknown_parameter"


@pytest.mark.parametrize("strict", [False, True])
def test_steering_fields_are_refused_whatever_the_policy(strict):
    with pytest.raises(InvalidRequest) as e:
        validate_chat_request({**OK, "base_url": "http://evil.example"}, strict=strict)
    assert e.value.param == "base_url"


_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=20).filter(
    lambda n: n not in ChatCompletionRequest.model_fields)
_STEERING = {"api_base", "base_url", "api_key", "url", "endpoint", "headers", "extra_headers", "api_version",
             "provider_url", "upstream_url", "upstream", "key", "authorization", "organization", "project"}


@given(extra=st.dictionaries(_NAMES.filter(lambda n: n not in _STEERING), st.integers() | st.text(max_size=5),
                             max_size=5))
def test_a_forwarded_body_carries_no_field_the_gateway_did_not_put_there(extra):
    req = validate_chat_request({**OK, **extra})
    body = upstream_body(req)
    for adapter in (OpenAIChatAdapter(), AnthropicMessagesAdapter()):
        sent = orjson.loads(adapter.build(url="https://x", api_key="k", upstream_model="m", body=body).body)
        assert not set(sent) & set(extra)
    assert set(body) <= set(ChatCompletionRequest.model_fields) - {"routing_hint"}


def test_legacy_functions_are_sent_as_tools_and_answered_as_function_call():
    req = validate_chat_request({**OK, "functions": [{"name": "lookup", "parameters": {"type": "object"}}],
                                 "function_call": {"name": "lookup"}})
    body = upstream_body(req)
    assert body["tools"] == [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert "functions" not in body and "function_call" not in body
    answer = [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None,
               "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]}}]
    (legacy,) = as_legacy_functions(answer)
    assert legacy["message"]["function_call"] == {"name": "lookup", "arguments": "{}"}
    assert "tool_calls" not in legacy["message"] and legacy["finish_reason"] == "function_call"


# Realistic upstream names: what the rules (shared/catalog/data/param_rules.json) are keyed on.
UPSTREAM = {"openai": "gpt-4o", "deepinfra": "meta-llama/Llama-3.3-70B-Instruct", "groq": "llama-3.3-70b-versatile",
            "anthropic": "claude-sonnet-4-5"}


def pair(provider: str, wire: WireFormat = WireFormat.OPENAI_CHAT,
         upstream: str | None = None) -> tuple[Model, Provider]:
    row = replace(fixture_provider(provider), wire_format=wire)
    return fixture_model(f"m@{provider}", 50, 1.0, 1.0, provider_model_name=upstream or UPSTREAM[provider]), row


def forward(provider: str, wire: WireFormat, body: dict) -> tuple[dict, list[str]]:
    return forwardable(*pair(provider, wire), body)


PLATFORM_FIELDS = {"prompt_cache_key": "k", "safety_identifier": "s", "verbosity": "low", "store": False,
                   "web_search_options": {}, "service_tier": "flex"}


def test_openai_gets_its_own_fields():
    body = {**OK, **PLATFORM_FIELDS, "logit_bias": {"1": 1}}
    sent, dropped = forward("openai", WireFormat.OPENAI_CHAT, body)
    assert sent == body and dropped == []


def test_other_openai_compatible_providers_are_not_sent_openais_platform_fields():
    sent, dropped = forward("deepinfra", WireFormat.OPENAI_CHAT, {**OK, **PLATFORM_FIELDS, "seed": 1})
    assert dropped == sorted(PLATFORM_FIELDS) and sent == {**OK, "seed": 1}
    assert set(PLATFORM_FIELDS) <= OPENAI_PLATFORM_ONLY


def test_groq_is_not_sent_what_its_docs_say_it_refuses():
    body = {**OK, "logit_bias": {"1": 1}, "messages": [{"role": "user", "content": "hi", "name": "ann"}]}
    sent, dropped = forward("groq", WireFormat.OPENAI_CHAT, body)
    assert "logit_bias" not in sent and sent["messages"] == [{"role": "user", "content": "hi"}]
    assert dropped == ["logit_bias", "messages[].name"]


def test_anthropic_is_not_sent_what_it_has_no_equivalent_for():
    sent, dropped = forward("anthropic", WireFormat.ANTHROPIC_MESSAGES,
                            {**OK, "seed": 1, "frequency_penalty": 0.1, "temperature": 0.2})
    assert dropped == ["frequency_penalty", "seed"] and sent["temperature"] == 0.2


@pytest.mark.parametrize(("provider", "wire", "body", "refused"), [
    ("groq", WireFormat.OPENAI_CHAT, {"n": 2}, {"n"}),
    ("groq", WireFormat.OPENAI_CHAT, {"logprobs": True}, {"logprobs"}),
    ("anthropic", WireFormat.ANTHROPIC_MESSAGES, {"n": 3, "top_logprobs": 1}, {"n", "logprobs"}),
    ("openai", WireFormat.OPENAI_CHAT, {"n": 2, "logprobs": True}, set()),
    ("openai", WireFormat.OPENAI_CHAT, {"modalities": ["text", "audio"]}, {"audio"}),
])
def test_meaning_changing_features_are_refused_where_they_cannot_be_served(provider, wire, body, refused):
    assert set(unservable(*pair(provider, wire), needed_features(body))) == refused


# Where the Anthropic translation puts an OpenAI field (shared/providers/anthropic_translate.py).
ANTHROPIC_NAMES = {"max_tokens": "max_tokens", "max_completion_tokens": "max_tokens", "stop": "stop_sequences",
                   "user": "metadata", "tool_choice": "tool_choice", "parallel_tool_calls": "tool_choice",
                   "temperature": "temperature", "top_p": "top_p", "tools": "tools", "messages": "messages",
                   "model": "model", "thinking": "thinking", "response_format": "tool_choice"}
PROVIDERS = [("openai", WireFormat.OPENAI_CHAT), ("deepinfra", WireFormat.OPENAI_CHAT),
             ("groq", WireFormat.OPENAI_CHAT), ("anthropic", WireFormat.ANTHROPIC_MESSAGES)]
WEATHER = {"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(("provider", "wire"), PROVIDERS)
@pytest.mark.parametrize("field", sorted(set(EVERY_FIELD) - {"stream", "stream_options"}))
def test_no_field_is_dropped_silently(provider, wire, field):
    """Each field reaches the provider (under its own name or its translation), is reported as
    dropped, or makes the request refused for a provider that cannot serve it; never lost unseen."""
    extra: dict = {"tools": [WEATHER]} if field in ("tool_choice", "parallel_tool_calls") else {}
    if field == "function_call":
        extra["functions"] = EVERY_FIELD["functions"]
    if field == "top_logprobs":
        extra["logprobs"] = True
    req = validate_chat_request({**OK, **extra, field: EVERY_FIELD[field]})
    body = upstream_body(req)
    model, row = pair(provider, wire)
    if unservable(model, row, needed_features(body)):
        return  # refused with 400 for a pinned model; ainfera-auto routes elsewhere
    sent_body, dropped = forwardable(model, row, body)
    adapter = AnthropicMessagesAdapter() if wire is WireFormat.ANTHROPIC_MESSAGES else OpenAIChatAdapter()
    try:
        sent = orjson.loads(adapter.build(url="https://x", api_key="k", upstream_model=model.upstream_model,
                                          body=sent_body).body)
    except (InvalidRequest, UnsupportedByModel) as e:
        assert e.param  # refused by the translation, naming the field
        return
    reported = {change.split("->")[0].split("=")[0] for change in dropped}
    for name in body:
        if name in reported:
            continue
        expected = ANTHROPIC_NAMES.get(name) if wire is WireFormat.ANTHROPIC_MESSAGES else name
        assert expected is not None and expected in sent, f"{name} was neither sent, translated nor reported"


def _groq_and_openai() -> Catalog:
    models = [fixture_model("llama@groq", 40, 0.5, 0.8), fixture_model("gpt@openai", 50, 1.0, 4.0)]
    return Catalog(providers={"groq": fixture_provider("groq"), "openai": fixture_provider("openai")},
                   models={m.slug: m for m in models})


def test_a_pinned_model_that_cannot_serve_n_is_refused_before_any_call():
    """The worker plans a stored job (async, batch line) the gateway did not check: still a 400."""
    request = validate_chat_request({**OK, "model": "llama@groq", "n": 2})
    with pytest.raises(InvalidRequest) as e:
        plan_request(request, _groq_and_openai(), policy=TenantPolicy(), stats=RoutingStats(), settings=Settings())
    assert e.value.param == "n" and "llama@groq" in e.value.message


def test_ainfera_auto_plans_only_candidates_that_serve_n():
    request = validate_chat_request({**OK, "model": "ainfera-auto", "n": 2})
    plan = plan_request(request, _groq_and_openai(), policy=TenantPolicy(), stats=RoutingStats(),
                        settings=Settings(upstream_override="http://sim"))
    assert [c.model.slug for c in plan.candidates] == ["gpt@openai"]

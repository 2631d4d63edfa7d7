"""Bodies normalised by each model's researched rules: what a client writes for OpenAI becomes what
the model's provider accepts, and every change is reported."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from shared.catalog.param_rules import EFFORT_ORDER, nearest_effort, rules_for
from shared.catalog.types import Model, Provider, WireFormat
from shared.providers.normalise import effort_for_thinking, normalise
from shared.providers.params import forwardable
from tests.fixtures.catalogs import model as fixture_model
from tests.fixtures.catalogs import provider as fixture_provider

HI = {"messages": [{"role": "user", "content": "hi"}]}
CLASSIC = {**HI, "max_tokens": 64, "temperature": 0.2}


def pair(provider: str, upstream: str, *, efforts: tuple[str, ...] | None = None) -> tuple[Model, Provider]:
    wire = WireFormat.ANTHROPIC_MESSAGES if provider == "anthropic" else WireFormat.OPENAI_CHAT
    row = replace(fixture_provider(provider), wire_format=wire)
    return fixture_model(f"m@{provider}", 50, 1.0, 1.0, provider_model_name=upstream, reasoning_efforts=efforts), row


def forward(provider: str, upstream: str, body: dict[str, Any], **kw: Any) -> tuple[dict[str, Any], list[str]]:
    return forwardable(*pair(provider, upstream, **kw), body)


@pytest.mark.parametrize("upstream", ["gpt-5.5", "gpt-5-mini", "o3", "o4-mini"])
def test_openai_reasoning_models_get_max_completion_tokens_and_no_sampling(upstream):
    sent, changes = forward("openai", upstream, CLASSIC)
    assert sent == {**HI, "max_completion_tokens": 64}
    assert changes == ["max_tokens->max_completion_tokens", "temperature"]


def test_a_default_temperature_is_still_sent_to_a_reasoning_model():
    sent, changes = forward("openai", "gpt-5.5", {**HI, "temperature": 1})
    assert sent["temperature"] == 1 and changes == []


def test_openai_non_reasoning_models_are_sent_the_classic_body_unchanged():
    sent, changes = forward("openai", "gpt-4.1", CLASSIC)
    assert sent == CLASSIC and changes == []


def test_the_callers_own_max_completion_tokens_wins_over_max_tokens():
    sent, changes = forward("openai", "gpt-5.5", {**HI, "max_tokens": 64, "max_completion_tokens": 32})
    assert sent["max_completion_tokens"] == 32 and "max_tokens" not in sent
    assert changes == ["max_tokens"]


def test_claude_keeps_temperature_when_both_are_sent_and_clamps_it_to_one():
    sent, changes = forward("anthropic", "claude-sonnet-4-5", {**CLASSIC, "temperature": 1.7, "top_p": 0.9})
    assert sent["temperature"] == 1 and "top_p" not in sent
    assert changes == ["top_p", "temperature=1"]


def test_reasoning_effort_becomes_a_thinking_budget_for_claude():
    sent, changes = forward("anthropic", "claude-sonnet-4-5", {**HI, "max_tokens": 8000, "reasoning_effort": "high"})
    assert sent["thinking"]["type"] == "enabled" and 1024 <= sent["thinking"]["budget_tokens"] < 8000
    assert "reasoning_effort" not in sent and changes == ["reasoning_effort->thinking"]


def test_thinking_is_not_sent_to_claude_with_a_forced_tool_or_a_budget_over_the_limit():
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    forced = {**HI, "max_tokens": 8000, "thinking": {"type": "enabled", "budget_tokens": 2048},
              "tools": tools, "tool_choice": "required"}
    assert forward("anthropic", "claude-sonnet-4-5", forced) == ({k: v for k, v in forced.items() if k != "thinking"},
                                                                ["thinking"])
    over = {**HI, "max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert "thinking" not in forward("anthropic", "claude-sonnet-4-5", over)[0]


def test_thinking_takes_sampling_away_from_claude():
    body = {**HI, "max_tokens": 8000, "temperature": 0.2, "thinking": {"type": "enabled", "budget_tokens": 2048}}
    sent, changes = forward("anthropic", "claude-sonnet-4-5", body)
    assert "temperature" not in sent and sent["thinking"] == body["thinking"]
    assert "temperature" in changes


def test_thinking_becomes_reasoning_effort_for_a_model_that_takes_effort():
    body = {**HI, "thinking": {"type": "enabled", "budget_tokens": 4096}}
    sent, changes = forward("openai", "gpt-5.5", body, efforts=("low", "medium", "high"))
    assert sent["reasoning_effort"] == "high" and "thinking" not in sent
    assert changes == ["thinking->reasoning_effort"]


def test_an_effort_the_model_lacks_becomes_the_nearest_one_it_has():
    sent, changes = forward("openai", "gpt-5.5", {**HI, "reasoning_effort": "xhigh"},
                            efforts=("minimal", "low", "medium", "high"))
    assert sent["reasoning_effort"] == "high" and changes == ["reasoning_effort=high"]


def test_a_model_without_reasoning_control_is_not_sent_reasoning_fields():
    sent, changes = forward("openai", "gpt-4.1", {**HI, "reasoning_effort": "low"})
    assert "reasoning_effort" not in sent and changes == ["reasoning_effort"]


def test_nearest_effort_prefers_the_higher_on_a_tie_and_knows_only_known_efforts():
    assert nearest_effort("medium", ("low", "high")) == "high"
    assert nearest_effort("none", ("low", "medium")) == "low"
    assert nearest_effort("turbo", ("low",)) is None
    assert nearest_effort("low", ()) is None
    assert EFFORT_ORDER[0] == "none"


def test_effort_for_thinking_reads_budget_and_kind():
    assert effort_for_thinking({"type": "disabled"}) == "none"
    assert effort_for_thinking({"type": "enabled", "budget_tokens": 1024}) == "low"
    assert effort_for_thinking({"type": "enabled", "budget_tokens": 30000}) == "high"


def test_the_body_passed_in_is_not_changed():
    body = dict(CLASSIC)
    normalise(rules_for("openai", "gpt-5.5"), body)
    assert body == CLASSIC


def test_an_unknown_provider_gets_the_conservative_rules():
    rules = rules_for("no-such-provider", "x")
    assert not rules.logprobs and rules.input_modalities == frozenset({"text"})


def test_cache_control_markers_reach_claude_and_are_taken_off_for_openai_compatible_providers():
    part = {"type": "text", "text": "long shared context", "cache_control": {"type": "ephemeral"}}
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}},
            "cache_control": {"type": "ephemeral"}}
    body = {"messages": [{"role": "user", "content": [part]}], "tools": [tool], "max_tokens": 64}
    sent, changes = forward("openai", "gpt-4.1", body)
    assert "cache_control" not in sent["messages"][0]["content"][0] and "cache_control" not in sent["tools"][0]
    assert changes == ["cache_control"] and "cache_control" in body["messages"][0]["content"][0]
    kept, changes = forward("anthropic", "claude-sonnet-4-5", body)
    assert kept["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"} and changes == []

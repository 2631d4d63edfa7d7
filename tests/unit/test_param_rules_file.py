"""The researched rules file: every rule cites a source that resolves, every seeded model resolves to
rules, and the documented facts the adapters and the simulator lean on are what the file says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import shared.catalog
from shared.catalog.param_rules import (
    RULES_FILE,
    UNKNOWN,
    ParamRules,
    PromptCaching,
    ReasoningControl,
    SamplingWithReasoning,
    StructuredOutput,
    TokenLimitField,
    Unsupported,
    load_rule_book,
)

CATALOG_FILE = Path(shared.catalog.__file__).with_name("data") / "catalog.json"
RAW: dict[str, Any] = json.loads(RULES_FILE.read_text(encoding="utf-8"))
CATALOG: dict[str, Any] = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
BOOK = load_rule_book()
SEEDED = [(m["provider"], m["provider_model_name"]) for m in CATALOG["models"]]


def rules(provider: str, model: str) -> ParamRules:
    return BOOK.for_model(provider, model)


def cited_ids() -> list[str]:
    ids: list[str] = []
    for entry in RAW["providers"].values():
        ids += entry["defaults"]["source"]
        for override in entry.get("models") or ():
            ids += override["source"]
        ids += [example["source"] for example in entry.get("error_examples") or ()]
    return ids


def test_every_cited_source_resolves_to_a_real_url_and_a_quote() -> None:
    sources = RAW["sources"]
    missing = sorted({i for i in cited_ids() if i not in sources})
    assert missing == []
    for source_id, source in sources.items():
        assert source["url"].startswith("https://"), source_id
        assert "example.invalid" not in source["url"], source_id
        assert source["quote"].strip(), source_id
        assert source["checked"] == "2026-12-04", source_id
    assert "interim" not in json.dumps(RAW).lower()


def test_every_override_cites_a_source_and_every_default_is_complete() -> None:
    keys = {"token_limit_field", "unsupported", "exclusive", "temperature_max", "reasoning", "structured_output",
            "anthropic_output_format", "logprobs", "input_modalities", "prompt_caching", "cache_min_tokens"}
    for name, entry in RAW["providers"].items():
        assert keys <= set(entry["defaults"]), name
        assert entry["defaults"]["source"], name
        for override in entry.get("models") or ():
            assert override["source"], (name, override["match"])


def test_every_catalog_provider_has_rules_and_every_seeded_model_resolves() -> None:
    assert {row["name"] for row in CATALOG["providers"]} <= set(RAW["providers"])
    for provider, model in SEEDED:
        resolved = rules(provider, model)
        assert resolved is not UNKNOWN, (provider, model)
        assert resolved.sources, (provider, model)
        if resolved.reasoning.control is ReasoningControl.REASONING_EFFORT:
            assert resolved.reasoning.efforts, (provider, model)


def test_every_error_example_has_a_4xx_status_and_a_body() -> None:
    for name in RAW["providers"]:
        for example in BOOK.error_examples(name):
            assert 400 <= example.status < 500, (name, example.rule)
            assert example.body, (name, example.rule)


@pytest.mark.parametrize("model", ["gpt-5-mini", "gpt-5.4", "gpt-5.4-nano", "gpt-5.5", "gpt-5.6-sol", "o3", "o4-mini"])
def test_openai_reasoning_models_take_max_completion_tokens_and_default_only_sampling(model: str) -> None:
    r = rules("openai", model)
    assert r.token_limit_field is TokenLimitField.MAX_COMPLETION_TOKENS
    assert r.unsupported["temperature"] is Unsupported.DEFAULT_ONLY
    assert r.refuses("temperature", 0.2) and not r.refuses("temperature", 1)
    assert r.refuses("top_p", 0.9) and not r.refuses("top_p", 1)
    assert r.refuses("logprobs", True) and r.refuses("logit_bias", {"1": 2})
    assert not r.logprobs
    assert r.reasoning.control is ReasoningControl.REASONING_EFFORT
    assert r.reasoning.sampling_with_reasoning is SamplingWithReasoning.REFUSED


def test_openai_reasoning_effort_values_follow_each_family() -> None:
    assert rules("openai", "gpt-5-mini").reasoning.efforts == ("minimal", "low", "medium", "high")
    assert rules("openai", "gpt-5.1").reasoning.efforts == ("none", "low", "medium", "high")
    assert rules("openai", "gpt-5.4").reasoning.efforts == ("none", "low", "medium", "high", "xhigh")
    assert rules("openai", "o3").reasoning.efforts == ("low", "medium", "high")


@pytest.mark.parametrize("model", ["gpt-4.1", "gpt-4o-mini"])
def test_openai_chat_models_keep_sampling_logprobs_and_caching(model: str) -> None:
    r = rules("openai", model)
    assert r.token_limit_field is TokenLimitField.EITHER
    assert not r.refuses("temperature", 0.2)
    assert r.logprobs and r.temperature_max == 2
    assert r.structured_output is StructuredOutput.JSON_SCHEMA
    assert r.prompt_caching is PromptCaching.AUTOMATIC and r.cache_min_tokens == 1024
    assert {"image", "pdf"} <= r.input_modalities and "audio" not in r.input_modalities
    assert r.reasoning.control is ReasoningControl.NONE


@pytest.mark.parametrize("model", ["claude-opus-4-8", "claude-opus-4-7", "claude-sonnet-5", "claude-sonnet-4-6",
                                   "claude-sonnet-4-5", "claude-haiku-4-5"])
def test_claude_models_cap_temperature_at_1_and_take_one_of_temperature_and_top_p(model: str) -> None:
    r = rules("anthropic", model)
    assert r.temperature_max == 1
    assert ("temperature", "top_p") in r.exclusive
    assert r.token_limit_field is TokenLimitField.MAX_TOKENS
    for name in ("frequency_penalty", "presence_penalty", "logit_bias", "seed", "logprobs"):
        assert r.refuses(name, 1), name
    assert r.refuses("n", 2) and not r.refuses("n", 1)
    assert r.reasoning.control is ReasoningControl.THINKING
    assert r.prompt_caching is PromptCaching.EXPLICIT
    assert {"image", "pdf"} <= r.input_modalities
    assert r.structured_output is StructuredOutput.JSON_SCHEMA and r.anthropic_output_format == "output_config"


def test_claude_budget_models_map_effort_to_litellm_budgets_of_at_least_1024() -> None:
    for model in ("claude-sonnet-4-6", "claude-sonnet-4-5", "claude-haiku-4-5"):
        budgets = rules("anthropic", model).reasoning.thinking_budgets
        assert budgets is not None and budgets["low"] == 1024 and budgets["medium"] == 2048 and budgets["high"] == 4096
        assert min(budgets.values()) >= 1024
        assert rules("anthropic", model).reasoning.sampling_with_reasoning is SamplingWithReasoning.TEMPERATURE_1_ONLY
    assert rules("anthropic", "claude-sonnet-4-6").reasoning.adaptive
    assert not rules("anthropic", "claude-sonnet-4-5").reasoning.adaptive


@pytest.mark.parametrize("model", ["claude-opus-4-8", "claude-opus-4-7", "claude-sonnet-5"])
def test_newest_claude_models_are_adaptive_only_and_refuse_non_default_sampling(model: str) -> None:
    r = rules("anthropic", model)
    assert r.reasoning.adaptive and r.reasoning.thinking_budgets is None
    assert r.refuses("temperature", 0.5) and not r.refuses("temperature", 1)
    assert r.refuses("top_p", 0.9)


def test_claude_cache_minimums_per_model() -> None:
    assert rules("anthropic", "claude-haiku-4-5").cache_min_tokens == 4096
    assert rules("anthropic", "claude-opus-4-7").cache_min_tokens == 4096
    assert rules("anthropic", "claude-sonnet-4-5").cache_min_tokens == 1024
    assert rules("anthropic", "claude-opus-4-8").cache_min_tokens == 1024


def test_anthropic_error_examples_carry_the_documented_messages() -> None:
    by_rule = {e.rule: e for e in BOOK.error_examples("anthropic")}
    assert "cannot both be specified" in by_rule["temperature_top_p_exclusive"].body["error"]["message"]
    assert "1024" in by_rule["thinking_budget_too_small"].body["error"]["message"]
    assert "thinking.budget_tokens" in by_rule["thinking_budget_exceeds_max_tokens"].body["error"]["message"]
    assert all(e.body["type"] == "error" for e in by_rule.values())


def test_openai_error_examples_carry_the_exact_codes() -> None:
    by_rule = {e.rule: e for e in BOOK.error_examples("openai")}
    assert by_rule["max_tokens_unsupported"].body["error"]["code"] == "unsupported_parameter"
    assert by_rule["max_tokens_unsupported"].body["error"]["param"] == "max_tokens"
    assert by_rule["temperature_default_only"].body["error"]["code"] == "unsupported_value"
    assert "logprobs_unsupported" in by_rule


@pytest.mark.parametrize("model", ["deepseek-reasoner", "deepseek-v4-pro", "deepseek-v4-flash"])
def test_deepseek_thinking_models_refuse_logprobs_and_ignore_sampling(model: str) -> None:
    r = rules("deepseek", model)
    assert r.refuses("logprobs", True) and r.refuses("top_logprobs", 2)
    assert r.unsupported["temperature"] is Unsupported.IGNORED
    assert r.drops("temperature", 0.3) and not r.refuses("temperature", 0.3)
    assert not r.logprobs
    assert r.prompt_caching is PromptCaching.AUTOMATIC


def test_deepseek_json_mode_only_and_chat_alias_keeps_logprobs() -> None:
    assert rules("deepseek", "deepseek-v4-pro").structured_output is StructuredOutput.JSON_OBJECT
    assert rules("deepseek", "deepseek-v4-pro").reasoning.efforts == ("high", "max")
    chat = rules("deepseek", "deepseek-chat")
    assert chat.logprobs and not chat.refuses("logprobs", True)


def test_groq_refuses_its_documented_fields() -> None:
    r = rules("groq", "llama-3.3-70b-versatile")
    for name in ("logprobs", "logit_bias", "top_logprobs"):
        assert r.refuses(name, 1), name
    assert r.refuses("n", 2) and not r.refuses("n", 1)
    assert rules("groq", "openai/gpt-oss-120b").reasoning.efforts == ("low", "medium", "high")
    assert "image" in rules("groq", "meta-llama/llama-4-scout-17b-16e-instruct").input_modalities
    assert any(e.rule == "logprobs_unsupported" for e in BOOK.error_examples("groq"))


def test_xai_reasoning_models_refuse_penalties_and_stop() -> None:
    r = rules("xai", "grok-4.3")
    for name in ("presence_penalty", "frequency_penalty", "stop"):
        assert r.refuses(name, 0.5), name
    assert r.reasoning.efforts == ("none", "low", "medium", "high")


def test_gemini_maps_reasoning_effort_and_refuses_logprobs() -> None:
    assert rules("google", "gemini-2.5-flash").reasoning.efforts == ("none", "low", "medium", "high")
    assert "none" not in (rules("google", "gemini-2.5-pro").reasoning.efforts or ())
    assert rules("google", "gemini-3-flash-preview").reasoning.efforts == ("minimal", "low", "medium", "high")
    assert rules("google", "gemini-3.1-pro-preview").structured_output is StructuredOutput.JSON_SCHEMA
    assert rules("google", "gemini-2.5-flash").refuses("logprobs", True)


def test_open_model_hosts_and_undocumented_providers() -> None:
    assert rules("together", "openai/gpt-oss-120b").structured_output is StructuredOutput.JSON_SCHEMA
    assert rules("together", "openai/gpt-oss-120b").logprobs
    assert rules("fireworks", "accounts/fireworks/models/glm-5p1").structured_output is StructuredOutput.JSON_SCHEMA
    assert rules("cerebras", "llama-3.3-70b").refuses("frequency_penalty", 0.1)
    assert rules("mistral", "mistral-large-2512").temperature_max == 1
    for provider in ("moonshot", "alibaba", "sambanova", "deepinfra", "novita", "typhoon", "byteplus"):
        model = next(m for p, m in SEEDED if p == provider)
        r = rules(provider, model)
        assert r.structured_output is StructuredOutput.NONE and not r.logprobs, provider
        assert r.input_modalities == frozenset({"text"}), provider


def test_unknown_provider_gets_the_conservative_reading() -> None:
    assert rules("no-such-provider", "x") is UNKNOWN

"""What each real provider's endpoint accepts, per model: the researched rules in
`data/param_rules.json`, typed. Adapters normalise bodies by them and the simulator refuses what
they say the real provider refuses, so both read this one copy.

A model's rules are its provider's `defaults`, overlaid by the first `models` entry whose glob
matches the model's upstream name. A provider the file does not know gets `UNKNOWN`, the most
conservative reading (nothing beyond plain text and `max_tokens`).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

RULES_FILE = Path(__file__).with_name("data") / "param_rules.json"

# OpenAI's documented defaults: a "default_only" field is accepted only with this value.
OPENAI_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {"temperature": 1, "top_p": 1, "presence_penalty": 0, "frequency_penalty": 0, "n": 1})

# reasoning_effort values from least to most reasoning (OpenAI's vocabulary).
EFFORT_ORDER = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


class TokenLimitField(StrEnum):
    MAX_TOKENS = "max_tokens"
    MAX_COMPLETION_TOKENS = "max_completion_tokens"
    EITHER = "either"


class Unsupported(StrEnum):
    ERROR = "error"  # the provider answers 4xx when the field is present
    IGNORED = "ignored"  # accepted, no effect
    DEFAULT_ONLY = "default_only"  # refused unless it has OpenAI's default value


class ReasoningControl(StrEnum):
    REASONING_EFFORT = "reasoning_effort"
    THINKING = "thinking"  # Anthropic's thinking {type: enabled, budget_tokens}
    NONE = "none"


class SamplingWithReasoning(StrEnum):
    FREE = "free"
    TEMPERATURE_1_ONLY = "temperature_1_only"
    REFUSED = "refused"


class StructuredOutput(StrEnum):
    JSON_SCHEMA = "json_schema"  # native strict JSON schema (and JSON mode)
    JSON_OBJECT = "json_object"  # JSON mode only
    TOOL = "tool"  # only through a forced tool call, which the adapter sets up
    NONE = "none"


class PromptCaching(StrEnum):
    AUTOMATIC = "automatic"
    EXPLICIT = "explicit"  # cache_control markers
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Reasoning:
    control: ReasoningControl
    efforts: tuple[str, ...] | None
    thinking_budgets: Mapping[str, int] | None
    adaptive: bool
    sampling_with_reasoning: SamplingWithReasoning


@dataclass(frozen=True, slots=True)
class ParamRules:
    token_limit_field: TokenLimitField
    unsupported: Mapping[str, Unsupported]
    exclusive: tuple[tuple[str, ...], ...]
    temperature_max: float | None
    reasoning: Reasoning
    structured_output: StructuredOutput
    anthropic_output_format: str | None
    logprobs: bool
    input_modalities: frozenset[str]
    prompt_caching: PromptCaching
    cache_min_tokens: int | None
    sources: tuple[str, ...] = field(default=())

    def refuses(self, name: str, value: Any) -> bool:
        """True when the provider would answer 4xx to `name: value` (what the simulator enforces)."""
        kind = self.unsupported.get(name)
        if kind is Unsupported.ERROR:
            return True
        return kind is Unsupported.DEFAULT_ONLY and value != OPENAI_DEFAULTS.get(name)

    def drops(self, name: str, value: Any) -> bool:
        """True when an adapter must not send `name: value`: refused, or sent for nothing."""
        return self.refuses(name, value) or self.unsupported.get(name) is Unsupported.IGNORED


UNKNOWN = ParamRules(
    token_limit_field=TokenLimitField.MAX_TOKENS, unsupported=MappingProxyType({}), exclusive=(),
    temperature_max=None,
    reasoning=Reasoning(ReasoningControl.NONE, None, None, False, SamplingWithReasoning.FREE),
    structured_output=StructuredOutput.NONE, anthropic_output_format=None, logprobs=False,
    input_modalities=frozenset({"text"}), prompt_caching=PromptCaching.NONE, cache_min_tokens=None,
)


@dataclass(frozen=True, slots=True)
class ErrorExample:
    """A provider's documented answer to breaking one rule: what the simulator sends back."""

    rule: str
    status: int
    body: Mapping[str, Any]
    source: str


@dataclass(frozen=True, slots=True)
class _ProviderRules:
    defaults: dict[str, Any]
    overrides: tuple[tuple[tuple[str, ...], dict[str, Any], tuple[str, ...]], ...]
    errors: tuple[ErrorExample, ...]


@dataclass(frozen=True, slots=True)
class RuleBook:
    """Every provider's rules, as read from the file."""

    researched: str
    providers: Mapping[str, _ProviderRules]
    # (provider, model name) -> resolved rules; filled on first use, never changed after.
    _resolved: dict[tuple[str, str], ParamRules] = field(default_factory=dict, compare=False, repr=False)

    def for_model(self, provider: str, model_name: str) -> ParamRules:
        key = (provider, model_name)
        rules = self._resolved.get(key)
        if rules is None:
            rules = self._resolved[key] = _resolve(self.providers.get(provider), model_name)
        return rules

    def error_examples(self, provider: str) -> tuple[ErrorExample, ...]:
        entry = self.providers.get(provider)
        return entry.errors if entry is not None else ()


def load_rule_book(path: Path = RULES_FILE) -> RuleBook:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    providers: dict[str, _ProviderRules] = {}
    for name, entry in data["providers"].items():
        overrides = tuple(
            (tuple(o["match"]), dict(o.get("rules") or {}), tuple(o.get("source") or ()))
            for o in entry.get("models") or ()
        )
        errors = tuple(ErrorExample(rule=e["rule"], status=int(e["status"]), body=e["body"], source=e.get("source", ""))
                       for e in entry.get("error_examples") or ())
        providers[name] = _ProviderRules(dict(entry["defaults"]), overrides, errors)
    return RuleBook(researched=str(data.get("researched") or ""), providers=MappingProxyType(providers))


@cache
def rule_book() -> RuleBook:
    """The project's rules, read once per process (the file ships with the code and never changes)."""
    return load_rule_book()


def rules_for(provider: str, model_name: str) -> ParamRules:
    """The rules of `model_name` (the provider's own name for it) at `provider`."""
    return rule_book().for_model(provider, model_name)


def _resolve(entry: _ProviderRules | None, model_name: str) -> ParamRules:
    if entry is None:
        return UNKNOWN
    merged = dict(entry.defaults)
    sources = tuple(entry.defaults.get("source") or ())
    for globs, rules, more_sources in entry.overrides:
        if any(fnmatch.fnmatchcase(model_name, g) for g in globs):
            reasoning = {**(merged.get("reasoning") or {}), **(rules.get("reasoning") or {})}
            merged.update(rules)
            merged["reasoning"] = reasoning
            sources += more_sources
            break
    return _typed(merged, sources)


def _typed(raw: Mapping[str, Any], sources: tuple[str, ...]) -> ParamRules:
    r = raw.get("reasoning") or {}
    budgets = r.get("thinking_budgets")
    return ParamRules(
        token_limit_field=TokenLimitField(raw["token_limit_field"]),
        unsupported=MappingProxyType({k: Unsupported(v) for k, v in (raw.get("unsupported") or {}).items()}),
        exclusive=tuple(tuple(group) for group in raw.get("exclusive") or ()),
        temperature_max=raw.get("temperature_max"),
        reasoning=Reasoning(
            control=ReasoningControl(r.get("control") or "none"),
            efforts=tuple(r["efforts"]) if r.get("efforts") else None,
            thinking_budgets=MappingProxyType({k: int(v) for k, v in budgets.items()}) if budgets else None,
            adaptive=bool(r.get("adaptive")),
            sampling_with_reasoning=SamplingWithReasoning(r.get("sampling_with_reasoning") or "free"),
        ),
        structured_output=StructuredOutput(raw["structured_output"]),
        anthropic_output_format=raw.get("anthropic_output_format"),
        logprobs=bool(raw["logprobs"]),
        input_modalities=frozenset(raw["input_modalities"]),
        prompt_caching=PromptCaching(raw["prompt_caching"]),
        cache_min_tokens=raw.get("cache_min_tokens"),
        sources=sources,
    )


def nearest_effort(wanted: str, supported: tuple[str, ...]) -> str | None:
    """The supported effort closest to `wanted` (the higher one on a tie); None when `wanted` is
    not a known effort or nothing is supported."""
    if wanted in supported:
        return wanted
    if wanted not in EFFORT_ORDER or not supported:
        return None
    rank = EFFORT_ORDER.index(wanted)
    known = [s for s in supported if s in EFFORT_ORDER]
    if not known:
        return None
    return min(known, key=lambda s: (abs(EFFORT_ORDER.index(s) - rank), -EFFORT_ORDER.index(s)))

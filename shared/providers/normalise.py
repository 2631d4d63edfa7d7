"""A chat body made acceptable to one model, by its researched rules (`shared.catalog.param_rules`).

The caller writes for OpenAI; each model takes its own subset. Here the output-limit field is
renamed to the one the model takes, fields it refuses (or ignores) are dropped, mutually
exclusive fields are reduced to one, an out-of-range temperature is clamped, and the reasoning
depth is expressed the way the model takes it (`reasoning_effort` or Anthropic's `thinking`).
Every change is returned in the notation of `x-ainfera-dropped-params`:

- `field`: not sent;
- `field->other`: sent as `other` (renamed, or translated);
- `field=value`: sent with another value.

Pure: no I/O, and the body passed in is not modified.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.catalog.param_rules import (
    ParamRules,
    ReasoningControl,
    SamplingWithReasoning,
    StructuredOutput,
    TokenLimitField,
    nearest_effort,
)

# What Anthropic sends when a caller gives no output limit (the translation's default) and the
# thinking budgets used when the rules give none: Claude's documented minimum budget is 1024.
DEFAULT_MAX_TOKENS = 4096
_DEFAULT_BUDGETS: Mapping[str, int] = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096,
                                       "xhigh": 8192, "max": 16384}
_FORCED_CHOICES = ("required",)


@dataclass(slots=True)
class Normalised:
    body: dict[str, Any]
    changes: list[str] = field(default_factory=list)

    def drop(self, name: str, note: str | None = None) -> None:
        if name in self.body:
            del self.body[name]
            self.changes.append(note or name)


def normalise(rules: ParamRules, body: Mapping[str, Any], *, efforts: tuple[str, ...] | None = None,
              rename_token_field: bool = True) -> Normalised:
    """`body` as the model takes it. `efforts` are the model row's documented `reasoning_effort`
    values, which win over the rules' provider-wide list. `rename_token_field` is off for a wire
    format whose translation reads either field itself (Anthropic)."""
    out = Normalised(dict(body))
    if rename_token_field:
        _token_field(rules, out)
    _reasoning(rules, out, efforts or rules.reasoning.efforts)
    for name in list(out.body):
        if rules.drops(name, out.body[name]):
            out.drop(name)
    for group in rules.exclusive:
        present = [name for name in group if name in out.body]
        for name in present[1:]:  # the first one listed is kept
            out.drop(name)
    temperature = out.body.get("temperature")
    if rules.temperature_max is not None and isinstance(temperature, int | float) \
            and temperature > rules.temperature_max:
        out.body["temperature"] = rules.temperature_max
        out.changes.append(f"temperature={rules.temperature_max:g}")
    return out


def _token_field(rules: ParamRules, out: Normalised) -> None:
    body = out.body
    if rules.token_limit_field is TokenLimitField.MAX_COMPLETION_TOKENS and "max_tokens" in body:
        value = body.pop("max_tokens")
        if "max_completion_tokens" in body:
            out.changes.append("max_tokens")
        else:
            body["max_completion_tokens"] = value
            out.changes.append("max_tokens->max_completion_tokens")
    elif rules.token_limit_field is TokenLimitField.MAX_TOKENS and "max_completion_tokens" in body:
        value = body.pop("max_completion_tokens")
        body["max_tokens"] = value  # the caller's most specific limit wins
        out.changes.append("max_completion_tokens->max_tokens")


def _reasoning(rules: ParamRules, out: Normalised, efforts: tuple[str, ...] | None) -> None:
    control = rules.reasoning.control
    if control is ReasoningControl.NONE and efforts:
        control = ReasoningControl.REASONING_EFFORT  # the catalog documents efforts for this model
    if control is ReasoningControl.THINKING:
        _as_thinking(rules, out)
    elif control is ReasoningControl.REASONING_EFFORT:
        _as_effort(out, efforts)
    else:
        out.drop("reasoning_effort")
        out.drop("thinking")


def _as_effort(out: Normalised, efforts: tuple[str, ...] | None) -> None:
    body = out.body
    thinking = body.get("thinking")
    if thinking is not None:
        del body["thinking"]
        if "reasoning_effort" in body:
            out.changes.append("thinking")
        else:
            body["reasoning_effort"] = effort_for_thinking(thinking)
            out.changes.append("thinking->reasoning_effort")
    wanted = body.get("reasoning_effort")
    if wanted is None or efforts is None:
        return
    chosen = nearest_effort(wanted, efforts)
    if chosen is None:
        out.drop("reasoning_effort")
    elif chosen != wanted:
        body["reasoning_effort"] = chosen
        out.changes.append(f"reasoning_effort={chosen}")


def effort_for_thinking(thinking: Mapping[str, Any]) -> str:
    """The `reasoning_effort` closest to an Anthropic thinking object (budgets as `_DEFAULT_BUDGETS`)."""
    kind = thinking.get("type")
    if kind == "disabled":
        return "none"
    if kind == "adaptive":
        return "medium"
    budget = int(thinking.get("budget_tokens") or 0)
    return "low" if budget <= 1024 else "medium" if budget <= 2048 else "high"


def _answers_through_tool(rules: ParamRules, body: Mapping[str, Any]) -> bool:
    """True when the structured answer asked for will come through a forced tool call."""
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind not in ("json_schema", "json_object"):
        return False
    native = rules.structured_output is StructuredOutput.JSON_SCHEMA and rules.anthropic_output_format is not None
    return not (kind == "json_schema" and native)


def _as_thinking(rules: ParamRules, out: Normalised) -> None:
    body = out.body
    budgets = rules.reasoning.thinking_budgets
    effort = body.get("reasoning_effort")
    if effort is not None:
        del body["reasoning_effort"]
        if "thinking" in body or effort == "none":
            out.changes.append("reasoning_effort")  # the caller's own thinking wins; "none" is Claude's default
        elif budgets is None and rules.reasoning.adaptive:
            body["thinking"] = {"type": "adaptive"}  # the model sets its own depth
            out.changes.append("reasoning_effort->thinking")
        else:
            table = budgets or _DEFAULT_BUDGETS
            key = nearest_effort(effort, tuple(table))
            body["thinking"] = {"type": "enabled", "budget_tokens": table[key] if key else 1024}
            out.changes.append("reasoning_effort->thinking")
    thinking = body.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type") == "enabled" and budgets is None \
            and rules.reasoning.adaptive:
        # Claude models that think adaptively only refuse a fixed budget (Anthropic's migration guides).
        body["thinking"] = {"type": "adaptive"}
        out.changes.append("thinking=adaptive")
    elif isinstance(thinking, Mapping) and thinking.get("type") == "adaptive" and not rules.reasoning.adaptive:
        body["thinking"] = {"type": "enabled", "budget_tokens": (budgets or _DEFAULT_BUDGETS)["medium"]}
        out.changes.append("thinking=enabled")
    thinking = body.get("thinking")
    if not isinstance(thinking, Mapping) or thinking.get("type") == "disabled":
        return
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
    forced = body.get("tool_choice") in _FORCED_CHOICES or isinstance(body.get("tool_choice"), Mapping) \
        or _answers_through_tool(rules, body)
    budget = thinking.get("budget_tokens")
    if forced or (thinking.get("type") == "enabled" and isinstance(budget, int) and budget >= limit):
        # Claude refuses thinking with a forced tool, and a budget that is not below max_tokens
        # (docs: extended thinking). The caller's tool choice and output limit mean more than the depth.
        out.drop("thinking")
        return
    if rules.reasoning.sampling_with_reasoning is not SamplingWithReasoning.FREE:
        if body.get("temperature") not in (None, 1):
            out.drop("temperature")
        if rules.reasoning.sampling_with_reasoning is SamplingWithReasoning.REFUSED:
            out.drop("top_p")
        elif isinstance(body.get("top_p"), int | float) and body["top_p"] < 0.95:
            out.drop("top_p")  # with thinking, top_p may only be between 0.95 and 1

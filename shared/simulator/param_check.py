"""The simulator refusing what the real provider refuses for one model, by the researched rules.

The rules are the ones the adapters normalise by (`shared/catalog/data/param_rules.json`, with
their sources there): one copy, so an adapter that forgets a rule fails against the simulator
the way it would fail in production. The error bodies are the providers' own, quoted from public
reports of them (cited beside each one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.catalog.param_rules import OPENAI_DEFAULTS, ParamRules, StructuredOutput, TokenLimitField, rules_for
from shared.catalog.types import WireFormat
from shared.simulator.dialect import Dialect, Reply
from shared.simulator.knowledge import ProviderFacts

# OpenAI Chat Completions content part type -> the input modality it needs. Whether a model takes
# images is the catalog's researched `vision` flag (`ProviderFacts.text_only`), as for the router;
# PDF and audio input come from the rules.
_PART_MODALITY = {"file": "pdf", "input_audio": "audio"}
# Anthropic content block type -> the input modality it needs.
_BLOCK_MODALITY = {"document": "pdf"}
# Claude's smallest thinking budget (docs.anthropic.com, extended thinking: "The minimum budget is
# 1,024 tokens").
MIN_THINKING_BUDGET = 1024


def refusal(dialect: Dialect, facts: ProviderFacts, model: str, payload: Mapping[str, Any]) -> Reply | None:
    """The provider's 400 for a body this model does not take, or None."""
    rules = rules_for(facts.name, model)
    images = model not in facts.text_only
    if facts.wire_format is WireFormat.ANTHROPIC_MESSAGES:
        message = anthropic_violation(rules, payload, images=images)
        return dialect.error(400, message) if message is not None else None
    return _openai_refusal(dialect, rules, payload, takes_effort=model in facts.efforts, images=images)


def _openai_refusal(dialect: Dialect, rules: ParamRules, payload: Mapping[str, Any], *,
                    takes_effort: bool, images: bool) -> Reply | None:
    if rules.token_limit_field is TokenLimitField.MAX_COMPLETION_TOKENS and "max_tokens" in payload:
        # OpenAI's answer for reasoning models, e.g. github.com/ITSpecialist111/ai_automation_suggester/issues/38
        # and github.com/griptape-ai/ComfyUI-Griptape/issues/312 (gpt-5).
        return dialect.error(400, "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                                  "'max_completion_tokens' instead.", code="unsupported_parameter", param="max_tokens")
    if payload.get("logprobs") and not rules.logprobs:
        # source `openai_logprobs_o4mini` in param_rules.json: a 403, not a 400.
        return dialect.error(403, "You are not allowed to request logprobs from this model")
    for name, value in payload.items():
        if not rules.refuses(name, value):
            continue
        if name in OPENAI_DEFAULTS and rules.unsupported.get(name) == "default_only":
            # e.g. "Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1)
            # value is supported." (github.com/cline/cline/issues/341, .../BeehiveInnovations/pal-mcp-server/issues/78)
            return dialect.error(400, f"Unsupported value: '{name}' does not support {_shown(value)} with this model. "
                                      f"Only the default ({_shown(OPENAI_DEFAULTS[name])}) value is supported.",
                                 code="unsupported_value", param=name)
        # e.g. "Unsupported parameter: 'temperature' is not supported with this model." (o3-mini, quoted in
        # github.com/BeehiveInnovations/pal-mcp-server/issues/78)
        return _unsupported_parameter(dialect, name)
    if payload.get("reasoning_effort") is not None and rules.reasoning.control != "reasoning_effort" \
            and not takes_effort:
        # source `openai_reasoning_effort_4o` in param_rules.json
        return dialect.error(400, "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
                             code="unsupported_parameter", param="reasoning.effort")
    temperature = payload.get("temperature")
    if _above(temperature, rules.temperature_max):
        return dialect.error(400, f"Invalid 'temperature': decimal above maximum value. Expected a value <= "
                                  f"{_shown(rules.temperature_max)}, but got {_shown(temperature)} instead.",
                             code="decimal_above_max_value", param="temperature")
    kind = _response_format(payload)
    if (kind == "json_schema" and rules.structured_output is not StructuredOutput.JSON_SCHEMA) \
            or (kind == "json_object" and rules.structured_output is StructuredOutput.NONE):
        return dialect.error(400, f"Invalid parameter: 'response_format' of type '{kind}' is not supported with "
                                  "this model.", code=None, param="response_format")
    for index, message in enumerate(payload.get("messages") or ()):
        content = message.get("content") if isinstance(message, Mapping) else None
        for position, part in enumerate(content if isinstance(content, list) else ()):
            kind = part.get("type") if isinstance(part, Mapping) else None
            needed = _PART_MODALITY.get(kind) if isinstance(kind, str) else None
            if (kind == "image_url" and not images) or (needed is not None and needed not in rules.input_modalities):
                return dialect.error(400, f"Invalid content type. {kind} is only supported by certain models.",
                                     code="invalid_value", param=f"messages.[{index}].content.[{position}].type")
    return None


def anthropic_violation(rules: ParamRules, payload: Mapping[str, Any], *, images: bool = True) -> str | None:
    """What Anthropic's Messages API says about a body this model does not take, or None."""
    for name in ("temperature", "top_p"):
        if payload.get(name) is not None and rules.refuses(name, payload[name]):
            # Claude models that think adaptively only: "temperature is deprecated for this model."
            # (source `anthropic_temperature_deprecated_issue` in param_rules.json)
            return f"{name} is deprecated for this model."
    for group in rules.exclusive:
        if all(payload.get(name) is not None for name in group):
            # github.com/langfuse/langfuse/issues/9882 (Sonnet 4.5), github.com/Vali-98/ChatterUI/issues/564 (4.6).
            return f"{' and '.join(f'`{n}`' for n in group)} cannot both be specified for this model. " \
                   "Please use only one."
    temperature = payload.get("temperature")
    if _above(temperature, rules.temperature_max):
        return f"temperature: Input should be less than or equal to {_shown(rules.temperature_max)}"
    thinking = payload.get("thinking")
    adaptive_only = rules.reasoning.thinking_budgets is None and rules.reasoning.adaptive
    if isinstance(thinking, Mapping) and thinking.get("type") == "enabled" and adaptive_only:
        # source `anthropic_thinking_enabled_unsupported_issue` in param_rules.json
        return '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and ' \
               '"output_config.effort" to control thinking behavior.'
    if isinstance(thinking, Mapping) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
            # github.com/themaximalist/llm.js/issues/30
            return f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_THINKING_BUDGET}"
        max_tokens = payload.get("max_tokens")
        if isinstance(max_tokens, int) and budget >= max_tokens:
            # docs.anthropic.com, extended thinking: "budget_tokens must be set to a value less than max_tokens".
            # source `anthropic_budget_max_issue` in param_rules.json
            return "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation " \
                   "at https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-" \
                   "context-window-size"
    if isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive"):
        if thinking.get("type") == "adaptive" and not rules.reasoning.adaptive:
            return "thinking.type: adaptive thinking is not supported on this model"
        if isinstance(temperature, int | float) and temperature != 1:
            # source `anthropic_thinking_temperature` in param_rules.json
            return "temperature may only be set to 1 when thinking is enabled or in adaptive mode"
        top_p = payload.get("top_p")
        if isinstance(top_p, int | float) and top_p < 0.95:
            # docs.anthropic.com, extended thinking, feature compatibility: top_p between 0.95 and 1 with thinking.
            return "`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled"
        choice = payload.get("tool_choice")
        if isinstance(choice, Mapping) and choice.get("type") in ("any", "tool"):
            # github.com/mastra-ai/mastra/issues/7507, github.com/can1357/oh-my-pi/issues/341
            return "Thinking may not be enabled when tool_choice forces tool use."
    if "output_format" in payload and rules.anthropic_output_format != "output_format":
        return "output_format: Extra inputs are not permitted"
    if "output_config" in payload and rules.anthropic_output_format != "output_config":
        return "output_config: Extra inputs are not permitted"
    for index, message in enumerate(payload.get("messages") or ()):
        content = message.get("content") if isinstance(message, Mapping) else None
        for position, block in enumerate(content if isinstance(content, list) else ()):
            kind = block.get("type") if isinstance(block, Mapping) else None
            needed = _BLOCK_MODALITY.get(kind) if isinstance(kind, str) else None
            if (kind == "image" and not images) or (needed is not None and needed not in rules.input_modalities):
                return f"messages.{index}.content.{position}: this model does not support {kind} input"
    return None


def _above(value: Any, limit: float | None) -> bool:
    return isinstance(value, int | float) and limit is not None and value > limit


def _unsupported_parameter(dialect: Dialect, name: str) -> Reply:
    return dialect.error(400, f"Unsupported parameter: '{name}' is not supported with this model.",
                         code="unsupported_parameter", param=name)


def _response_format(payload: Mapping[str, Any]) -> str | None:
    response_format = payload.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    return kind if kind in ("json_schema", "json_object") else None


def _shown(value: Any) -> str:
    """A value as OpenAI prints it in these messages: 0.2, 1, true."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)

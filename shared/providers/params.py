"""What each provider does with each Chat Completions field: forward it, drop it (and say so), or
refuse the request because the answer would mean something else without it.

`forwardable(model, provider, body)` is applied to every upstream body before its adapter
builds the request: first this module's provider-wide table, then the model's own researched
rules (`shared.catalog.param_rules`, applied by `normalise.py`). What it drops or translates is
reported to the caller (`x-ainfera-dropped-params` and the `ainfera` block).
`unservable(model, provider, needs)` names the meaning-changing features a model cannot serve:
the gateway refuses a pinned model with 400 naming the field and the model, and `ainfera-auto`
only routes to candidates that can serve them.

Researched 2026-12-03.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.catalog.param_rules import ParamRules, StructuredOutput, rules_for
from shared.catalog.types import Model, Provider, WireFormat
from shared.providers.normalise import normalise

# Features without which an answer means something else: never dropped, refused instead.
N = "n"  # n > 1: several choices
LOGPROBS = "logprobs"  # logprobs / top_logprobs
AUDIO = "audio"  # audio output (`audio`, or "audio" in `modalities`)
JSON_SCHEMA = "response_format.json_schema"  # structured output to a schema
JSON_OBJECT = "response_format.json_object"  # JSON mode
PDF_INPUT = "pdf input"  # `file` content parts
AUDIO_INPUT = "audio input"  # `input_audio` content parts

# Fields only OpenAI's own platform documents (openai-python 3.57.0 `completion_create_params`):
# prompt caching controls, the safety identifier, GPT-5 verbosity, web search, moderation, stored
# completions (`store`, `metadata`), predicted outputs, OpenAI's service tiers. No other OpenAI-
# compatible provider in the catalog documents them, and some refuse unknown fields.
OPENAI_PLATFORM_ONLY = frozenset({
    "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options", "safety_identifier", "verbosity",
    "web_search_options", "moderation", "store", "metadata", "prediction", "service_tier",
})

# Fields the Anthropic translation has no equivalent for (docs.anthropic.com/en/api/messages lists
# no penalties, logit_bias, seed or output modalities). `user` is translated (metadata.user_id).
ANTHROPIC_UNTRANSLATED = frozenset({"frequency_penalty", "presence_penalty", "logit_bias", "seed",
                                    "modalities"}) | OPENAI_PLATFORM_ONLY


@dataclass(frozen=True, slots=True)
class Rules:
    drops: frozenset[str]  # top-level fields not sent
    refuses: Mapping[str, str]  # feature -> why it cannot be served


_DEFAULT = Rules(drops=OPENAI_PLATFORM_ONLY, refuses={AUDIO: "no model in the catalog produces audio"})
_RULES: Mapping[str, Rules] = {
    "openai": Rules(drops=frozenset(), refuses={AUDIO: "no OpenAI model in the catalog produces audio"}),
    # console.groq.com/docs/openai: logprobs, logit_bias, top_logprobs and messages[].name "will
    # result in a 400 error"; "If N is supplied, it must be equal to 1".
    "groq": Rules(drops=OPENAI_PLATFORM_ONLY | {"logit_bias"},
                  refuses={N: "Groq serves one choice per request (n must be 1)",
                           LOGPROBS: "Groq does not return logprobs",
                           AUDIO: "no Groq chat model produces audio"}),
}
_ANTHROPIC = Rules(drops=ANTHROPIC_UNTRANSLATED,
                   refuses={N: "Anthropic's Messages API returns one message per request",
                            LOGPROBS: "Anthropic's Messages API returns no logprobs",
                            AUDIO: "Claude models do not produce audio"})


def _provider_rules(provider: str, wire_format: WireFormat) -> Rules:
    if wire_format is WireFormat.ANTHROPIC_MESSAGES:
        return _ANTHROPIC
    return _RULES.get(provider, _DEFAULT)


def needed_features(body: Mapping[str, Any]) -> set[str]:
    """The meaning-changing features an upstream body asks for."""
    needs = set()
    if (body.get("n") or 1) > 1:
        needs.add(N)
    if body.get("logprobs") or body.get("top_logprobs"):
        needs.add(LOGPROBS)
    if body.get("audio") is not None or "audio" in (body.get("modalities") or ()):
        needs.add(AUDIO)
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind == "json_schema":
        needs.add(JSON_SCHEMA)
    elif kind == "json_object":
        needs.add(JSON_OBJECT)
    part_types = {part.get("type") for m in body.get("messages") or () if isinstance(m.get("content"), list)
                  for part in m["content"] if isinstance(part, Mapping)}
    if "file" in part_types:
        needs.add(PDF_INPUT)
    if "input_audio" in part_types:
        needs.add(AUDIO_INPUT)
    return needs


def feature_param(feature: str) -> str:
    """The request field an error about `feature` points at."""
    if feature in (PDF_INPUT, AUDIO_INPUT):
        return "messages"
    return feature


def model_rules(model: Model, provider: Provider) -> ParamRules:
    return rules_for(provider.name, model.upstream_model)


def unservable(model: Model, provider: Provider, needs: Iterable[str]) -> dict[str, str]:
    """Feature -> why, for each of the features `needs` (`needed_features`) this model cannot serve."""
    refuses = dict(_provider_rules(provider.name, provider.wire_format).refuses)
    rules = model_rules(model, provider)
    if not rules.logprobs:
        refuses.setdefault(LOGPROBS, "the provider does not return logprobs for this model")
    if rules.structured_output is StructuredOutput.NONE:
        refuses[JSON_SCHEMA] = refuses[JSON_OBJECT] = "the provider documents no JSON output for this model"
    elif rules.structured_output is StructuredOutput.JSON_OBJECT:
        refuses[JSON_SCHEMA] = "the provider has JSON mode for this model, but no JSON-schema structured output"
    if "pdf" not in rules.input_modalities:
        refuses[PDF_INPUT] = "the model takes no PDF (file) input"
    if "audio" not in rules.input_modalities:
        refuses[AUDIO_INPUT] = "the model takes no audio input"
    return {f: refuses[f] for f in sorted(needs) if f in refuses}


def forwardable(model: Model, provider: Provider, body: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the body this model is sent, what was dropped or translated, in the order it happened)."""
    table = _provider_rules(provider.name, provider.wire_format)
    dropped = sorted(name for name in body if name in table.drops)
    kept = {name: value for name, value in body.items() if name not in table.drops}
    if provider.name == "groq" and any("name" in m for m in kept.get("messages", ())):
        # Groq refuses messages[].name (console.groq.com/docs/openai); the name is dropped, not the message.
        kept["messages"] = [{k: v for k, v in m.items() if k != "name"} for m in kept["messages"]]
        dropped.append("messages[].name")
    anthropic = provider.wire_format is WireFormat.ANTHROPIC_MESSAGES
    if not anthropic and _strip_cache_control(kept):
        dropped.append("cache_control")
    normalised = normalise(model_rules(model, provider), kept, efforts=model.reasoning_efforts,
                           rename_token_field=not anthropic)
    return normalised.body, dropped + normalised.changes


def _strip_cache_control(body: dict[str, Any]) -> bool:
    """Remove Anthropic `cache_control` markers (LiteLLM's convention: on content parts and tools)
    from a body for an OpenAI-compatible provider, which caches on its own and documents no such
    key; True when there were any. Copies only what it changes."""
    changed = False
    messages = body.get("messages")
    if isinstance(messages, list):
        out = []
        for message in messages:
            content = message.get("content") if isinstance(message, Mapping) else None
            if isinstance(content, list) and any(isinstance(p, Mapping) and "cache_control" in p for p in content):
                parts = [{k: v for k, v in p.items() if k != "cache_control"} if isinstance(p, Mapping) else p
                         for p in content]
                message = {**message, "content": parts}
                changed = True
            out.append(message)
        if changed:
            body["messages"] = out
    tools = body.get("tools")
    if isinstance(tools, list) and any(isinstance(t, Mapping) and "cache_control" in t for t in tools):
        body["tools"] = [{k: v for k, v in t.items() if k != "cache_control"} if isinstance(t, Mapping) else t
                         for t in tools]
        changed = True
    return changed

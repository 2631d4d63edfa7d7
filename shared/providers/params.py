"""What each provider does with each Chat Completions field: forward it, drop it (and say so), or
refuse the request because the answer would mean something else without it.

`forwardable(provider, body)` is applied to every upstream body before its adapter builds the
request; what it drops is reported to the caller (`x-ainfera-dropped-params` and the `ainfera`
block). `unservable(provider, request)` names the meaning-changing features a provider cannot
serve: the gateway refuses a pinned model with 400 naming the field and the model, and
`ainfera-auto` only routes to candidates that can serve them.

Researched 2026-12-03. Per-model rules (reasoning models' token field, sampling limits) are
the provider-fidelity work that builds on this table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.catalog.types import WireFormat

# Features without which an answer means something else: never dropped, refused instead.
N = "n"  # n > 1: several choices
LOGPROBS = "logprobs"  # logprobs / top_logprobs
AUDIO = "audio"  # audio output (`audio`, or "audio" in `modalities`)

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
                                    "reasoning_effort", "modalities"}) | OPENAI_PLATFORM_ONLY


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


def rules_for(provider: str, wire_format: WireFormat) -> Rules:
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
    return needs


def unservable(provider: str, wire_format: WireFormat, needs: Iterable[str]) -> dict[str, str]:
    """Feature -> why, for each of the features `needs` (`needed_features`) this provider cannot serve."""
    refuses = rules_for(provider, wire_format).refuses
    return {f: refuses[f] for f in sorted(needs) if f in refuses}


def forwardable(provider: str, wire_format: WireFormat, body: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the body this provider is sent, the fields dropped from it, sorted)."""
    rules = rules_for(provider, wire_format)
    dropped = sorted(name for name in body if name in rules.drops)
    kept = {name: value for name, value in body.items() if name not in rules.drops}
    if provider == "groq" and any("name" in m for m in kept.get("messages", ())):
        # Groq refuses messages[].name (console.groq.com/docs/openai); the name is dropped, not the message.
        kept["messages"] = [{k: v for k, v in m.items() if k != "name"} for m in kept["messages"]]
        dropped.append("messages[].name")
    return kept, dropped

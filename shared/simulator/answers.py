"""The simulator's deterministic answers: token counts, completion length, filler text, tool calls.

Rules (the same request always gets the same usage and text):
- prompt tokens = sum over messages (an Anthropic top-level `system` counts as one) of
  ceil(characters of its text / 4) + 4, plus 85 per image. A message's text is its
  string content or text parts, tool-call names and arguments, and tool results.
- completion tokens = max(1, floor(ratio x prompt tokens)), where ratio is in
  [0.2, 1.5] and fixed per model name (from SHA-256 of the name); capped by the
  request's max tokens, in which case the finish reason is `length`.
- the text is that many filler words (one word = one token here).
- a tool call's completion tokens = max(1, ceil(characters of its JSON arguments / 4)).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import cycle, islice
from typing import Any

import orjson

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4
IMAGE_TOKENS = 85
MIN_RATIO = 0.2
MAX_RATIO = 1.5

_FILLER = (
    "the", "simulated", "provider", "answers", "with", "deterministic", "filler", "words", "so", "that",
    "tests", "and", "benchmarks", "can", "count", "tokens", "exactly", "without", "calling", "a",
    "real", "model",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool offered by the request: its name and JSON schema for the arguments."""

    name: str
    schema: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the simulated model says: text or one tool call, its token count and whether it was cut."""

    text: str | None
    tool_call: ToolCall | None
    completion_tokens: int
    truncated_by_max_tokens: bool


def message_tokens(text: str, images: int = 0) -> int:
    """Tokens one message contributes to the prompt."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS + IMAGE_TOKENS * images


def prompt_tokens(messages: Iterable[tuple[str, int]]) -> int:
    """Prompt tokens for (text, image count) pairs, one per message."""
    return sum(message_tokens(text, images) for text, images in messages)


def output_ratio(model: str) -> float:
    """This model's fixed output/input token ratio, in [MIN_RATIO, MAX_RATIO]."""
    fraction = int.from_bytes(hashlib.sha256(model.encode()).digest()[:8], "big") / 2**64
    return MIN_RATIO + (MAX_RATIO - MIN_RATIO) * fraction


def filler_text(words: int) -> str:
    return " ".join(islice(cycle(_FILLER), words))


def text_answer(model: str, prompt: int, max_tokens: int | None) -> Answer:
    natural = max(1, math.floor(output_ratio(model) * prompt))
    capped = max_tokens is not None and natural > max_tokens
    tokens = max_tokens if capped and max_tokens is not None else natural
    return Answer(text=filler_text(tokens), tool_call=None, completion_tokens=tokens, truncated_by_max_tokens=capped)


def text_pieces(text: str) -> list[str]:
    """A text as a stream sends it: one word (one token here) per piece, each with its leading space."""
    words = text.split(" ")
    return [words[0], *(" " + word for word in words[1:])] if text else []


def argument_pieces(arguments: str) -> list[str]:
    """Tool-call arguments as a stream sends them: a token's worth of characters per piece."""
    return [arguments[i:i + CHARS_PER_TOKEN] for i in range(0, len(arguments), CHARS_PER_TOKEN)]


def json_answer(schema: Mapping[str, Any]) -> Answer:
    """A structured answer (JSON mode, or a JSON schema): a JSON text satisfying the schema."""
    text = orjson.dumps(example_arguments(schema)).decode()
    tokens = max(1, math.ceil(len(text) / CHARS_PER_TOKEN))
    return Answer(text=text, tool_call=None, completion_tokens=tokens, truncated_by_max_tokens=False)


def tool_answer(tool: ToolSpec, call_id: str) -> Answer:
    arguments = example_arguments(tool.schema)
    tokens = max(1, math.ceil(len(orjson.dumps(arguments)) / CHARS_PER_TOKEN))
    call = ToolCall(id=call_id, name=tool.name, arguments=arguments)
    return Answer(text=None, tool_call=call, completion_tokens=tokens, truncated_by_max_tokens=False)


def choose_tool(tools: tuple[ToolSpec, ...], forced_name: str | None) -> ToolSpec | None:
    """The named tool if the request forces one (and offers it), else the first offered."""
    if forced_name:
        for tool in tools:
            if tool.name == forced_name:
                return tool
    return tools[0] if tools else None


def example_arguments(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments that satisfy a simple JSON schema: required properties (all, if none are listed)."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    required = schema.get("required")
    names = [n for n in required if n in properties] if isinstance(required, list) else list(properties)
    return {name: _example_value(properties[name]) for name in names}


def _example_value(schema: Any) -> Any:
    if not isinstance(schema, Mapping):
        return "sim"
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object":
        return example_arguments(schema)
    return {"integer": 1, "number": 1.0, "boolean": True, "array": [], "null": None}.get(str(kind), "sim")

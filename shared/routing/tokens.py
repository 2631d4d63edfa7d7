"""Estimating input tokens before a provider counts them.

A router needs a number before the call; providers' own tokenizers differ, so this is a
deliberately simple, fast and stable rule: about four characters per token for text, a
fixed overhead per message, and a flat charge per image. Receipts use the provider's
actual counts; only estimates use this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CHARS_PER_TOKEN = 4
PER_MESSAGE_OVERHEAD = 4
PER_REQUEST_OVERHEAD = 3
IMAGE_TOKENS = 765  # OpenAI's cost of one 512px-tiled image at detail=high, a fair middle figure


def _text_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def estimate_input_tokens(messages: Iterable[Mapping[str, Any]], tools: Iterable[Any] | None = None) -> int:
    total = PER_REQUEST_OVERHEAD
    for m in messages:
        total += PER_MESSAGE_OVERHEAD
        content = m.get("content")
        if isinstance(content, str):
            total += _text_tokens(content)
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    total += _text_tokens(str(part.get("text", "")))
                elif part.get("type") in ("image_url", "input_image"):
                    total += IMAGE_TOKENS
                else:
                    total += _text_tokens(str(part))
        for call in m.get("tool_calls") or ():
            total += _text_tokens(str(call))
    for tool in tools or ():
        total += _text_tokens(str(tool))
    return total

"""The legacy `functions` / `function_call` request fields, answered in their own shape.

Providers take `tools`; `upstream_body` sends legacy functions as tools. A caller that sent
`functions` expects OpenAI's legacy answer: `message.function_call` (one call) instead of
`message.tool_calls`, and `finish_reason: "function_call"`. This module turns the answer back,
for a whole message and for a stream's deltas alike.
"""

from __future__ import annotations

from typing import Any


def as_legacy_functions(choices: list[dict[str, Any]], *, key: str = "message") -> list[dict[str, Any]]:
    """`choices` with their first tool call as `function_call`; `key` is "message", or "delta" for chunks."""
    out = []
    for choice in choices:
        part = dict(choice.get(key) or {})
        calls = part.pop("tool_calls", None)
        if calls:
            function = dict(calls[0].get("function") or {})
            part["function_call"] = {k: v for k, v in function.items() if k in ("name", "arguments")}
        reason = choice.get("finish_reason")
        out.append({**choice, key: part, "finish_reason": "function_call" if reason == "tool_calls" else reason})
    return out

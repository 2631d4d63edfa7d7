"""The adapter for Anthropic's Messages API: OpenAI chat-completions in, OpenAI shapes out.

The request is translated in `anthropic_translate.py`. Response: text blocks are joined,
`tool_use` blocks become `tool_calls`, stop reasons map to finish reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from shared.errors import ProviderNotConfigured, UpstreamError, UpstreamMalformed
from shared.providers.anthropic_translate import to_anthropic
from shared.providers.classify import (
    UpstreamFault,
    classify,
    decode_object,
    looks_like_model_not_found,
    token_count,
    try_decode_object,
)
from shared.providers.types import Completion, UpstreamRequest

ANTHROPIC_VERSION = "2023-06-01"

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicMessagesAdapter:
    """Builds and parses Anthropic Messages calls. Stateless."""

    def build(self, *, url: str, api_key: str, upstream_model: str, body: Mapping[str, Any]) -> UpstreamRequest:
        if not api_key:
            raise ProviderNotConfigured("no credentials are configured for this provider")
        headers = {
            "x-api-key": api_key,
            "anthropic-version": ANTHROPIC_VERSION,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        payload = to_anthropic(body, upstream_model)
        return UpstreamRequest(url=url, headers=headers, body=orjson.dumps(payload))

    def parse(self, status: int, headers: Mapping[str, str], content: bytes) -> Completion:
        if not 200 <= status < 300:
            raise classify_anthropic_error(status, headers, content)
        data = decode_object(content, status=status)
        blocks = data.get("content")
        usage = data.get("usage")
        if data.get("type") != "message" or not isinstance(blocks, list):
            raise UpstreamMalformed("provider answer is not a message object", upstream_status=status)
        if not isinstance(usage, dict):
            raise UpstreamMalformed("provider answer has no usage block", upstream_status=status)
        input_tokens = token_count(usage.get("input_tokens"))
        output_tokens = token_count(usage.get("output_tokens"))
        if input_tokens is None or output_tokens is None:
            raise UpstreamMalformed("provider answer has no numeric input_tokens/output_tokens", upstream_status=status)
        # Cached prompt tokens are reported apart from input_tokens; they are still prompt tokens.
        for cached in ("cache_creation_input_tokens", "cache_read_input_tokens"):
            input_tokens += token_count(usage.get(cached)) or 0
        upstream_id = data.get("id")
        upstream_model = data.get("model")
        return Completion(
            choices=[_choice(blocks, data.get("stop_reason"), status)],
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            upstream_id=upstream_id if isinstance(upstream_id, str) else None,
            upstream_model=upstream_model if isinstance(upstream_model, str) else None,
        )


def classify_anthropic_error(status: int, headers: Mapping[str, str], content: bytes) -> UpstreamError:
    """Read `{"type": "error", "error": {"type", "message"}}` and classify it."""
    data = try_decode_object(content) or {}
    found = data.get("error")
    error: dict[str, Any] = found if isinstance(found, dict) else {}
    message = error["message"] if isinstance(error.get("message"), str) else ""
    code = error["type"] if isinstance(error.get("type"), str) else None
    details = error.get("details")
    if isinstance(details, dict) and isinstance(details.get("error_code"), str):
        code = details["error_code"]  # e.g. enforced_spend_limit_reached on a 429
    # Anthropic answers an unknown model with 404 not_found_error "model: <name>".
    model_not_found = (code == "not_found_error" and message.startswith("model:")) or looks_like_model_not_found(
        None, message
    )
    return classify(status, headers, UpstreamFault(message, code, model_not_found))


# --- response: Anthropic -> OpenAI -------------------------------------------------------


def _choice(blocks: list[Any], stop_reason: Any, status: int) -> dict[str, Any]:
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, dict):
            raise UpstreamMalformed("provider answer has a content block that is not an object", upstream_status=status)
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif block.get("type") == "tool_use":
            tool_calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
        # thinking and server-tool blocks have no OpenAI chat equivalent and are left out.
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    finish = _STOP_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    return {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}

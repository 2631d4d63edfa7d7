"""The simulator speaking Anthropic Messages: strict validation, answers and errors in Anthropic's shapes.

Strict on purpose: it refuses what the real API refuses (unknown top-level fields, a
`system` role inside messages, turns that do not alternate, tool results that do not
answer the previous turn's tool uses), so the adapter's translation is really tested.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from typing import Any

import orjson

from shared.simulator.answers import Answer, ToolSpec, message_tokens
from shared.simulator.dialect import ParsedRequest, Reply
from shared.simulator.knowledge import ProviderFacts

_TOP_LEVEL_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
        "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
    }
)  # fmt: skip
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_FAILURE_MESSAGES = {
    401: "invalid x-api-key",
    429: "This request would exceed the rate limit for your organization. Please try again later.",
    500: "Internal server error",
    529: "Overloaded",
}
_IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


class _Invalid(Exception):
    """A validation failure; the message is what the real API would say."""


class AnthropicDialect:
    def check_headers(self, facts: ProviderFacts, headers: Mapping[str, str]) -> Reply | None:
        key = headers.get(facts.auth_header, "").strip()
        if not key or key == "invalid":
            return self.error(401, _FAILURE_MESSAGES[401])
        for name in facts.required_headers:
            if not headers.get(name):
                return self.error(400, f"{name}: header is required")
        return None

    def parse(self, payload: Any) -> ParsedRequest | Reply:
        if not isinstance(payload, dict):
            return self.invalid_json()
        try:
            return _parse(payload)
        except _Invalid as exc:
            return self.error(400, str(exc))

    def error(self, status: int, message: str, *, code: str | None = None, param: str | None = None) -> Reply:
        kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        body = {"type": "error", "error": {"type": kind, "message": message}}
        return Reply(status, orjson.dumps(body))

    def invalid_json(self) -> Reply:
        return self.error(400, "There was an error parsing the body of your request as JSON.")

    def unknown_url(self, method: str, path: str) -> Reply:
        return self.error(404, "Not Found")

    def model_not_found(self, model: str) -> Reply:
        return self.error(404, f"model: {model}")

    def unsupported_value(self, param: str, value: str, supported: tuple[str, ...]) -> Reply:
        return self.error(400, f"{param}: Input should be {' or '.join(repr(v) for v in supported)}")

    def failure(self, status: int, *, model: str, retry_after_s: float) -> Reply:
        reply = self.error(status, _FAILURE_MESSAGES.get(status, f"Simulated failure (HTTP {status})"))
        if status != 429:
            return reply
        return Reply(reply.status, reply.body, ((b"retry-after", str(math.ceil(retry_after_s)).encode()),))

    def completion(self, request: ParsedRequest, answer: Answer) -> Reply:
        content: list[dict[str, Any]]
        if answer.tool_call is not None:
            call = answer.tool_call
            content = [{"type": "tool_use", "id": f"toolu_{call.id}", "name": call.name, "input": call.arguments}]
            stop_reason = "tool_use"
        else:
            content = [{"type": "text", "text": answer.text or ""}]
            stop_reason = "max_tokens" if answer.truncated_by_max_tokens else "end_turn"
        body = {
            "id": f"msg_{secrets.token_hex(12)}",
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": request.prompt_tokens,
                "output_tokens": answer.completion_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
        return Reply(200, orjson.dumps(body))

    def malformed(self) -> Reply:
        return Reply(200, b'{"id": "msg_sim", "type": "message", "content": [{"type": "text", "text": }')


def _parse(payload: dict[str, Any]) -> ParsedRequest:
    unknown = sorted(set(payload) - _TOP_LEVEL_FIELDS)
    if unknown:
        raise _Invalid(f"{unknown[0]}: Extra inputs are not permitted")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise _Invalid("model: Field required")
    max_tokens = payload.get("max_tokens")
    if max_tokens is None:
        raise _Invalid("max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _Invalid("max_tokens: Input should be a positive integer")
    messages = payload.get("messages")
    if messages is None:
        raise _Invalid("messages: Field required")
    if not isinstance(messages, list) or not messages:
        raise _Invalid("messages: at least one message is required")
    counted = [(_system_text(payload.get("system")), 0)] if payload.get("system") else []
    previous_tool_uses: set[str] = set()
    last_user_text = ""
    for index, message in enumerate(messages):
        role, blocks = _message(message, index, last=index == len(messages) - 1)
        if index > 0 and messages[index - 1].get("role") == role:
            raise _Invalid(f'messages.{index}: roles must alternate between "user" and "assistant"')
        results = {b["tool_use_id"] for b in blocks if b["type"] == "tool_result"}
        if results - previous_tool_uses:
            raise _Invalid(
                f"messages.{index}.content: unexpected `tool_use_id` found in `tool_result` blocks. Each "
                "`tool_result` block must have a corresponding `tool_use` block in the previous message."
            )
        if previous_tool_uses - results:
            raise _Invalid(
                f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately after"
            )
        previous_tool_uses = {b["id"] for b in blocks if b["type"] == "tool_use"}
        counted.append(_blocks_text(blocks))
        if role == "user":
            last_user_text = "".join(b["text"] for b in blocks if b["type"] == "text")
    tools = _tools(payload.get("tools"))
    choice = payload.get("tool_choice")
    forced, disabled = _tool_choice(choice, tools)
    _check_sampling(payload)
    return ParsedRequest(
        model=model,
        prompt_tokens=sum(message_tokens(text, images) for text, images in counted),
        last_user_text=last_user_text,
        max_tokens=max_tokens,
        tools=tools,
        forced_tool=forced,
        tools_disabled=disabled,
        choices=1,
        conversation=[payload.get("system"), messages],
    )


def _message(message: Any, index: int, *, last: bool) -> tuple[str, list[dict[str, Any]]]:
    """(role, content blocks) of one message, with its blocks validated.

    Only a final assistant message (a prefill) may be empty.
    """
    if not isinstance(message, dict):
        raise _Invalid(f"messages.{index}: Input should be an object")
    role = message.get("role")
    if role == "system":
        raise _Invalid(
            'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
            'not "system" as an input message role.'
        )
    if role not in ("user", "assistant"):
        raise _Invalid(f"messages.{index}.role: Input should be 'user' or 'assistant'")
    content = message.get("content")
    if isinstance(content, str):
        if content:
            return role, [{"type": "text", "text": content}]
        if role == "assistant" and last:
            return role, []
        raise _Invalid(f"messages.{index}: all messages must have non-empty content")
    if not isinstance(content, list) or not content:
        raise _Invalid(f"messages.{index}: all messages must have non-empty content")
    for position, block in enumerate(content):
        _check_block(block, role, f"messages.{index}.content.{position}")
    return role, content


def _check_block(block: Any, role: str, where: str) -> None:
    if not isinstance(block, dict):
        raise _Invalid(f"{where}: Input should be an object")
    kind = block.get("type")
    if kind == "text":
        if not isinstance(block.get("text"), str) or not block["text"]:
            raise _Invalid(f"{where}.text: text content blocks must be non-empty")
    elif kind == "image":
        _check_image(block.get("source"), where)
    elif kind == "tool_use" and role == "assistant":
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            raise _Invalid(f"{where}: tool_use blocks need an id and a name")
        if not isinstance(block.get("input"), dict):
            raise _Invalid(f"{where}.input: Input should be an object")
    elif kind == "tool_result" and role == "user":
        if not isinstance(block.get("tool_use_id"), str):
            raise _Invalid(f"{where}.tool_use_id: Field required")
        result = block.get("content", "")
        if not isinstance(result, str | list):
            raise _Invalid(f"{where}.content: Input should be a string or a list of blocks")
    else:
        raise _Invalid(f"{where}.type: unexpected block type {kind!r} in a {role} message")


def _check_image(source: Any, where: str) -> None:
    if not isinstance(source, dict):
        raise _Invalid(f"{where}.source: Field required")
    if source.get("type") == "base64":
        if source.get("media_type") not in _IMAGE_MEDIA_TYPES or not isinstance(source.get("data"), str):
            raise _Invalid(f"{where}.source: base64 images need a supported media_type and data")
    elif source.get("type") == "url":
        if not isinstance(source.get("url"), str):
            raise _Invalid(f"{where}.source.url: Field required")
    else:
        raise _Invalid(f"{where}.source.type: Input should be 'base64' or 'url'")


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in system):
        return "".join(str(b.get("text") or "") for b in system)
    raise _Invalid("system: Input should be a string or a list of text blocks")


def _blocks_text(blocks: list[dict[str, Any]]) -> tuple[str, int]:
    """The countable text of a message's blocks and its number of images."""
    parts: list[str] = []
    images = 0
    for block in blocks:
        kind = block["type"]
        if kind == "text":
            parts.append(block["text"])
        elif kind == "image":
            images += 1
        elif kind == "tool_use":
            parts.append(block["name"] + orjson.dumps(block["input"]).decode())
        elif kind == "tool_result":
            result = block.get("content", "")
            if isinstance(result, str):
                parts.append(result)
            else:
                text, nested_images = _blocks_text([b for b in result if isinstance(b, dict) and "type" in b])
                parts.append(text)
                images += nested_images
    return "".join(parts), images


def _tools(raw: Any) -> tuple[ToolSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _Invalid("tools: Input should be a list")
    tools: list[ToolSpec] = []
    for index, tool in enumerate(raw):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise _Invalid(f"tools.{index}.name: Field required")
        if not isinstance(tool.get("input_schema"), dict):
            raise _Invalid(f"tools.{index}.input_schema: Field required")
        extra = sorted(set(tool) - {"name", "description", "input_schema", "cache_control", "type"})
        if extra:
            raise _Invalid(f"tools.{index}.{extra[0]}: Extra inputs are not permitted")
        tools.append(ToolSpec(tool["name"], tool["input_schema"]))
    return tuple(tools)


def _tool_choice(choice: Any, tools: tuple[ToolSpec, ...]) -> tuple[str | None, bool]:
    """(forced tool name, "" for any, or None; whether tools are disabled)."""
    if choice is None:
        return None, False
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise _Invalid("tool_choice: Input should be an object with type auto, any, tool or none")
    kind = choice["type"]
    if kind == "tool":
        name = choice.get("name")
        if name not in {tool.name for tool in tools}:
            raise _Invalid(f"tool_choice.name: no tool named {name!r} in tools")
        return str(name), False
    return ("" if kind == "any" else None), kind == "none"


def _check_sampling(payload: Mapping[str, Any]) -> None:
    temperature = payload.get("temperature")
    if temperature is not None and (not isinstance(temperature, int | float) or not 0 <= temperature <= 1):
        raise _Invalid("temperature: Input should be between 0 and 1")
    stops = payload.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        raise _Invalid("stop_sequences: Input should be a list of strings")
    metadata = payload.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or set(metadata) - {"user_id"}):
        raise _Invalid("metadata: only user_id is permitted")

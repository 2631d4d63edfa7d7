"""Validating an Anthropic Messages request as strictly as the real API does (the simulator's side).

It refuses what the real API refuses: unknown top-level fields, a `system` role inside
messages, turns that do not alternate, tool results that do not answer the previous turn's
tool uses, malformed image sources, and sampling parameters the current models reject.
`AnthropicDialect` (`anthropic_dialect.py`) turns an `Invalid` into Anthropic's error shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from shared.simulator.answers import ToolSpec, message_tokens
from shared.simulator.dialect import ParsedRequest

_TOP_LEVEL_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
        "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
        "output_format", "output_config",
    }
)  # fmt: skip
_IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


class Invalid(Exception):
    """A validation failure; the message is what the real API would say."""


def parse_request(payload: dict[str, Any]) -> ParsedRequest:
    unknown = sorted(set(payload) - _TOP_LEVEL_FIELDS)
    if unknown:
        raise Invalid(f"{unknown[0]}: Extra inputs are not permitted")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise Invalid("model: Field required")
    max_tokens = payload.get("max_tokens")
    if max_tokens is None:
        raise Invalid("max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise Invalid("max_tokens: Input should be a positive integer")
    messages = payload.get("messages")
    if messages is None:
        raise Invalid("messages: Field required")
    if not isinstance(messages, list) or not messages:
        raise Invalid("messages: at least one message is required")
    counted = [(_system_text(payload.get("system")), 0)] if payload.get("system") else []
    previous_tool_uses: set[str] = set()
    last_user_text = ""
    for index, message in enumerate(messages):
        role, blocks = _message(message, index, last=index == len(messages) - 1)
        if index > 0 and messages[index - 1].get("role") == role:
            raise Invalid(f'messages.{index}: roles must alternate between "user" and "assistant"')
        results = {b["tool_use_id"] for b in blocks if b["type"] == "tool_result"}
        if results - previous_tool_uses:
            raise Invalid(
                f"messages.{index}.content: unexpected `tool_use_id` found in `tool_result` blocks. Each "
                "`tool_result` block must have a corresponding `tool_use` block in the previous message."
            )
        if previous_tool_uses - results:
            raise Invalid(
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
    stream = payload.get("stream", False)
    if not isinstance(stream, bool):
        raise Invalid("stream: Input should be a valid boolean")
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
        stream=stream,
        answer_schema=_answer_schema(payload),
    )


def _message(message: Any, index: int, *, last: bool) -> tuple[str, list[dict[str, Any]]]:
    """(role, content blocks) of one message, with its blocks validated.

    Only a final assistant message (a prefill) may be empty.
    """
    if not isinstance(message, dict):
        raise Invalid(f"messages.{index}: Input should be an object")
    role = message.get("role")
    if role == "system":
        raise Invalid(
            'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
            'not "system" as an input message role.'
        )
    if role not in ("user", "assistant"):
        raise Invalid(f"messages.{index}.role: Input should be 'user' or 'assistant'")
    content = message.get("content")
    if isinstance(content, str):
        if content:
            return role, [{"type": "text", "text": content}]
        if role == "assistant" and last:
            return role, []
        raise Invalid(f"messages.{index}: all messages must have non-empty content")
    if not isinstance(content, list) or not content:
        raise Invalid(f"messages.{index}: all messages must have non-empty content")
    for position, block in enumerate(content):
        _check_block(block, role, f"messages.{index}.content.{position}")
    return role, content


def _check_block(block: Any, role: str, where: str) -> None:
    if not isinstance(block, dict):
        raise Invalid(f"{where}: Input should be an object")
    kind = block.get("type")
    if kind == "text":
        if not isinstance(block.get("text"), str) or not block["text"]:
            raise Invalid(f"{where}.text: text content blocks must be non-empty")
    elif kind == "image":
        _check_image(block.get("source"), where)
    elif kind == "document" and role == "user":
        source = block.get("source")
        # docs.anthropic.com/en/docs/build-with-claude/pdf-support: a base64 PDF (or a URL) source.
        if not isinstance(source, dict) or not (
                (source.get("type") == "base64" and source.get("media_type") == "application/pdf"
                and isinstance(source.get("data"), str)) or source.get("type") == "url"):
            raise Invalid(f"{where}.source: documents need a base64 application/pdf source or a url")
    elif kind == "tool_use" and role == "assistant":
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            raise Invalid(f"{where}: tool_use blocks need an id and a name")
        if not isinstance(block.get("input"), dict):
            raise Invalid(f"{where}.input: Input should be an object")
    elif kind == "tool_result" and role == "user":
        if not isinstance(block.get("tool_use_id"), str):
            raise Invalid(f"{where}.tool_use_id: Field required")
        result = block.get("content", "")
        if not isinstance(result, str | list):
            raise Invalid(f"{where}.content: Input should be a string or a list of blocks")
    else:
        raise Invalid(f"{where}.type: unexpected block type {kind!r} in a {role} message")


def _check_image(source: Any, where: str) -> None:
    if not isinstance(source, dict):
        raise Invalid(f"{where}.source: Field required")
    if source.get("type") == "base64":
        if source.get("media_type") not in _IMAGE_MEDIA_TYPES or not isinstance(source.get("data"), str):
            raise Invalid(f"{where}.source: base64 images need a supported media_type and data")
    elif source.get("type") == "url":
        if not isinstance(source.get("url"), str):
            raise Invalid(f"{where}.source.url: Field required")
    else:
        raise Invalid(f"{where}.source.type: Input should be 'base64' or 'url'")


def _answer_schema(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The JSON schema of native structured output (`output_format`, or `output_config.format`)."""
    config = payload.get("output_config")
    fmt = payload.get("output_format") or (config.get("format") if isinstance(config, dict) else None)
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise Invalid("output_format: Input should be an object with type 'json_schema' and a schema")
    schema: Mapping[str, Any] = fmt["schema"]
    return schema


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in system):
        return "".join(str(b.get("text") or "") for b in system)
    raise Invalid("system: Input should be a string or a list of text blocks")


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
        raise Invalid("tools: Input should be a list")
    tools: list[ToolSpec] = []
    for index, tool in enumerate(raw):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise Invalid(f"tools.{index}.name: Field required")
        if not isinstance(tool.get("input_schema"), dict):
            raise Invalid(f"tools.{index}.input_schema: Field required")
        extra = sorted(set(tool) - {"name", "description", "input_schema", "cache_control", "type"})
        if extra:
            raise Invalid(f"tools.{index}.{extra[0]}: Extra inputs are not permitted")
        tools.append(ToolSpec(tool["name"], tool["input_schema"]))
    return tuple(tools)


def _tool_choice(choice: Any, tools: tuple[ToolSpec, ...]) -> tuple[str | None, bool]:
    """(forced tool name, "" for any, or None; whether tools are disabled)."""
    if choice is None:
        return None, False
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise Invalid("tool_choice: Input should be an object with type auto, any, tool or none")
    kind = choice["type"]
    if kind == "tool":
        name = choice.get("name")
        if name not in {tool.name for tool in tools}:
            raise Invalid(f"tool_choice.name: no tool named {name!r} in tools")
        return str(name), False
    return ("" if kind == "any" else None), kind == "none"


def _check_sampling(payload: Mapping[str, Any]) -> None:
    temperature = payload.get("temperature")
    if temperature is not None and (not isinstance(temperature, int | float) or not 0 <= temperature <= 1):
        raise Invalid("temperature: Input should be between 0 and 1")
    stops = payload.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        raise Invalid("stop_sequences: Input should be a list of strings")
    metadata = payload.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or set(metadata) - {"user_id"}):
        raise Invalid("metadata: only user_id is permitted")

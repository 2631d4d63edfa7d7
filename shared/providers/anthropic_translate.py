"""OpenAI chat-completions bodies translated into Anthropic Messages requests (pure, no I/O).

System/developer messages become the top-level `system`; tool calls and tool results become
`tool_use` / `tool_result` blocks; consecutive same-role turns are merged, because Anthropic
wants user and assistant to alternate. What has no Anthropic meaning is dropped, or refused
when the answer would silently differ.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from shared.errors import InvalidRequest

# Anthropic requires max_tokens; OpenAI callers may omit it. 4096 fits every current Claude model.
DEFAULT_MAX_TOKENS = 4096

_IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,(.+)$", re.DOTALL)
_UNSAFE_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")

Block = dict[str, Any]


def to_anthropic(body: Mapping[str, Any], upstream_model: str) -> dict[str, Any]:
    """Translate an OpenAI chat-completions body. Fields with no Anthropic meaning are dropped.

    Refused rather than dropped, because the answer would silently differ: n > 1,
    logprobs, and any response_format other than text.
    """
    _refuse_untranslatable(body)
    system, turns = _translate_messages(body.get("messages") or [])
    payload: dict[str, Any] = {"model": upstream_model, "messages": turns}
    payload["max_tokens"] = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
    if system:
        payload["system"] = system
    if body.get("temperature") is not None:
        # OpenAI accepts 0..2, Anthropic 0..1.
        payload["temperature"] = min(float(body["temperature"]), 1.0)
    if body.get("top_p") is not None:
        payload["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        payload["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = body.get("tools")
    if tools:
        payload["tools"] = [_tool(tool) for tool in tools]
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            payload["tool_choice"] = choice
    if isinstance(body.get("user"), str) and body["user"]:
        payload["metadata"] = {"user_id": body["user"]}
    return payload


def _refuse_untranslatable(body: Mapping[str, Any]) -> None:
    if (body.get("n") or 1) != 1:
        raise InvalidRequest("n > 1 is not supported by this model's provider", param="n")
    if body.get("logprobs"):
        raise InvalidRequest("logprobs are not supported by this model's provider", param="logprobs")
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") not in (None, "text"):
        raise InvalidRequest(
            "response_format other than text is not supported by this model's provider",
            param="response_format",
        )


def _translate_messages(messages: list[Mapping[str, Any]]) -> tuple[str | list[Block], list[dict[str, Any]]]:
    """System text (hoisted from anywhere in the list) and alternating user/assistant turns.
    System parts marked with `cache_control` make the system a list of text blocks."""
    system_parts: list[str] = []
    system_blocks: list[Block] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            text = _plain_text(message.get("content"))
            if text:
                system_parts.append(text)
                system_blocks += _system_blocks(message.get("content"))
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), index)
            if not blocks:
                raise InvalidRequest(f"messages[{index}] has no content", param=f"messages[{index}].content")
            _append(turns, "user", blocks)
        elif role == "assistant":
            blocks = _assistant_blocks(message, index)
            if blocks:
                _append(turns, "assistant", blocks)
        elif role == "tool":
            _append(turns, "user", [_tool_result(message)])
        else:
            raise InvalidRequest(
                f"messages[{index}] has role {role!r}, which this model's provider does not accept",
                param=f"messages[{index}].role",
            )
    if any("cache_control" in block for block in system_blocks):
        return system_blocks, turns
    return "\n\n".join(system_parts), turns


def _append(turns: list[dict[str, Any]], role: str, blocks: list[Block]) -> None:
    """Add a turn, merging with the previous one of the same role; tool results lead a user turn."""
    if turns and turns[-1]["role"] == role:
        merged: list[Block] = turns[-1]["content"] + blocks
        merged.sort(key=lambda block: block["type"] != "tool_result")  # stable: keeps order otherwise
        turns[-1]["content"] = merged
    else:
        turns.append({"role": role, "content": list(blocks)})


def _user_blocks(content: Any, index: int) -> list[Block]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[Block] = []
    for part in content or []:
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append(_with_cache_control({"type": "text", "text": part["text"]}, part))
        elif kind == "image_url":
            blocks.append(_with_cache_control(_image(part.get("image_url"), index), part))
        else:
            raise InvalidRequest(
                f"messages[{index}] has a {kind!r} part, which this model's provider does not accept",
                param=f"messages[{index}].content",
            )
    return blocks


def _image(image_url: Any, index: int) -> Block:
    url = image_url.get("url") if isinstance(image_url, Mapping) else image_url
    url = url if isinstance(url, str) else ""
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    match = _DATA_URL.match(url)
    if match and match.group(1).lower() in _IMAGE_MEDIA_TYPES:
        source = {"type": "base64", "media_type": match.group(1).lower(), "data": match.group(2)}
        return {"type": "image", "source": source}
    raise InvalidRequest(
        f"messages[{index}] has an image that is neither an http(s) URL nor a base64 "
        "data: URL of a JPEG, PNG, GIF or WebP image",
        param=f"messages[{index}].content",
    )


def _assistant_blocks(message: Mapping[str, Any], index: int) -> list[Block]:
    text = _plain_text(message.get("content"))
    blocks: list[Block] = [{"type": "text", "text": text}] if text else []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            raise InvalidRequest(
                f"messages[{index}] has a tool call whose arguments are not JSON",
                param=f"messages[{index}].tool_calls",
            ) from None
        if not isinstance(arguments, dict):
            arguments = {"value": arguments}
        blocks.append(
            {
                "type": "tool_use",
                "id": _safe_id(call.get("id")),
                "name": function.get("name"),
                "input": arguments,
            }
        )
    return blocks


def _tool_result(message: Mapping[str, Any]) -> Block:
    return {
        "type": "tool_result",
        "tool_use_id": _safe_id(message.get("tool_call_id")),
        "content": _plain_text(message.get("content")),
    }


def _system_blocks(content: Any) -> list[Block]:
    """A system message as Anthropic text blocks, keeping its parts' cache breakpoints."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [_with_cache_control({"type": "text", "text": text}, part) for part in content or []
            if isinstance(part, Mapping) and (text := _plain_text([part]))]


def _with_cache_control(block: Block, part: Any) -> Block:
    """`block` with the `cache_control` of the OpenAI part (or tool) it came from: LiteLLM's
    convention for Anthropic prompt caching through the OpenAI shape (`{"type": "text", "text": ...,
    "cache_control": {"type": "ephemeral"}}`), carried as is; Anthropic validates it."""
    control = part.get("cache_control") if isinstance(part, Mapping) else None
    if control is not None:
        block["cache_control"] = control
    return block


def _plain_text(content: Any) -> str:
    """The text of a string content or of OpenAI text/refusal parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text") or part.get("refusal") or "")
            for part in content
            if isinstance(part, Mapping) and part.get("type") in ("text", "refusal")
        )
    return ""


def _safe_id(value: Any) -> str:
    """Anthropic tool ids must match [a-zA-Z0-9_-]+; other vendors' ids may not."""
    return _UNSAFE_ID_CHARS.sub("_", str(value or "")) or "call"


def _tool(tool: Mapping[str, Any]) -> Block:
    if tool.get("type") != "function":
        raise InvalidRequest("only function tools are supported by this model's provider", param="tools")
    function = tool.get("function") or {}
    translated: Block = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        translated["description"] = function["description"]
    return _with_cache_control(translated, tool)


def _tool_choice(choice: Any, parallel_tool_calls: Any) -> Block | None:
    if choice == "none":
        return {"type": "none"}
    translated: Block | None
    if choice == "required":
        translated = {"type": "any"}
    elif isinstance(choice, Mapping) and choice.get("type") == "function":
        translated = {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    elif choice in (None, "auto"):
        translated = {"type": "auto"} if choice == "auto" or parallel_tool_calls is False else None
    else:
        raise InvalidRequest("tool_choice is not one of none, auto, required or a function", param="tool_choice")
    if translated is not None and parallel_tool_calls is False:
        translated["disable_parallel_tool_use"] = True
    return translated

"""OpenAI chat-completions bodies translated into Anthropic Messages requests (pure, no I/O).

System/developer messages become the top-level `system`; tool calls and tool results become
`tool_use` / `tool_result` blocks; consecutive same-role turns are merged, because Anthropic
wants user and assistant to alternate. `response_format` becomes Anthropic's native structured
output where the model has it, else a forced tool whose input is the answer (the response side
turns that tool call back into text). Bodies arrive normalised by the model's rules
(`normalise.py`): sampling limits, `thinking` and untranslatable fields are settled there.
What still has no Anthropic meaning is refused with `UnsupportedByModel`, so `ainfera-auto`
can try another model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from shared.catalog.param_rules import ParamRules, StructuredOutput
from shared.errors import InvalidRequest, UnsupportedByModel

# Anthropic requires max_tokens; OpenAI callers may omit it. 4096 fits every current Claude model.
DEFAULT_MAX_TOKENS = 4096

# The forced tool that carries a structured answer on models without native structured output
# (the approach of Anthropic's tool-use docs, "JSON output"; LiteLLM names its tool `json_tool_call`).
STRUCTURED_TOOL = "ainfera_structured_output"
# Anthropic's beta header for native structured outputs through `output_format`
# (docs.anthropic.com/en/docs/build-with-claude/structured-outputs).
STRUCTURED_OUTPUTS_BETA = "structured-outputs-2025-11-13"

_IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,(.+)$", re.DOTALL)
_UNSAFE_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")

Block = dict[str, Any]


def to_anthropic(body: Mapping[str, Any], upstream_model: str, rules: ParamRules) -> dict[str, Any]:
    """Translate an OpenAI chat-completions body for a model with these rules.

    Refused, because the answer would silently differ: n > 1, logprobs, and structured output
    the model has no way to give.
    """
    _refuse_untranslatable(body)
    system, turns = _translate_messages(body.get("messages") or [])
    payload: dict[str, Any] = {"model": upstream_model, "messages": turns}
    payload["max_tokens"] = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
    if system:
        payload["system"] = system
    for name in ("temperature", "top_p", "thinking"):
        if body.get(name) is not None:
            payload[name] = body[name]
    stop = body.get("stop")
    if stop:
        payload["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = body.get("tools")
    if tools:
        payload["tools"] = [_tool(tool) for tool in tools]
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            payload["tool_choice"] = choice
    _structured_output(body.get("response_format"), rules, payload)
    if isinstance(body.get("user"), str) and body["user"]:
        payload["metadata"] = {"user_id": body["user"]}
    return payload


def needs_structured_outputs_beta(payload: Mapping[str, Any]) -> bool:
    return "output_format" in payload


def _refuse_untranslatable(body: Mapping[str, Any]) -> None:
    if (body.get("n") or 1) != 1:
        raise UnsupportedByModel("n > 1 is not supported by this model's provider", param="n")
    if body.get("logprobs"):
        raise UnsupportedByModel("logprobs are not supported by this model's provider", param="logprobs")


def _structured_output(response_format: Any, rules: ParamRules, payload: dict[str, Any]) -> None:
    """`response_format` as the model can take it: native JSON schema output, or a forced tool."""
    if not isinstance(response_format, Mapping) or response_format.get("type") in (None, "text"):
        return
    kind = response_format.get("type")
    spec = response_format.get("json_schema") if kind == "json_schema" else None
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if kind not in ("json_schema", "json_object") or (kind == "json_schema" and not isinstance(schema, Mapping)):
        raise InvalidRequest("response_format must be text, json_object, or json_schema with a schema",
                             param="response_format")
    native = rules.anthropic_output_format
    if kind == "json_schema" and native is not None and rules.structured_output is StructuredOutput.JSON_SCHEMA:
        fmt = {"type": "json_schema", "schema": dict(schema or {})}
        if native == "output_config":
            payload["output_config"] = {"format": fmt}
        else:
            payload["output_format"] = fmt
        return
    if rules.structured_output is StructuredOutput.NONE:
        raise UnsupportedByModel("this model has no structured output", param="response_format")
    tool: Block = {"name": STRUCTURED_TOOL, "input_schema": dict(schema) if schema else {"type": "object"},
                   "description": "Give the answer as this tool's input. The input is the whole answer."}
    caller_tools = payload.get("tools") or []
    payload["tools"] = [*caller_tools, tool]
    choice = payload.get("tool_choice") or {"type": "auto"}
    if not caller_tools:
        payload["tool_choice"] = {"type": "tool", "name": STRUCTURED_TOOL}
    elif choice.get("type") == "auto":
        payload["tool_choice"] = {**choice, "type": "any"}  # one of the caller's tools, or the answer


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
        elif kind == "file":
            blocks.append(_with_cache_control(_document(part.get("file"), index), part))
        else:
            raise UnsupportedByModel(
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


def _document(file: Any, index: int) -> Block:
    """An OpenAI `file` part (a base64 data: URL of a PDF) as Anthropic's document block."""
    data = file.get("file_data") if isinstance(file, Mapping) else None
    match = _DATA_URL.match(data) if isinstance(data, str) else None
    if match is None or match.group(1).lower() != "application/pdf":
        raise UnsupportedByModel(
            f"messages[{index}] has a file this model's provider cannot read: only a PDF given inline as "
            "a base64 data: URL in file_data is translated (file_id refers to another provider's storage)",
            param=f"messages[{index}].content",
        )
    return {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                           "data": match.group(2)}}


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
        raise UnsupportedByModel("only function tools are supported by this model's provider", param="tools")
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

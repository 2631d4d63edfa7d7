"""A valid Messages request (`request.py`) as the body of a chat-completions request, which
`validate_chat_request` then checks like any other.

Content blocks become OpenAI content parts, `tool_use` blocks an assistant's `tool_calls`,
`tool_result` blocks `role: tool` messages, `system` a system message. `cache_control` markers
ride along on the parts, the system parts and the tool objects (LiteLLM's convention), for the
Anthropic adapter to pass on; `thinking` is the chat request's own extension field, and a PDF
document block a `file` part. What has no chat-completions field (`top_k`, and any top-level
field `request.py` does not declare) travels as an unknown field: reported in
`x-ainfera-dropped-params`, never forwarded.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

from shared.anthropic_api.request import (
    CountTokensRequest,
    DocumentBlock,
    ImageBlock,
    Message,
    MessagesRequest,
    TextBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
    UrlSource,
)
from shared.chat.request import ChatCompletionRequest
from shared.errors import InvalidRequest

_DROPPED_FIELDS = ("top_k",)  # no chat-completions field: reported as dropped


def chat_body(req: CountTokensRequest, model: str) -> dict[str, Any]:
    """The chat-completions body for `req`, naming `model` (a catalog slug or `ainfera-auto`)."""
    messages: list[dict[str, Any]] = []
    if req.system:
        messages.append({"role": "system", "content": req.system if isinstance(req.system, str)
                         else [_text_part(b) for b in req.system]})
    for index, message in enumerate(req.messages):
        messages.extend(_user(message, index) if message.role == "user" else _assistant(message, index))
    body: dict[str, Any] = {"model": model, "messages": messages}
    if req.tools:
        body["tools"] = [_tool(t, i) for i, t in enumerate(req.tools)]
    if req.tool_choice is not None:
        _tool_choice(req, body)
    if req.routing_hint is not None:
        body["routing_hint"] = req.routing_hint.model_dump(exclude_none=True, mode="json")
    if isinstance(req, MessagesRequest):
        _sampling(req, body)
    if isinstance(req, MessagesRequest) and req.thinking is not None:
        body["thinking"] = req.thinking.model_dump(exclude_none=True)
    for name in _DROPPED_FIELDS:
        value = getattr(req, name, None)
        if value is not None:
            body[name] = value.model_dump(exclude_none=True) if isinstance(value, BaseModel) else value
    for name, value in (req.model_extra or {}).items():
        if name in ChatCompletionRequest.model_fields:
            # Carried as an unknown field it would be forwarded as OpenAI's field of that name.
            raise InvalidRequest(f"{name}: Extra inputs are not permitted (it is a Chat Completions field; send it "
                                 "to /v1/chat/completions)", code="unknown_parameter", param=name)
        body[name] = value
    return body


def _sampling(req: MessagesRequest, body: dict[str, Any]) -> None:
    body["max_tokens"] = req.max_tokens
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p"), ("stop_sequences", "stop")):
        if getattr(req, ours) is not None:
            body[theirs] = getattr(req, ours)
    if req.metadata is not None and req.metadata.user_id is not None:
        body["user"] = req.metadata.user_id
    if req.service_tier is not None:
        body["service_tier"] = "auto" if req.service_tier == "auto" else "default"
    if req.stream:
        # Anthropic's stream ends with the usage (`message_delta`), so the usage chunk is always asked for.
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}


def _text_part(block: TextBlock) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "text", "text": block.text}
    if block.cache_control is not None:
        part["cache_control"] = block.cache_control.model_dump(exclude_none=True)
    return part


def _image_part(block: ImageBlock) -> dict[str, Any]:
    source = block.source
    url = source.url if isinstance(source, UrlSource) else f"data:{source.media_type};base64,{source.data}"
    part: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    if block.cache_control is not None:
        part["cache_control"] = block.cache_control.model_dump(exclude_none=True)
    return part


def _document_part(block: DocumentBlock) -> dict[str, Any]:
    """A PDF as OpenAI's `file` part (a data: URL in `file_data`), which the Anthropic adapter turns
    back into a document block and other providers read where their rules say they take PDFs."""
    file = {"filename": block.title or "document.pdf", "file_data": f"data:application/pdf;base64,{block.source.data}"}
    part: dict[str, Any] = {"type": "file", "file": file}
    if block.cache_control is not None:
        part["cache_control"] = block.cache_control.model_dump(exclude_none=True)
    return part


def _user(message: Message, index: int) -> list[dict[str, Any]]:
    """One user turn: its tool results as `tool` messages first, then the rest as one user message."""
    if isinstance(message.content, str):
        return [{"role": "user", "content": message.content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for position, block in enumerate(message.content):
        where = f"messages.{index}.content.{position}"
        if isinstance(block, TextBlock):
            parts.append(_text_part(block))
        elif isinstance(block, ImageBlock):
            parts.append(_image_part(block))
        elif isinstance(block, DocumentBlock):
            parts.append(_document_part(block))
        elif isinstance(block, ToolResultBlock):
            out.append(_tool_message(block, where))
        else:
            raise InvalidRequest(f"{where}: a user message cannot hold a {block.type} block", code="invalid_value",
                                 param=where)
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _tool_message(block: ToolResultBlock, where: str) -> dict[str, Any]:
    # `is_error` has no chat-completions field: the result's text is what the model reads either way.
    content: str | list[dict[str, Any]]
    if isinstance(block.content, list):
        if any(isinstance(part, ImageBlock) for part in block.content):
            raise InvalidRequest(f"{where}.content: images inside a tool_result are not supported; send the image "
                                 "in a user text turn instead", code="invalid_value", param=f"{where}.content")
        content = [_text_part(part) for part in block.content if isinstance(part, TextBlock)]
        if block.cache_control is not None and content:
            content[-1].setdefault("cache_control", block.cache_control.model_dump(exclude_none=True))
    else:
        content = block.content or ""
        if block.cache_control is not None:
            content = [{"type": "text", "text": content,
                        "cache_control": block.cache_control.model_dump(exclude_none=True)}]
    return {"role": "tool", "tool_call_id": block.tool_use_id, "content": content}


def _assistant(message: Message, index: int) -> list[dict[str, Any]]:
    """One assistant turn: text as content, tool uses as `tool_calls`. Thinking blocks are dropped:
    they mean something only to the model that wrote them, and chat completions cannot carry them.
    A turn of nothing but thinking is dropped whole."""
    if isinstance(message.content, str):
        return [{"role": "assistant", "content": message.content}]
    for position, block in enumerate(message.content):
        if isinstance(block, ImageBlock | ToolResultBlock):
            where = f"messages.{index}.content.{position}"
            raise InvalidRequest(f"{where}: an assistant message cannot hold a {block.type} block",
                                 code="invalid_value", param=where)
    parts = [_text_part(b) for b in message.content if isinstance(b, TextBlock)]
    calls = [{"id": b.id, "type": "function",
              "function": {"name": b.name, "arguments": orjson.dumps(b.input).decode()}}
             for b in message.content if isinstance(b, ToolUseBlock)]
    if not parts and not calls:
        return []
    out: dict[str, Any] = {"role": "assistant", "content": parts or None}
    if calls:
        out["tool_calls"] = calls
    return [out]


def _tool(tool: Tool, index: int) -> dict[str, Any]:
    if not isinstance(tool.input_schema.get("type"), str):
        raise InvalidRequest(f"tools.{index}.input_schema.type: Field required", code="invalid_value",
                             param=f"tools.{index}.input_schema")
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.input_schema}
    if tool.description is not None:
        function["description"] = tool.description
    out: dict[str, Any] = {"type": "function", "function": function}
    if tool.cache_control is not None:
        out["cache_control"] = tool.cache_control.model_dump(exclude_none=True)
    return out


def _tool_choice(req: CountTokensRequest, body: dict[str, Any]) -> None:
    choice = req.tool_choice
    assert choice is not None
    if not req.tools:
        if choice.type == "none":
            return  # nothing offered, nothing to refuse
        raise InvalidRequest("tool_choice: tool_choice may only be specified while providing tools",
                             code="invalid_value", param="tool_choice")
    if choice.type == "tool":
        if choice.name is None:
            raise InvalidRequest("tool_choice.name: Field required", code="invalid_value", param="tool_choice.name")
        body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    else:
        body["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[choice.type]
    if choice.disable_parallel_tool_use:
        body["parallel_tool_calls"] = False

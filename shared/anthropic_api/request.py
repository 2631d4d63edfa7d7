"""An Anthropic Messages request: validated with Anthropic's types, then translated into the body
of a chat-completions request, which `validate_chat_request` checks like any other.

Content blocks become OpenAI content parts, `tool_use` blocks an assistant's `tool_calls`,
`tool_result` blocks `role: tool` messages, `system` a system message. `cache_control` markers
ride along on the parts, the system parts and the tool objects (LiteLLM's convention), for the
Anthropic adapter to pass on. What has no chat-completions field (`top_k`, `thinking`, and any
top-level field this module does not declare) travels as an unknown field: reported in
`x-ainfera-dropped-params`, never forwarded.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.chat.request import MAX_MESSAGES, MAX_TOKENS_LIMIT, ChatCompletionRequest, RoutingHint
from shared.errors import InvalidRequest

MAX_STOP_SEQUENCES = 4  # what a chat-completions `stop` takes; Anthropic itself allows more
ToolName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")]
BlockId = Annotated[str, Field(min_length=1, max_length=256)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class _Block(BaseModel):
    # Blocks are typed strictly, but keys we do not read are ignored: SDKs echo answer blocks back
    # with fields only Anthropic's platform reads (citations, caller, toolset_name).
    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)


class CacheControl(_Strict):
    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] | None = None


class TextBlock(_Block):
    type: Literal["text"]
    text: str
    cache_control: CacheControl | None = None


class Base64Source(_Strict):
    type: Literal["base64"]
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: Annotated[str, Field(min_length=1)]


class UrlSource(_Strict):
    type: Literal["url"]
    url: Annotated[str, Field(pattern=r"^https?://", max_length=8192)]


class ImageBlock(_Block):
    type: Literal["image"]
    source: Annotated[Base64Source | UrlSource, Field(discriminator="type")]
    cache_control: CacheControl | None = None


class ToolUseBlock(_Block):
    type: Literal["tool_use"]
    id: BlockId
    name: ToolName
    input: dict[str, Any]
    cache_control: CacheControl | None = None


class ToolResultBlock(_Block):
    type: Literal["tool_result"]
    tool_use_id: BlockId
    content: str | list[Annotated[TextBlock | ImageBlock, Field(discriminator="type")]] | None = None
    is_error: bool | None = None
    cache_control: CacheControl | None = None


class ThinkingBlock(_Block):
    type: Literal["thinking"]
    thinking: str
    signature: str | None = None


class RedactedThinkingBlock(_Block):
    type: Literal["redacted_thinking"]
    data: str


Block = Annotated[TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | RedactedThinkingBlock,
                  Field(discriminator="type")]


class Message(_Strict):
    role: Literal["user", "assistant"]
    content: str | Annotated[list[Block], Field(min_length=1, max_length=10_000)]


class Tool(_Block):
    type: Literal["custom"] | None = None  # server tools (web search, code execution...) are Anthropic-hosted
    name: ToolName
    description: str | None = None
    input_schema: dict[str, Any]
    cache_control: CacheControl | None = None


class ToolChoice(_Strict):
    type: Literal["auto", "any", "tool", "none"]
    name: ToolName | None = None
    disable_parallel_tool_use: bool | None = None


class Metadata(_Strict):
    user_id: Annotated[str, Field(max_length=256)] | None = None


class Thinking(_Strict):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS_LIMIT)] | None = None


class CountTokensRequest(_Strict):
    """`POST /v1/messages/count_tokens`: what a message would be sent, without `max_tokens`."""

    # Undeclared top-level fields are kept (model_extra): reported, never forwarded.
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    model: Annotated[str, Field(min_length=1, max_length=256)]
    messages: Annotated[list[Message], Field(min_length=1, max_length=MAX_MESSAGES)]
    system: str | list[TextBlock] | None = None
    tools: Annotated[list[Tool], Field(max_length=512)] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    routing_hint: RoutingHint | None = None  # our extension, as on chat completions


class MessagesRequest(CountTokensRequest):
    """`POST /v1/messages`, with Anthropic's types (https://docs.anthropic.com/en/api/messages)."""

    max_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS_LIMIT)]
    metadata: Metadata | None = None
    stop_sequences: Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=MAX_STOP_SEQUENCES)] | None \
        = None
    stream: bool | None = None
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    service_tier: Literal["auto", "standard_only"] | None = None


R = TypeVar("R", bound=CountTokensRequest)
_COUNTED = frozenset(CountTokensRequest.model_fields)


def validate_messages_request(data: Any, kind: type[R]) -> R:
    """`data` (parsed by `parse_body`, so already free of U+0000 and deep nesting) as `kind`;
    the error names the field as Anthropic's API does (`messages.0.content`)."""
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    if kind is CountTokensRequest:
        # A message's own fields (max_tokens, stream, sampling) do not change its count: ignored.
        data = {k: v for k, v in data.items() if k in _COUNTED or k not in MessagesRequest.model_fields}
    try:
        return kind.model_validate(data)
    except ValidationError as e:
        # A union reports each member's error; the deepest is the one about what was sent, and among
        # equals, one that is not merely "not of this member's type".
        errors = e.errors(include_url=False)
        err = max(errors, key=lambda error: (len(error["loc"]), not error["type"].endswith("_type")))
        where = _where(err["loc"], data)
        if err["type"] == "missing":
            raise InvalidRequest(f"{where}: Field required", code="invalid_value", param=where) from e
        raise InvalidRequest(f"{where}: {err['msg']}", code="invalid_value", param=where or None) from e


_MEMBER_LABELS = frozenset({"str", "int", "float", "bool", "none"})


def _where(loc: tuple[str | int, ...], data: Any) -> str:
    """pydantic's error location as a path into what was sent. pydantic also names union members
    (`str`, `list[...]`) and, for a block, the value of its `type` tag; those are not in the body."""
    kept: list[str] = []
    current, tag_passed = data, False
    for part in loc:
        if isinstance(part, str) and ("[" in part or part.startswith("function-") or part in _MEMBER_LABELS):
            continue
        if isinstance(current, dict) and not tag_passed and current.get("type") == part:
            tag_passed = True
            continue
        kept.append(str(part))
        tag_passed = False
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
        else:
            current = None
    return ".".join(kept)


# --- into a chat-completions body ----------------------------------------------------------------

_DROPPED_FIELDS = ("top_k", "thinking")  # no chat-completions field: reported as dropped


def chat_body(req: CountTokensRequest, model: str) -> dict[str, Any]:
    """The chat-completions body for `req`, naming `model` (a catalog slug or `ainfera-auto`)."""
    messages: list[dict[str, Any]] = []
    if req.system:
        messages.append({"role": "system", "content": req.system if isinstance(req.system, str)
                         else [_text_part(b) for b in req.system]})
    for index, message in enumerate(req.messages):
        messages.extend(_user(message, index) if message.role == "user" else [_assistant(message)])
    body: dict[str, Any] = {"model": model, "messages": messages}
    if req.tools:
        body["tools"] = [_tool(t, i) for i, t in enumerate(req.tools)]
    if req.tool_choice is not None:
        _tool_choice(req, body)
    if req.routing_hint is not None:
        body["routing_hint"] = req.routing_hint.model_dump(exclude_none=True, mode="json")
    if isinstance(req, MessagesRequest):
        _sampling(req, body)
    # TODO: `thinking` goes upstream once ChatCompletionRequest declares it (the adapter side); until
    # then it is reported as dropped, like `top_k`, which chat completions have no field for.
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


def _assistant(message: Message) -> dict[str, Any]:
    """One assistant turn: text as content, tool uses as `tool_calls`. Thinking blocks are dropped:
    they mean something only to the model that wrote them, and chat completions cannot carry them."""
    if isinstance(message.content, str):
        return {"role": "assistant", "content": message.content}
    parts = [_text_part(b) for b in message.content if isinstance(b, TextBlock)]
    calls = [{"id": b.id, "type": "function",
              "function": {"name": b.name, "arguments": orjson.dumps(b.input).decode()}}
             for b in message.content if isinstance(b, ToolUseBlock)]
    for block in message.content:
        if isinstance(block, ImageBlock | ToolResultBlock):
            raise InvalidRequest(f"an assistant message cannot hold a {block.type} block", code="invalid_value",
                                 param="messages")
    out: dict[str, Any] = {"role": "assistant", "content": parts or None}
    if calls:
        out["tool_calls"] = calls
    return out


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

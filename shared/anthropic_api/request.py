"""An Anthropic Messages request, validated with Anthropic's types (https://docs.anthropic.com/en/api/messages):
strict types, `max_tokens` required, errors naming the field as Anthropic's API does
(`messages.0.content`). `chat_request.py` translates a valid one into a chat-completions body.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.chat.request import MAX_MESSAGES, MAX_TOKENS_LIMIT, RoutingHint
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


class PdfSource(_Strict):
    type: Literal["base64"]
    media_type: Literal["application/pdf"]
    data: Annotated[str, Field(min_length=1)]


class DocumentBlock(_Block):
    """A PDF (docs.anthropic.com/en/docs/build-with-claude/pdf-support), given inline in base64."""

    type: Literal["document"]
    source: PdfSource
    title: Annotated[str, Field(max_length=500)] | None = None
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


Block = Annotated[TextBlock | ImageBlock | DocumentBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock
                  | RedactedThinkingBlock, Field(discriminator="type")]


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
    budget_tokens: Annotated[int, Field(ge=1024, le=MAX_TOKENS_LIMIT)] | None = None  # Claude's minimum: 1024


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

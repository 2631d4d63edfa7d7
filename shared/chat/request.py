"""Validation of a chat-completions request body: the one place its rules live.

The fields and their types are those of OpenAI's Chat Completions API, checked on 2026-12-03
against the request type of the official `openai` Python SDK 3.57.0
(`openai/types/chat/completion_create_params.py`, generated from OpenAI's API specification).
Two extensions: `routing_hint` (ours), and `thinking` (Anthropic's extended-thinking object, as
LiteLLM also accepts it on this API): sent to Claude as it is, and mapped to `reasoning_effort`
for models that take that instead (`shared/providers/normalise.py`).

An unknown top-level field is accepted, kept with the request (`unknown_params`) and never
forwarded: `upstream_body` takes declared fields only, so no field the gateway did not declare
can reach a provider. A tenant whose policy says `strict_params` gets OpenAI's 400 instead.
Fields that try to choose the upstream URL, host or key are refused whatever the policy.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.errors import InvalidRequest
from shared.routing.stacks import StackHint
from shared.storable import check_storable

AUTO_MODELS = frozenset({"ainfera-auto", "ainfera-inference"})
MAX_TOKENS_LIMIT = 1_000_000
MAX_MESSAGES = 10_000

# Fields people try in order to steer where a request goes or which key it uses.
_STEERING_FIELDS = frozenset(
    {"api_base", "base_url", "api_key", "url", "endpoint", "headers", "extra_headers", "api_version",
     "provider_url", "upstream_url", "upstream", "key", "authorization", "organization", "project"}
)

PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class RoutingHint(_Strict):
    max_cost_usd: PositiveFinite | None = None
    stack: Annotated[StackHint, Field(strict=False)] | None = None  # JSON gives the value, not the enum
    latency_budget_ms: PositiveFinite | None = None
    # Put the router's decision log into the answer's `ainfera` block. It is always in the receipt
    # and the audit event; in every answer it would be about 4 KB encoded, stored and relayed for
    # callers who mostly never read it (docs/decisions.md, "The decision log on request").
    explain: bool | None = None


class _Open(BaseModel):
    # Objects that carry vendor fields we pass through; the fields we read have OpenAI's types.
    model_config = ConfigDict(extra="allow", strict=True)


class FunctionCall(_Open):
    name: Annotated[str, Field(max_length=256)]
    arguments: str  # a JSON document as a string, as OpenAI sends and expects it


class ToolCall(_Open):
    id: Annotated[str, Field(max_length=256)]
    type: Literal["function"]
    function: FunctionCall


class FunctionDefinition(_Open):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(_Open):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(_Open):
    name: Annotated[str, Field(min_length=1, max_length=64)]


class ToolChoice(_Open):
    type: Literal["function"]
    function: NamedFunction


class StreamOptions(_Open):
    include_usage: bool | None = None  # a last chunk with the usage, `choices: []`


class Thinking(_Open):
    """Anthropic's `thinking` (docs.anthropic.com, extended thinking): a token budget, adaptive, or off."""

    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: Annotated[int, Field(ge=1024, le=MAX_TOKENS_LIMIT)] | None = None

    @model_validator(mode="after")
    def _budget_when_enabled(self) -> Thinking:
        if self.type == "enabled" and self.budget_tokens is None:
            raise ValueError("thinking of type 'enabled' needs budget_tokens")
        return self


class Message(_Open):
    # Messages carry vendor fields we pass through (name, tool_call_id, ...).
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: Annotated[list[ToolCall], Field(max_length=512)] | None = None
    tool_call_id: Annotated[str, Field(max_length=256)] | None = None
    name: Annotated[str, Field(max_length=256)] | None = None

    @field_validator("content")
    @classmethod
    def _parts_have_types(cls, v: str | list[dict[str, Any]] | None) -> str | list[dict[str, Any]] | None:
        if isinstance(v, list):
            for part in v:
                if not isinstance(part.get("type"), str):
                    raise ValueError("each content part needs a string 'type'")
        return v


class FunctionChoice(_Open):
    name: Annotated[str, Field(min_length=1, max_length=64)]


class ChatCompletionRequest(_Strict):
    # Unknown top-level fields are kept (model_extra) to be reported, and never forwarded.
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    model: Annotated[str, Field(min_length=1, max_length=256)]
    messages: Annotated[list[Message], Field(min_length=1, max_length=MAX_MESSAGES)]
    max_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS_LIMIT)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS_LIMIT)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    logit_bias: dict[str, Annotated[int, Field(ge=-100, le=100)]] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    response_format: dict[str, Any] | None = None
    seed: int | None = None
    tools: Annotated[list[Tool], Field(max_length=512)] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    functions: Annotated[list[FunctionDefinition], Field(min_length=1, max_length=128)] | None = None  # legacy
    function_call: Literal["none", "auto"] | FunctionChoice | None = None  # legacy
    user: Annotated[str, Field(max_length=512)] | None = None
    safety_identifier: Annotated[str, Field(max_length=64)] | None = None
    prompt_cache_key: Annotated[str, Field(max_length=1024)] | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    prompt_cache_options: dict[str, Any] | None = None
    metadata: Annotated[dict[str, Annotated[str, Field(max_length=512)]], Field(max_length=16)] | None = None
    store: bool | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority", "fast"] | None = None
    modalities: Annotated[list[Literal["text", "audio"]], Field(max_length=2)] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    moderation: dict[str, Any] | None = None
    thinking: Thinking | None = None
    routing_hint: RoutingHint | None = None

    @property
    def is_auto(self) -> bool:
        return self.model in AUTO_MODELS

    @property
    def output_cap(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def unknown_params(self) -> list[str]:
        """Top-level fields OpenAI's API does not have: accepted, reported, never forwarded."""
        return sorted(self.model_extra or ())

    @property
    def wants_audio(self) -> bool:
        return self.audio is not None or "audio" in (self.modalities or ())


def parse_body(raw: bytes) -> Any:
    """Strict JSON: NaN, Infinity and trailing garbage are errors (orjson refuses them), and so is
    what Postgres or orjson could not take later (U+0000, deep nesting): see `shared.storable`.

    Every JSON body the gateway reads comes through here, before it is hashed for an
    Idempotency-Key or looked at by an endpoint, so each is checked once.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidRequest(f"We could not parse the JSON body of your request: {e}", code="invalid_json") from e
    check_storable(data)
    return data


def validate_chat_request(data: Any, *, strict: bool = False) -> ChatCompletionRequest:
    """Validate a parsed body; errors name the offending field, OpenAI style. `strict` refuses
    unknown fields as OpenAI does; otherwise they are kept, to be reported and not forwarded.

    `data` has passed `check_storable` already: `parse_body` checks a request body and
    `shared.batches.lines.validate_line` a batch line's, so it is not walked twice.
    """
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    for name in data:
        if name in ChatCompletionRequest.model_fields:
            continue
        if name.lower() in _STEERING_FIELDS:
            raise InvalidRequest(f"Unrecognized request argument supplied: {name}. Upstream URLs and keys are "
                                 "chosen by the catalog, never by the request.", code="unknown_parameter", param=name)
        if strict:
            raise InvalidRequest(f"Unrecognized request argument supplied: {name}", code="unknown_parameter",
                                 param=name)
    if data.get("functions") is not None and data.get("tools") is not None:
        raise InvalidRequest("Send tools or the legacy functions, not both.", code="invalid_value", param="functions")
    for choice, offered in (("tool_choice", "tools"), ("function_call", "functions")):
        if data.get(choice) is not None and not data.get(offered):
            # OpenAI's rule and wording for tool_choice; a choice among nothing cannot be honoured.
            raise InvalidRequest(f"Invalid value for '{choice}': '{choice}' is only allowed when '{offered}' are "
                                 "specified.", code="invalid_value", param=choice)
    if data.get("stream_options") is not None and data.get("stream") is not True:
        # OpenAI's answer, word for word (quoted in github.com/BerriAI/litellm/issues/5803).
        raise InvalidRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                             code="invalid_value", param="stream_options")
    try:
        req = ChatCompletionRequest.model_validate(data)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        # pydantic reports union branches in loc; keep the first path segments that are fields.
        param = _trim_union_loc(loc)
        raise InvalidRequest(f"Invalid value for '{param}': {err['msg']}.", code="invalid_value", param=param) from e
    for v in (req.temperature, req.top_p):
        if v is not None and not math.isfinite(v):
            raise InvalidRequest("Numbers must be finite.", code="invalid_value")
    return req


_TYPE_WORDS = frozenset({"str", "int", "float", "bool", "list", "dict", "none", "literal", "nullable", "union"})


def _trim_union_loc(loc: str) -> str:
    kept = []
    for part in loc.split("."):
        base = part.split("[")[0].lower()
        if base in _TYPE_WORDS or part.startswith(("constrained-", "list[", "dict[", "literal[")):
            continue
        kept.append(part)
    return ".".join(kept) or loc


_FORWARDABLE = frozenset(ChatCompletionRequest.model_fields) - {"routing_hint"}


def upstream_body(req: ChatCompletionRequest) -> dict[str, Any]:
    """What the adapters receive: the caller's declared fields as sent (never an unknown one, never
    our extension), the legacy `functions` / `function_call` as the `tools` / `tool_choice` every
    provider takes (`shared/chat/functions.py` turns the answer back)."""
    body = req.model_dump(exclude_unset=True, include=set(_FORWARDABLE), mode="json")
    functions = body.pop("functions", None)
    call = body.pop("function_call", None)
    if functions is not None:
        body["tools"] = [{"type": "function", "function": f} for f in functions]
    if isinstance(call, dict):
        body["tool_choice"] = {"type": "function", "function": {"name": call["name"]}}
    elif call is not None:
        body["tool_choice"] = call
    return body

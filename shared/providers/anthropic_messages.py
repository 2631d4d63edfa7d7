"""The adapter for Anthropic's Messages API: OpenAI chat-completions in, OpenAI shapes out.

The request is translated in `anthropic_translate.py`. Response: text blocks are joined,
`tool_use` blocks become `tool_calls`, stop reasons map to finish reasons; a call of the forced
structured-output tool becomes the answer's text, finished with "stop", as OpenAI gives JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from shared.anthropic_errors import STATUS_OF_TYPE
from shared.catalog.param_rules import rules_for
from shared.errors import ProviderNotConfigured, UpstreamError, UpstreamMalformed
from shared.providers.anthropic_translate import (
    STRUCTURED_OUTPUTS_BETA,
    STRUCTURED_TOOL,
    needs_structured_outputs_beta,
    to_anthropic,
)
from shared.providers.classify import (
    UpstreamFault,
    classify,
    decode_object,
    looks_like_model_not_found,
    token_count,
    try_decode_object,
)
from shared.providers.stream import AssembledStream
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
        return self._build(url, api_key, upstream_model, body, stream=False)

    def build_stream(self, *, url: str, api_key: str, upstream_model: str,
                     body: Mapping[str, Any]) -> UpstreamRequest:
        return self._build(url, api_key, upstream_model, body, stream=True)

    @staticmethod
    def _build(url: str, api_key: str, upstream_model: str, body: Mapping[str, Any], *,
               stream: bool) -> UpstreamRequest:
        if not api_key:
            raise ProviderNotConfigured("no credentials are configured for this provider")
        headers = {
            "x-api-key": api_key,
            "anthropic-version": ANTHROPIC_VERSION,
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
        }
        # The Messages format is Anthropic's own: its rules are the ones of Anthropic's models.
        payload = to_anthropic(body, upstream_model, rules_for("anthropic", upstream_model))
        if needs_structured_outputs_beta(payload):
            headers["anthropic-beta"] = STRUCTURED_OUTPUTS_BETA
        if stream:
            payload["stream"] = True  # the usage comes in message_start and message_delta
        return UpstreamRequest(url=url, headers=headers, body=orjson.dumps(payload))

    def stream_reader(self, *, input_tokens_estimate: int) -> AnthropicStreamReader:
        return AnthropicStreamReader(input_tokens_estimate)

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
        details = cache_details(usage)
        upstream_id = data.get("id")
        upstream_model = data.get("model")
        return Completion(
            choices=[_choice(blocks, data.get("stop_reason"), status)],
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            upstream_id=upstream_id if isinstance(upstream_id, str) else None,
            upstream_model=upstream_model if isinstance(upstream_model, str) else None,
            usage_details=details,
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


def cache_details(usage: dict[str, Any]) -> dict[str, Any]:
    """Anthropic's cache reads as OpenAI's `prompt_tokens_details.cached_tokens`, and its cache
    writes under our own `cache_write_tokens` there (OpenAI has no such count).

    Anthropic's `input_tokens` leaves out both (docs.anthropic.com/en/docs/build-with-claude/
    prompt-caching: "total input tokens = cache_read_input_tokens + cache_creation_input_tokens +
    input_tokens"), so the adapter's prompt tokens are that sum, as LiteLLM and OpenRouter report
    them and as OpenAI's `prompt_tokens` includes its `cached_tokens`."""
    read = token_count(usage.get("cache_read_input_tokens")) or 0
    written = token_count(usage.get("cache_creation_input_tokens")) or 0
    return {"prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": written}}


class AnthropicStreamReader(AssembledStream):
    """Anthropic's stream events (docs.anthropic.com/en/docs/build-with-claude/streaming) as OpenAI
    chunk choices: message_start gives the role, text_delta content, a tool_use block and its
    input_json_delta pieces one `tool_calls` entry, message_delta the finish reason and the output
    tokens; `ping` and thinking deltas carry nothing for the caller; an `error` event (an overload
    mid-stream, say) is classified like an error answer."""

    def __init__(self, input_tokens_estimate: int) -> None:
        super().__init__(input_tokens_estimate)
        self._tool_index: dict[int, int] = {}  # content block index -> OpenAI tool_calls index
        self._answer_blocks: set[int] = set()  # blocks of the structured-output tool: the answer's text

    def event(self, name: str, data: str) -> list[dict[str, Any]] | None:
        event = decode_object(data.encode(), status=200)
        kind = event.get("type", name)
        if kind == "error":
            # Classified by the status an answer of that error type would have had.
            raise classify_anthropic_error(STATUS_OF_TYPE.get(_error_type(event), 500), {}, data.encode())
        delta: dict[str, Any] | None = None
        finish: str | None = None
        if kind == "message_start" and isinstance(event.get("message"), dict):
            message = event["message"]
            self.upstream_id = message.get("id") if isinstance(message.get("id"), str) else None
            self.upstream_model = message.get("model") if isinstance(message.get("model"), str) else None
            self._usage(message.get("usage"))
            delta = {"role": "assistant", "content": ""}
        elif kind == "content_block_start" and isinstance(event.get("content_block"), dict):
            block = event["content_block"]
            if block.get("type") == "tool_use" and block.get("name") == STRUCTURED_TOOL:
                self._answer_blocks.add(event.get("index", 0))
            elif block.get("type") == "tool_use":
                position = self._tool_index.setdefault(event.get("index", 0), len(self._tool_index))
                delta = {"tool_calls": [{"index": position, "id": block.get("id"), "type": "function",
                                         "function": {"name": block.get("name"), "arguments": ""}}]}
        elif kind == "content_block_delta" and isinstance(event.get("delta"), dict):
            piece = event["delta"]
            if piece.get("type") == "text_delta" and isinstance(piece.get("text"), str):
                delta = {"content": piece["text"]}
            elif piece.get("type") == "input_json_delta" and isinstance(piece.get("partial_json"), str) \
                    and event.get("index", 0) in self._answer_blocks:
                delta = {"content": piece["partial_json"]}
            elif piece.get("type") == "input_json_delta" and isinstance(piece.get("partial_json"), str):
                position = self._tool_index.get(event.get("index", 0), 0)
                delta = {"tool_calls": [{"index": position, "function": {"arguments": piece["partial_json"]}}]}
        elif kind == "message_delta":
            self._usage(event.get("usage"))
            reason = event.get("delta", {}).get("stop_reason") if isinstance(event.get("delta"), dict) else None
            finish = _STOP_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"
            if finish == "tool_calls" and not self._tool_index:
                finish = "stop"  # only the structured-output tool was called: that is the answer
            delta = {}
        elif kind == "message_stop":
            self.ended = True
        if delta is None:
            return None
        choices = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        self.assembler.add(choices)
        return choices

    def _usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        if token_count(usage.get("input_tokens")) is not None:
            self.usage_details = cache_details(usage)
            cached = sum(token_count(usage.get(k)) or 0 for k in ("cache_creation_input_tokens",
                                                                    "cache_read_input_tokens"))
            self.input_tokens = (token_count(usage.get("input_tokens")) or 0) + cached
        if token_count(usage.get("output_tokens")) is not None:
            self.output_tokens = token_count(usage.get("output_tokens"))


def _error_type(event: dict[str, Any]) -> str:
    error = event.get("error")
    return error["type"] if isinstance(error, dict) and isinstance(error.get("type"), str) else ""


# --- response: Anthropic -> OpenAI -------------------------------------------------------


def _choice(blocks: list[Any], stop_reason: Any, status: int) -> dict[str, Any]:
    structured = False
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, dict):
            raise UpstreamMalformed("provider answer has a content block that is not an object", upstream_status=status)
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif block.get("type") == "tool_use" and block.get("name") == STRUCTURED_TOOL:
            texts.append(orjson.dumps(block.get("input") or {}).decode())
            structured = True
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
    if structured and not tool_calls:
        finish = "stop"
    return {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}

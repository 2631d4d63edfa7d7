"""The simulator speaking Anthropic Messages: answers and errors in Anthropic's shapes.

Requests are validated as strictly as the real API validates them (`anthropic_request.py`),
so the adapter's translation is really tested.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from typing import Any

import orjson

from shared.anthropic_errors import error_type_of
from shared.simulator.answers import Answer, argument_pieces, text_pieces
from shared.simulator.anthropic_request import Invalid, parse_request
from shared.simulator.dialect import ParsedRequest, Reply
from shared.simulator.knowledge import ProviderFacts

_FAILURE_MESSAGES = {
    401: "invalid x-api-key",
    429: "This request would exceed the rate limit for your organization. Please try again later.",
    500: "Internal server error",
    529: "Overloaded",
}
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
            return parse_request(payload)
        except Invalid as exc:
            return self.error(400, str(exc))

    def error(self, status: int, message: str, *, code: str | None = None, param: str | None = None) -> Reply:
        kind = error_type_of(status)
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

    def unsupported(self) -> Reply:
        # Claude 4.5 and later, github.com/langfuse/langfuse/issues/9882.
        return self.error(400, "`temperature` and `top_p` cannot both be specified for this model. "
                               "Please use only one.")

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
            "usage": {**_input_usage(request), "output_tokens": answer.completion_tokens},
        }
        return Reply(200, orjson.dumps(body))

    def stream(self, request: ParsedRequest, answer: Answer) -> tuple[bytes, ...]:
        """Anthropic's stream (docs.anthropic.com/en/docs/build-with-claude/streaming): message_start
        (usage with the input tokens), one content block (content_block_start, a ping, text_delta or
        input_json_delta pieces, content_block_stop), message_delta with the stop reason and the
        output tokens, message_stop. Each event is named in an `event:` line and repeats its type."""
        message: dict[str, Any] = {"id": f"msg_{secrets.token_hex(12)}", "type": "message", "role": "assistant",
                   "model": request.model, "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {**_input_usage(request), "output_tokens": 1}}
        events = [_event({"type": "message_start", "message": message})]
        if answer.tool_call is not None:
            call = answer.tool_call
            block: dict[str, Any] = {"type": "tool_use", "id": f"toolu_{call.id}", "name": call.name, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": piece}
                      for piece in argument_pieces(orjson.dumps(call.arguments).decode())]
            stop_reason = "tool_use"
        else:
            block = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in text_pieces(answer.text or "")]
            stop_reason = "max_tokens" if answer.truncated_by_max_tokens else "end_turn"
        events.append(_event({"type": "content_block_start", "index": 0, "content_block": block}))
        events.append(_event({"type": "ping"}))
        events += [_event({"type": "content_block_delta", "index": 0, "delta": delta}) for delta in deltas]
        events.append(_event({"type": "content_block_stop", "index": 0}))
        events.append(_event({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                              "usage": {"output_tokens": answer.completion_tokens}}))
        events.append(_event({"type": "message_stop"}))
        return tuple(events)

    def malformed(self) -> Reply:
        return Reply(200, b'{"id": "msg_sim", "type": "message", "content": [{"type": "text", "text": }')


def _input_usage(request: ParsedRequest) -> dict[str, int]:
    """Anthropic's input counts: `input_tokens` excludes what was read from or written to the cache."""
    read, written = (request.cache.read, request.cache.written) if request.cache else (0, 0)
    return {"input_tokens": request.prompt_tokens - read - written, "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read}


def _event(data: dict[str, Any]) -> bytes:
    return b"event: " + str(data["type"]).encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

"""A streamed answer as Anthropic's server-sent events, made from the OpenAI chunks the worker
relays: `message_start`, `ping`, then per content block `content_block_start`, its deltas
(`text_delta`, `input_json_delta`) and `content_block_stop`, then `message_delta` (stop reason,
usage) and `message_stop`; `error` for a failure after the first event.

The input tokens are not known when the stream starts (most providers count them at the end):
`message_start` carries our estimate, `message_delta` the provider's count, which the SDK's
`get_final_message()` keeps (its usage counts on `message_delta` overwrite).
"""

from __future__ import annotations

from typing import Any

import orjson

from shared.anthropic_api.errors import error_body
from shared.anthropic_api.response import content_blocks, message_id, stop_reason, usage


def event(name: str, data: dict[str, Any]) -> bytes:
    """One server-sent event as Anthropic frames it: `event: <type>` and `data: <json>`."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **data}) + b"\n\n"


def error_event(status: int, message: str) -> bytes:
    return event("error", {"error": error_body(status, message)["error"]})


def _start(job_id: str, model: str, input_tokens: int) -> bytes:
    message: dict[str, Any] = {
        "id": message_id(job_id), "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": input_tokens, "output_tokens": 0}}
    return event("message_start", {"message": message}) + event("ping", {})


def _end(finish_reason: Any, openai_usage: Any, meta: dict[str, Any] | None) -> bytes:
    extra = {"ainfera": meta} if meta else {}
    delta = {"stop_reason": stop_reason(finish_reason), "stop_sequence": None}
    return event("message_delta", {"delta": delta, "usage": usage(openai_usage), **extra}) + event("message_stop", {})


class MessageEvents:
    """The events of one stream; feed it each relayed chunk in order, then call `end()`."""

    def __init__(self, job_id: str, *, input_tokens_estimate: int) -> None:
        self._job_id = job_id
        self._input_estimate = input_tokens_estimate
        self._started = False
        self._blocks = 0  # content blocks opened so far; the open one is the last
        self._open: str | None = None  # "text", or "tool:<OpenAI tool-call index>"
        self._finish: Any = None
        self._usage: Any = None
        self._meta: dict[str, Any] | None = None

    def chunk(self, data: bytes) -> bytes:
        """The events for one relayed OpenAI chunk (its JSON); may be none."""
        piece = orjson.loads(data)
        out = [] if self._started else [_start(self._job_id, str(piece.get("model", "")), self._input_estimate)]
        self._started = True
        if piece.get("usage"):
            self._usage = piece["usage"]
        if isinstance(piece.get("ainfera"), dict):
            self._meta = piece["ainfera"]
        for choice in piece.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # a Messages request is always one choice
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                out.append(self._switch("text", {"type": "text", "text": ""}))
                out.append(event("content_block_delta", {"index": self._blocks - 1,
                                                         "delta": {"type": "text_delta", "text": text}}))
            for call in delta.get("tool_calls") or ():
                out.append(self._tool_delta(call))
            if choice.get("finish_reason") is not None:
                self._finish = choice["finish_reason"]
        return b"".join(out)

    def _tool_delta(self, call: dict[str, Any]) -> bytes:
        function = call.get("function") or {}
        key = f"tool:{call.get('index', 0)}"
        out = b""
        if self._open != key:
            out = self._switch(key, {"type": "tool_use", "id": str(call.get("id") or ""),
                                     "name": str(function.get("name") or ""), "input": {}})
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out += event("content_block_delta", {"index": self._blocks - 1,
                                                 "delta": {"type": "input_json_delta", "partial_json": arguments}})
        return out

    def _switch(self, key: str, block: dict[str, Any]) -> bytes:
        """Open the block `key` names unless it is the open one, closing the one before."""
        if self._open == key:
            return b""
        out = self._close()
        self._open = key
        self._blocks += 1
        return out + event("content_block_start", {"index": self._blocks - 1, "content_block": block})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return event("content_block_stop", {"index": self._blocks - 1})

    def end(self) -> bytes:
        """The stream's last events, once the job is committed (its `ainfera` block came)."""
        start = b"" if self._started else _start(self._job_id, "", self._input_estimate)
        return start + self._close() + _end(self._finish, self._usage, self._meta)


def replay_events(body: dict[str, Any]) -> bytes:
    """A whole stored answer as a stream: each block in one delta, then the closing events."""
    choice = (body.get("choices") or [{}])[0]
    meta = body.get("ainfera") or {}
    job_id = str(meta.get("job_id") or "")
    out = [_start(job_id, str(body.get("model", "")), usage(body.get("usage"))["input_tokens"])]
    for index, block in enumerate(content_blocks(choice.get("message") or {})):
        start: dict[str, Any]
        delta: dict[str, Any]
        if block["type"] == "text":
            start, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": block["text"]}
        else:
            start = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": orjson.dumps(block["input"]).decode()}
        out += [event("content_block_start", {"index": index, "content_block": start}),
                event("content_block_delta", {"index": index, "delta": delta}),
                event("content_block_stop", {"index": index})]
    out.append(_end(choice.get("finish_reason"), body.get("usage"), meta))
    return b"".join(out)

"""A streamed answer: the reader each wire format provides, and the one assembler that turns the
OpenAI chunk deltas every reader produces back into a whole `Completion`.

A reader takes the upstream's server-sent events one at a time (`event(name, data)`) and returns
the OpenAI `chat.completion.chunk` choices to relay to the caller (None when an event carries
nothing for the caller: a ping, a usage-only chunk). After the last event, `completion()` is the
whole answer, which the receipt, the audit hash and `GET /v1/jobs/{id}` all use.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.errors import UpstreamMalformed
from shared.providers.types import Completion

CHARS_PER_TOKEN = 4  # the estimate of output tokens when an upstream streams no usage


class StreamReader(Protocol):
    def event(self, name: str, data: str) -> list[dict[str, Any]] | None:
        """The caller's chunk choices for one upstream event; raises a classified `UpstreamError`
        for an error event or a malformed one."""
        ...

    def completion(self) -> Completion:
        """The whole answer once the stream ended (`UpstreamMalformed` if it ended early)."""
        ...

    def partial(self) -> Completion:
        """What was generated so far, to bill a stream that was stopped or broke off part way."""
        ...

    @property
    def output_so_far(self) -> int:
        """Output tokens generated so far, estimated from the text: what a cut-off stream bills."""
        ...


@dataclass(slots=True)
class _Choice:
    role: str = "assistant"
    content: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None
    logprobs: dict[str, list[Any]] | None = None


class ChoiceAssembler:
    """Adds up OpenAI chunk choices (`delta.content`, `delta.tool_calls[i].function.arguments`, ...)
    into chat.completion choices."""

    def __init__(self) -> None:
        self._choices: dict[int, _Choice] = {}
        self.chars = 0

    def add(self, choices: list[dict[str, Any]]) -> None:
        for raw in choices:
            index = raw.get("index", 0)
            delta = raw.get("delta")
            if not isinstance(index, int) or isinstance(index, bool) or not isinstance(delta, dict):
                raise UpstreamMalformed("provider stream has a chunk choice without an index and a delta",
                                        upstream_status=200)
            choice = self._choices.setdefault(index, _Choice())
            if isinstance(delta.get("role"), str):
                choice.role = delta["role"]
            for name, parts in (("content", choice.content), ("refusal", choice.refusal)):
                if isinstance(delta.get(name), str):
                    parts.append(delta[name])
                    self.chars += len(delta[name])
            for call in delta.get("tool_calls") or ():
                self._tool_call(choice, call)
            if isinstance(raw.get("finish_reason"), str):
                choice.finish_reason = raw["finish_reason"]
            logprobs = raw.get("logprobs")
            if isinstance(logprobs, dict):
                choice.logprobs = choice.logprobs or {}
                for key in ("content", "refusal"):
                    if isinstance(logprobs.get(key), list):
                        choice.logprobs.setdefault(key, []).extend(logprobs[key])

    def _tool_call(self, choice: _Choice, call: Any) -> None:
        if not isinstance(call, dict) or not isinstance(call.get("index", 0), int):
            raise UpstreamMalformed("provider stream has a tool call delta without an index", upstream_status=200)
        slot = choice.tool_calls.setdefault(call.get("index", 0),
                                            {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
        if isinstance(call.get("id"), str):
            slot["id"] = call["id"]
        function = call.get("function")
        if isinstance(function, dict):
            if isinstance(function.get("name"), str):
                slot["function"]["name"] += function["name"]
            if isinstance(function.get("arguments"), str):
                slot["function"]["arguments"] += function["arguments"]
                self.chars += len(function["arguments"])

    @property
    def finished(self) -> bool:
        return bool(self._choices) and all(c.finish_reason is not None for c in self._choices.values())

    def choices(self) -> list[dict[str, Any]]:
        out = []
        for index in sorted(self._choices):
            c = self._choices[index]
            message: dict[str, Any] = {"role": c.role, "content": "".join(c.content) if c.content or not c.tool_calls
                                       else None, "refusal": "".join(c.refusal) if c.refusal else None}
            if c.tool_calls:
                message["tool_calls"] = [c.tool_calls[i] for i in sorted(c.tool_calls)]
            out.append({"index": index, "message": message, "logprobs": c.logprobs, "finish_reason": c.finish_reason})
        return out


def estimated_tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


class AssembledStream:
    """What every reader collects, and the one way it becomes a `Completion`. A reader's `event`
    fills these fields from its own format; counts left None are estimated from the text."""

    def __init__(self, input_tokens_estimate: int) -> None:
        self.assembler = ChoiceAssembler()
        self.input_estimate = input_tokens_estimate
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.usage_details: dict[str, Any] = {}
        self.upstream_id: str | None = None
        self.upstream_model: str | None = None
        self.system_fingerprint: str | None = None
        self.service_tier: str | None = None
        self.ended = False  # the format's end marker came ([DONE], message_stop)

    @property
    def output_so_far(self) -> int:
        return estimated_tokens(self.assembler.chars)

    def completion(self) -> Completion:
        if not self.ended and not self.assembler.finished:
            raise UpstreamMalformed("provider stream ended before the answer did", upstream_status=200)
        return self.partial()

    def partial(self) -> Completion:
        return Completion(
            choices=self.assembler.choices(),
            input_tokens=self.input_estimate if self.input_tokens is None else self.input_tokens,
            output_tokens=self.output_so_far if self.output_tokens is None else self.output_tokens,
            upstream_id=self.upstream_id,
            upstream_model=self.upstream_model,
            usage_estimated=self.input_tokens is None or self.output_tokens is None,
            streamed=True,
            usage_details=self.usage_details,
            system_fingerprint=self.system_fingerprint,
            service_tier=self.service_tier,
        )


Sink = Callable[[list[dict[str, Any]]], Awaitable[None]]


@dataclass(slots=True)
class StreamTarget:
    """Where a streamed call's pieces go, and how far it got: the transport fills `reader` and
    counts `relayed`, so a call cut off mid-stream can still be billed for what it generated."""

    sink: Sink  # raises `StreamCancelled` when nobody listens any more
    input_tokens_estimate: int
    reader: StreamReader | None = None
    relayed: int = 0
    dropped: tuple[str, ...] = ()  # request fields this provider is not sent (set before the call)

    async def hand_on(self, choices: list[dict[str, Any]]) -> None:
        await self.sink(choices)
        self.relayed += 1

    @property
    def output_so_far(self) -> int:
        return self.reader.output_so_far if self.reader is not None else 0


class StreamCancelled(Exception):
    """The caller of a streamed job went away: the upstream call is abandoned (its connection
    closed) and the job ends `cancelled`, billed for what was generated. Not an `UpstreamError`:
    no retry and no fallback may follow it."""

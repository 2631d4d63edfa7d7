"""The seam between the simulator's request pipeline and one wire format's shapes.

A dialect checks headers, validates a body into a `ParsedRequest`, and renders
completions and errors the way that provider family documents them. The pipeline in
`app.py` never looks inside a body itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from shared.simulator.answers import Answer, ToolSpec
from shared.simulator.knowledge import ProviderFacts

if TYPE_CHECKING:
    from shared.simulator.prompt_cache import CacheUsage

Headers = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class Reply:
    """A JSON answer to send: status, body bytes and any headers beyond content type and length."""

    status: int
    body: bytes
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """What the pipeline needs from a valid body, whatever the wire format."""

    model: str
    prompt_tokens: int
    last_user_text: str  # where fault directives are read from
    max_tokens: int | None
    tools: tuple[ToolSpec, ...]
    forced_tool: str | None  # a named tool, "" for "any tool", None when not forced
    tools_disabled: bool
    choices: int  # OpenAI `n`
    conversation: Any  # JSON-able messages (+ system) identifying "the same prompt"
    reasoning_effort: str | None = None  # OpenAI's `reasoning_effort`, as sent
    stream: bool = False  # answer as server-sent events
    include_usage: bool = False  # OpenAI `stream_options.include_usage`: a last chunk with the usage
    answer_schema: Mapping[str, Any] | None = None  # a structured answer asked for: its schema ({} for JSON mode)
    cache: CacheUsage | None = None  # prompt tokens read from / written to the provider's cache (prompt_cache.py)


class Dialect(Protocol):
    def check_headers(self, facts: ProviderFacts, headers: Mapping[str, str]) -> Reply | None:
        """An auth or missing-header error, or None when the request may proceed."""
        ...

    def parse(self, payload: Any) -> ParsedRequest | Reply:
        """Validate a decoded JSON body; a Reply is a 400 in this format's style."""
        ...

    def error(self, status: int, message: str, *, code: str | None = None, param: str | None = None) -> Reply:
        """An error answer in this format's envelope; the error type follows from the status."""
        ...

    def invalid_json(self) -> Reply: ...

    def unknown_url(self, method: str, path: str) -> Reply: ...

    def model_not_found(self, model: str) -> Reply: ...

    def unsupported_value(self, param: str, value: str, supported: tuple[str, ...]) -> Reply:
        """A parameter value this model does not accept, as the provider words it."""
        ...

    def unsupported(self) -> Reply:
        """The answer to `[sim:unsupported]`: the provider's 400 for a parameter this model does not take."""
        ...

    def failure(self, status: int, *, model: str, retry_after_s: float) -> Reply:
        """The answer to `[sim:fail=STATUS]`, with the message the real provider would send."""
        ...

    def completion(self, request: ParsedRequest, answer: Answer) -> Reply: ...

    def stream(self, request: ParsedRequest, answer: Answer) -> tuple[bytes, ...]:
        """The same answer as this format's server-sent events, each ending in a blank line."""
        ...

    def malformed(self) -> Reply:
        """A 200 whose body is not JSON."""
        ...

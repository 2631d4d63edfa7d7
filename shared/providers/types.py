"""Value types that cross the adapter/transport seam: the request to send, the parsed answer.

Adapters turn an OpenAI chat-completions body into an `UpstreamRequest` and a provider
answer into a `Completion`; the transport only moves bytes between the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from shared.providers.classify import token_count

if TYPE_CHECKING:
    from shared.providers.stream import StreamReader


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """One HTTP POST ready to send. Headers and body stay out of repr: they hold the key and the prompt."""

    url: str
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class TokenSplit:
    """A call's tokens as they are priced. `prompt` is every prompt token, cache reads and writes
    included (OpenAI's `prompt_tokens`; for Anthropic, input + cache reads + cache writes);
    `reasoning` is part of `completion`. The parts never exceed their whole."""

    prompt: int
    completion: int
    cached: int = 0  # prompt tokens read from the provider's prompt cache
    cache_write: int = 0  # prompt tokens written to it (Anthropic reports these)
    reasoning: int = 0

    @property
    def uncached(self) -> int:
        return self.prompt - self.cached - self.cache_write


@dataclass(frozen=True, slots=True)
class Completion:
    """A provider's answer in OpenAI terms, whatever wire format it came in.

    `choices` use the OpenAI chat.completion choice shape (`index`, `message`,
    `finish_reason`), so the gateway can answer callers without knowing the vendor.
    `upstream_model` is what the provider says it served; responses still name our slug.
    """

    choices: list[dict[str, Any]] = field(repr=False)
    input_tokens: int
    output_tokens: int
    upstream_id: str | None
    upstream_model: str | None
    usage_estimated: bool = False  # a stream that reported no usage: tokens counted from what was streamed
    streamed: bool = False
    # Kept as the provider sent them, in OpenAI's shapes: `prompt_tokens_details` (cached tokens),
    # `completion_tokens_details` (reasoning tokens); and the answer's system_fingerprint, service_tier.
    usage_details: dict[str, Any] = field(default_factory=dict, repr=False)
    system_fingerprint: str | None = None
    service_tier: str | None = None

    def tokens(self) -> TokenSplit:
        """The token split from the usage details, each part clamped into its whole (a vendor that
        reports more cached than prompt tokens is not believed past the prompt)."""
        prompt_details = self.usage_details.get("prompt_tokens_details")
        completion_details = self.usage_details.get("completion_tokens_details")
        cached = min(_count(prompt_details, "cached_tokens"), self.input_tokens)
        written = min(_count(prompt_details, "cache_write_tokens"), self.input_tokens - cached)
        reasoning = min(_count(completion_details, "reasoning_tokens"), self.output_tokens)
        return TokenSplit(self.input_tokens, self.output_tokens, cached, written, reasoning)

    @property
    def finish_reason(self) -> str | None:
        """The first choice's finish reason, the one receipts record."""
        if not self.choices:
            return None
        reason = self.choices[0].get("finish_reason")
        return reason if isinstance(reason, str) else None


def _count(details: Any, name: str) -> int:
    return (token_count(details.get(name)) or 0) if isinstance(details, Mapping) else 0


class WireAdapter(Protocol):
    """Translation for one wire format. No I/O: `build` and `parse` are pure functions."""

    def build(self, *, url: str, api_key: str, upstream_model: str, body: Mapping[str, Any]) -> UpstreamRequest:
        """Turn an OpenAI chat-completions body into this format's request for `upstream_model`."""
        ...

    def parse(self, status: int, headers: Mapping[str, str], content: bytes) -> Completion:
        """Turn the provider's answer into a Completion, or raise a classified `UpstreamError`."""
        ...

    def build_stream(self, *, url: str, api_key: str, upstream_model: str,
                     body: Mapping[str, Any]) -> UpstreamRequest:
        """The same request asking for a streamed answer (with usage, where the format has it)."""
        ...

    def stream_reader(self, *, input_tokens_estimate: int) -> StreamReader:
        """A reader for one streamed answer; the estimate stands in if the stream reports no usage."""
        ...

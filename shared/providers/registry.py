"""Which adapter speaks which wire format. Vendors are catalog rows, not code."""

from __future__ import annotations

from types import MappingProxyType

from shared.catalog.types import WireFormat
from shared.errors import UpstreamMisconfigured
from shared.providers.anthropic_messages import AnthropicMessagesAdapter
from shared.providers.openai_chat import OpenAIChatAdapter
from shared.providers.types import WireAdapter

# Read-only: adapters are stateless, so one instance per format serves every call.
_ADAPTERS: MappingProxyType[WireFormat, WireAdapter] = MappingProxyType(
    {
        WireFormat.OPENAI_CHAT: OpenAIChatAdapter(),
        WireFormat.ANTHROPIC_MESSAGES: AnthropicMessagesAdapter(),
    }
)


def adapter_for(wire_format: WireFormat | str) -> WireAdapter:
    """The adapter for a provider row's wire_format; an unknown format is a catalog mistake."""
    try:
        return _ADAPTERS[WireFormat(wire_format)]
    except ValueError:
        raise UpstreamMisconfigured(f"unknown wire format {wire_format!r}") from None

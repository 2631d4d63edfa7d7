"""Catalog value types: providers, models and the immutable snapshot the router reads.

Rows come from Postgres (see `shared.db.catalog`); nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class WireFormat(StrEnum):
    OPENAI_CHAT = "openai-chat"
    ANTHROPIC_MESSAGES = "anthropic-messages"


class Stack(StrEnum):
    """The jurisdiction that governs the company serving a provider's requests, parent company included.

    The entity the API terms name, and the headquarters of the group that controls it; the group decides
    when they differ. Where requests are processed (the catalog's `serving_region`) does not enter into
    it. The rule and each provider's evidence: `data/README.md` and docs/decisions.md, "Stack".
    """

    US = "us"
    EU = "eu"
    CHINA = "china"
    SEA = "sea"


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    wire_format: WireFormat
    base_url: str
    chat_completions_path: str | None
    api_key_env: str
    stack: Stack
    fast_tier: bool
    active: bool = True
    display_name: str = ""
    # Where requests are processed or stored, as a source states it (None: no source says).
    # Informational only: it never decides `stack`.
    serving_region: str | None = None


@dataclass(frozen=True, slots=True)
class FastVariant:
    """A reasoning model called at its lowest effort (or with reasoning off), as the research measured it.

    `reasoning_effort` is the value that reaches this variant at the model's provider; None when
    the provider documents none, and then nothing may ask for the variant.
    """

    aa_index: float | None
    p50_ttft_ms: int | None
    output_tokens_per_s: float | None
    reasoning_effort: str | None


@dataclass(frozen=True, slots=True)
class Model:
    slug: str
    provider: str
    provider_model_name: str | None
    input_usd_per_mtok: float | None
    output_usd_per_mtok: float | None
    context_window: int | None
    max_output_tokens: int | None
    supports_streaming: bool
    supports_tools: bool | None
    supports_vision: bool | None
    aa_index: float | None
    p50_ttft_ms: int | None
    output_tokens_per_s: float | None
    active: bool = True
    deactivation_reason: str | None = None
    model_family: str = ""
    fast_variant: FastVariant | None = None
    reasoning_efforts: tuple[str, ...] | None = None  # values the provider accepts; None: not documented
    # Prompt-cache prices, USD per million tokens; None: no published price (billed as input).
    cached_input_usd_per_mtok: float | None = None
    cache_write_usd_per_mtok: float | None = None

    @property
    def low_effort(self) -> str | None:
        """The `reasoning_effort` that selects the fast variant, when one is documented."""
        fv = self.fast_variant
        return fv.reasoning_effort if fv is not None and fv.aa_index is not None else None

    @property
    def upstream_model(self) -> str:
        """The name sent upstream. Only the upstream request uses it; everything else names the slug."""
        return self.provider_model_name or self.slug

    @property
    def priced(self) -> bool:
        return self.input_usd_per_mtok is not None and self.output_usd_per_mtok is not None


@dataclass(frozen=True, slots=True)
class Catalog:
    """An immutable snapshot of providers and models, keyed by name and slug."""

    providers: Mapping[str, Provider] = field(default_factory=dict)
    models: Mapping[str, Model] = field(default_factory=dict)
    version: int = 0
    # Data derived from this snapshot by its readers (the router's per-model table), computed
    # once per snapshot. The snapshot never changes, so neither can what is derived from it.
    derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False, hash=False)

    def provider_of(self, model: Model) -> Provider:
        return self.providers[model.provider]

    def servable(self, model: Model) -> bool:
        """A model can take traffic when it and its provider are both active."""
        provider = self.providers.get(model.provider)
        return model.active and provider is not None and provider.active

"""What the simulated provider knows about the real ones, read once from the catalog file.

For each provider: its real host and exact chat path, wire format, auth style, the
set of model names it serves, each model's latency profile and, where documented, the
`reasoning_effort` values it accepts. Every row counts, including ones the research marks
`likely_retired`: the simulator answers as the provider's documentation says it would.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import shared.catalog
from shared.catalog.types import WireFormat
from shared.catalog.urls import chat_url
from shared.simulator.profiles import LatencyPriors, LatencyProfile, profile_of

CATALOG_FILE = Path(shared.catalog.__file__).with_name("data") / "catalog.json"


@dataclass(frozen=True, slots=True)
class ProviderFacts:
    """One provider as the simulator impersonates it."""

    name: str
    host: str
    chat_path: str
    wire_format: WireFormat
    auth_header: str  # lower-case header name: "authorization" (Bearer) or "x-api-key"
    required_headers: Mapping[str, str]  # lower-case name -> documented value, e.g. anthropic-version
    models: frozenset[str]
    profiles: Mapping[str, LatencyProfile]  # model name -> how long it takes to answer
    efforts: Mapping[str, tuple[str, ...]]  # model name -> accepted reasoning_effort values (documented ones only)
    text_only: frozenset[str] = frozenset()  # model names the catalog says take no images (`vision: false`)

    @property
    def route(self) -> str:
        """The simulator path for this provider: `/{host}{chat_path}`."""
        return f"/{self.host}{self.chat_path}"


@dataclass(frozen=True, slots=True)
class Knowledge:
    """All providers, indexed the two ways a request is routed: by exact path, and by host for 404s."""

    providers: tuple[ProviderFacts, ...]
    by_route: Mapping[str, ProviderFacts]
    by_host: Mapping[str, ProviderFacts]


def load_knowledge(path: Path | None = None, priors: LatencyPriors | None = None) -> Knowledge:
    """Read the catalog JSON (the project's copy by default) into simulator knowledge."""
    data: dict[str, Any] = json.loads((path or CATALOG_FILE).read_text(encoding="utf-8"))
    priors = priors or LatencyPriors()
    fast_tier = {row["name"]: bool(row.get("fast_tier")) for row in data["providers"]}
    served: dict[str, dict[str, dict[str, Any]]] = {}
    for model in data["models"]:
        served.setdefault(model["provider"], {})[model.get("provider_model_name") or model["slug"]] = model
    providers = tuple(
        _provider(row, served.get(row["name"], {}), fast_tier=fast_tier[row["name"]], priors=priors)
        for row in data["providers"]
    )
    by_host: dict[str, ProviderFacts] = {}
    for facts in providers:
        by_host.setdefault(facts.host, facts)
    return Knowledge(
        providers=providers,
        by_route=MappingProxyType({facts.route: facts for facts in providers}),
        by_host=MappingProxyType(by_host),
    )


def _provider(row: dict[str, Any], models: Mapping[str, dict[str, Any]], *, fast_tier: bool,
              priors: LatencyPriors) -> ProviderFacts:
    wire_format = WireFormat(row["wire_format"])
    url = row.get("chat_completions_url") or chat_url(row["base_url"], row.get("chat_completions_path"), wire_format)
    parts = urlsplit(url)
    auth = row.get("auth") or {}
    extra = auth.get("extra_headers") or {}
    return ProviderFacts(
        name=row["name"],
        host=parts.netloc,
        chat_path=parts.path,
        wire_format=wire_format,
        auth_header=str(auth.get("header") or "Authorization").lower(),
        required_headers=MappingProxyType({str(k).lower(): str(v) for k, v in extra.items()}),
        models=frozenset(models),
        profiles=MappingProxyType({name: profile_of(m, fast_tier=fast_tier, priors=priors)
                                   for name, m in models.items()}),
        efforts=MappingProxyType({name: tuple(m["reasoning_efforts"]) for name, m in models.items()
                                  if m.get("reasoning_efforts")}),
        text_only=frozenset(name for name, m in models.items() if m.get("vision") is False),
    )

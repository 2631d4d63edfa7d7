"""Seeding the catalog from the project's researched copy (`data/catalog.json`).

The file keeps its sources and caveats; only the facts the router and adapters need
become rows. Re-seeding refreshes facts but never flips `active`: that state belongs
to the system (fanout probes, operators) once a row exists. Rows the research marks
`likely_retired` start inactive, with that as the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.catalog.types import FastVariant, Model, Provider, Stack, WireFormat
from shared.db.catalog import upsert_model, upsert_provider
from shared.db.types import Connection

CATALOG_FILE = Path(__file__).with_name("data") / "catalog.json"
RETIRED_STATUS = "likely_retired"


@dataclass(frozen=True, slots=True)
class SeedRows:
    providers: list[Provider]
    models: list[tuple[Model, str | None]]  # (row, catalog status)


def load_seed(path: Path = CATALOG_FILE) -> SeedRows:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    providers = [
        Provider(
            name=p["name"],
            display_name=p.get("display_name") or p["name"],
            wire_format=WireFormat(p["wire_format"]),
            base_url=p["base_url"],
            chat_completions_path=p.get("chat_completions_path"),
            api_key_env=p["auth"]["env_var"],
            stack=Stack(p["stack"]),
            fast_tier=bool(p.get("fast_tier")),
            serving_region=p.get("serving_region"),
        )
        for p in data["providers"]
    ]
    models: list[tuple[Model, str | None]] = []
    for m in data["models"]:
        status = m.get("status")
        retired = status == RETIRED_STATUS
        models.append(
            (
                Model(
                    slug=m["slug"],
                    model_family=m["model_family"],
                    provider=m["provider"],
                    provider_model_name=m.get("provider_model_name"),
                    input_usd_per_mtok=m.get("input_usd_per_mtok"),
                    output_usd_per_mtok=m.get("output_usd_per_mtok"),
                    cached_input_usd_per_mtok=m.get("cached_input_usd_per_mtok"),
                    cache_write_usd_per_mtok=m.get("cache_write_usd_per_mtok"),
                    context_window=m.get("context_window"),
                    max_output_tokens=m.get("max_output_tokens"),
                    supports_streaming=m.get("streaming") is not False,
                    supports_tools=m.get("tools"),
                    supports_vision=m.get("vision"),
                    aa_index=m.get("aa_index"),
                    p50_ttft_ms=m.get("p50_ttft_ms"),
                    output_tokens_per_s=m.get("output_tokens_per_s"),
                    active=not retired,
                    deactivation_reason=f"catalog:{RETIRED_STATUS}" if retired else None,
                    fast_variant=fast_variant(m),
                    reasoning_efforts=tuple(m["reasoning_efforts"]) if m.get("reasoning_efforts") else None,
                ),
                status,
            )
        )
    return SeedRows(providers=providers, models=models)


def fast_variant(row: dict[str, Any]) -> FastVariant | None:
    """The catalog row's `aa_fast_variant` (its index, latency and the effort that reaches it)."""
    fv = row.get("aa_fast_variant")
    if not fv:
        return None
    return FastVariant(aa_index=fv.get("aa_index"), p50_ttft_ms=fv.get("p50_ttft_ms"),
                       output_tokens_per_s=fv.get("output_tokens_per_s"),
                       reasoning_effort=fv.get("reasoning_effort"))


async def seed_catalog(conn: Connection, rows: SeedRows | None = None) -> tuple[int, int]:
    """Upsert every provider and model in one transaction. Returns (providers, models)."""
    rows = rows or load_seed()
    async with conn.transaction():
        for p in rows.providers:
            await upsert_provider(conn, p)
        for model, status in rows.models:
            await upsert_model(conn, model, catalog_status=status)
    return len(rows.providers), len(rows.models)

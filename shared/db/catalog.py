"""Reading the catalog snapshot and writing seed rows."""

from __future__ import annotations

from typing import Any

from shared.catalog.types import Catalog, FastVariant, Model, Provider, Stack, WireFormat
from shared.db.queries import q
from shared.db.types import Connection


async def load_catalog(conn: Connection, *, version: int = 0) -> Catalog:
    """One consistent snapshot of providers and models (read in one transaction)."""
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        prows = await conn.fetch(q("catalog", "load_providers"))
        mrows = await conn.fetch(q("catalog", "load_models"))
    providers = {
        r["name"]: Provider(
            name=r["name"],
            display_name=r["display_name"],
            wire_format=WireFormat(r["wire_format"]),
            base_url=r["base_url"],
            chat_completions_path=r["chat_completions_path"],
            api_key_env=r["api_key_env"],
            stack=Stack(r["stack"]),
            fast_tier=r["fast_tier"],
            active=r["active"],
            serving_region=r["serving_region"],
        )
        for r in prows
    }
    models = {
        r["slug"]: Model(
            slug=r["slug"],
            model_family=r["model_family"],
            provider=r["provider"],
            provider_model_name=r["provider_model_name"],
            input_usd_per_mtok=r["input_usd_per_mtok"],
            output_usd_per_mtok=r["output_usd_per_mtok"],
            context_window=r["context_window"],
            max_output_tokens=r["max_output_tokens"],
            supports_streaming=r["supports_streaming"],
            supports_tools=r["supports_tools"],
            supports_vision=r["supports_vision"],
            aa_index=r["aa_index"],
            p50_ttft_ms=r["p50_ttft_ms"],
            output_tokens_per_s=r["output_tokens_per_s"],
            active=r["active"],
            deactivation_reason=r["deactivation_reason"],
            fast_variant=_fast_variant(r),
            reasoning_efforts=tuple(r["reasoning_efforts"]) if r["reasoning_efforts"] is not None else None,
            cached_input_usd_per_mtok=r["cached_input_usd_per_mtok"],
            cache_write_usd_per_mtok=r["cache_write_usd_per_mtok"],
        )
        for r in mrows
    }
    return Catalog(providers=providers, models=models, version=version)


async def provider_names(conn: Connection) -> set[str]:
    return {r["name"] for r in await conn.fetch(q("catalog", "provider_names"))}


def _fast_variant(r: Any) -> FastVariant | None:
    figures = (r["fast_aa_index"], r["fast_p50_ttft_ms"], r["fast_output_tokens_per_s"], r["fast_reasoning_effort"])
    return None if all(v is None for v in figures) else FastVariant(*figures)


async def upsert_provider(conn: Connection, p: Provider) -> None:
    await conn.execute(
        q("catalog", "upsert_provider"),
        p.name,
        p.display_name,
        p.wire_format.value,
        p.base_url,
        p.chat_completions_path,
        p.api_key_env,
        p.stack.value,
        p.fast_tier,
        p.serving_region,
    )


async def upsert_model(conn: Connection, m: Model, *, catalog_status: str | None) -> None:
    fv = m.fast_variant
    await conn.execute(
        q("catalog", "upsert_model"),
        m.slug,
        m.model_family,
        m.provider,
        m.provider_model_name,
        m.input_usd_per_mtok,
        m.output_usd_per_mtok,
        m.context_window,
        m.max_output_tokens,
        m.supports_streaming,
        m.supports_tools,
        m.supports_vision,
        m.aa_index,
        m.p50_ttft_ms,
        m.output_tokens_per_s,
        catalog_status,
        m.active,
        m.deactivation_reason,
        fv.aa_index if fv else None,
        fv.p50_ttft_ms if fv else None,
        fv.output_tokens_per_s if fv else None,
        fv.reasoning_effort if fv else None,
        list(m.reasoning_efforts) if m.reasoning_efforts is not None else None,
        m.cached_input_usd_per_mtok,
        m.cache_write_usd_per_mtok,
    )


async def set_model_active(conn: Connection, slug: str, active: bool, reason: str | None) -> bool:
    result: str = await conn.execute(q("catalog", "set_model_active"), slug, active, reason)
    return result.endswith(" 1")

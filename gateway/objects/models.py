"""The model object (OpenAI's shape plus our provider, stack, serving region, pricing and capabilities), and
the one for `ainfera-auto`, the virtual model that routes."""

from __future__ import annotations

from typing import Any

from shared.catalog.types import Catalog, Model

CATALOG_CREATED = 1784851200  # 2026-07-24, the date of the seeded catalog's facts
AUTO_MODEL_ID = "ainfera-auto"


def model_object(catalog: Catalog, m: Model) -> dict[str, Any]:
    p = catalog.provider_of(m)
    return {
        "id": m.slug,
        "object": "model",
        "created": CATALOG_CREATED,
        "owned_by": p.name,
        "provider": p.name,
        "stack": p.stack.value,
        "serving_region": p.serving_region,
        "fast_tier": p.fast_tier,
        "pricing": {"input_usd_per_mtok": m.input_usd_per_mtok, "output_usd_per_mtok": m.output_usd_per_mtok,
                    "cached_input_usd_per_mtok": m.cached_input_usd_per_mtok,
                    "cache_write_usd_per_mtok": m.cache_write_usd_per_mtok},
        "context_window": m.context_window,
        "max_output_tokens": m.max_output_tokens,
        "aa_index": m.aa_index,
        "capabilities": {"streaming": m.supports_streaming, "tools": m.supports_tools, "vision": m.supports_vision},
    }


def auto_object() -> dict[str, Any]:
    return {
        "id": AUTO_MODEL_ID,
        "object": "model",
        "created": CATALOG_CREATED,
        "owned_by": "ainfera",
        "description": "Routes each request to the best active model that fits its constraints "
        "(alias: ainfera-inference). See routing_hint.",
    }

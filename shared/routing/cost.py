"""What a served call costs in USD, for receipts. Prices are per million tokens.

Decimal, because it is what we charge; the router's estimates (floats, for ranking)
are computed in `router.evaluate`.

cost = (prompt - cached - cache_write) x input + cached x cached_input
       + cache_write x cache_write_price + completion x output
A model with no cached-input (or cache-write) price bills those tokens at its input price.
Reasoning tokens are part of the completion and cost the output price.
"""

from __future__ import annotations

from decimal import Decimal

from shared.catalog.types import Model
from shared.providers.types import TokenSplit

_MILLION = Decimal(1_000_000)


def actual_cost(model: Model, tokens: TokenSplit) -> Decimal:
    """What the caller is charged for a served call. Unpriced (free-tier) models cost 0."""
    if not model.priced:
        return Decimal(0)
    assert model.input_usd_per_mtok is not None and model.output_usd_per_mtok is not None
    inp = _price(model.input_usd_per_mtok)
    cached = _price(model.cached_input_usd_per_mtok) if model.cached_input_usd_per_mtok is not None else inp
    write = _price(model.cache_write_usd_per_mtok) if model.cache_write_usd_per_mtok is not None else inp
    total = (inp * tokens.uncached + cached * tokens.cached + write * tokens.cache_write
             + _price(model.output_usd_per_mtok) * tokens.completion)
    return total / _MILLION


def _price(usd_per_mtok: float) -> Decimal:
    return Decimal(str(usd_per_mtok))

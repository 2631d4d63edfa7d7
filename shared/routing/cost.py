"""What a served call costs in USD, for receipts. Prices are per million tokens.

Decimal, because it is what we charge; the router's estimates (floats, for ranking)
are computed in `router.evaluate`.
"""

from __future__ import annotations

from decimal import Decimal

from shared.catalog.types import Model

_MILLION = Decimal(1_000_000)


def actual_cost(model: Model, input_tokens: int, output_tokens: int) -> Decimal:
    """What the caller is charged for a served call. Unpriced (free-tier) models cost 0."""
    if not model.priced:
        return Decimal(0)
    assert model.input_usd_per_mtok is not None and model.output_usd_per_mtok is not None
    inp = Decimal(str(model.input_usd_per_mtok)) * input_tokens
    out = Decimal(str(model.output_usd_per_mtok)) * output_tokens
    return (inp + out) / _MILLION

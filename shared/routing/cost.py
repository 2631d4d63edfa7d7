"""Cost arithmetic in USD: estimates for routing, actual costs for receipts.

Prices are per million tokens. Decimal for what we charge, float for what we rank.
"""

from __future__ import annotations

from decimal import Decimal

from shared.catalog.types import Model

_MILLION = Decimal(1_000_000)


def expected_output_tokens(input_tokens: int, ratio: float, output_cap: int | None) -> int:
    """ratio x input tokens, capped by the request's max_tokens."""
    expected = max(1, round(input_tokens * ratio))
    return min(expected, output_cap) if output_cap else expected


def estimate_cost(model: Model, input_tokens: int, output_tokens: int) -> float | None:
    """Estimated USD for a call, or None when the model has no published price."""
    if not model.priced:
        return None
    assert model.input_usd_per_mtok is not None and model.output_usd_per_mtok is not None
    return (input_tokens * model.input_usd_per_mtok + output_tokens * model.output_usd_per_mtok) / 1_000_000


def actual_cost(model: Model, input_tokens: int, output_tokens: int) -> Decimal:
    """What the caller is charged for a served call. Unpriced (free-tier) models cost 0."""
    if not model.priced:
        return Decimal(0)
    assert model.input_usd_per_mtok is not None and model.output_usd_per_mtok is not None
    inp = Decimal(str(model.input_usd_per_mtok)) * input_tokens
    out = Decimal(str(model.output_usd_per_mtok)) * output_tokens
    return (inp + out) / _MILLION

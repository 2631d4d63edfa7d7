"""The most a call can cost: what a budget must hold before the upstream call.

Input at the router's estimate, output at the caller's `max_tokens` (or `max_completion_tokens`)
or, without one, all the model can produce (its output limit, else what its context window
leaves), both at catalog prices. The router's expected cost uses the learned output ratio; a
budget cannot rest on an expectation, because a call may produce every token it was allowed.
"""

from __future__ import annotations

from shared.catalog.types import Model


def worst_case_usd(model: Model, input_tokens: int, output_cap: int | None) -> float | None:
    """The worst-case cost in USD, or None for a model without catalog prices."""
    if model.input_usd_per_mtok is None or model.output_usd_per_mtok is None:
        return None
    output = output_cap or model.max_output_tokens or max((model.context_window or 0) - input_tokens, 0)
    if model.max_output_tokens is not None:
        output = min(output, model.max_output_tokens)
    return (input_tokens * model.input_usd_per_mtok + output * model.output_usd_per_mtok) / 1_000_000

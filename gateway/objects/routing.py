"""The `routing.decision` object: what `POST /v1/routing/explain` says a chat completion would get."""

from __future__ import annotations

from typing import Any

from shared.routing.candidates import cost_text
from shared.routing.plan import Plan


def decision_object(requested_model: str, plan: Plan) -> dict[str, Any]:
    chosen = plan.chosen
    return {
        "object": "routing.decision",
        "requested_model": requested_model,
        "model": chosen.model.slug,
        "provider": chosen.provider.name,
        "estimated_cost_usd": cost_text(chosen.estimated_cost_usd),
        "expected_output_tokens": chosen.expected_output_tokens,
        "expected_latency_ms": round(chosen.expected_latency_ms),
        "reasoning_effort": chosen.reasoning_effort,  # set when ainfera-auto would choose one
        "fallbacks": [c.model.slug for c in plan.candidates[1:]],
        "decision_log": plan.decision_log,
    }

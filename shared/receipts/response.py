"""The body a caller is answered with: an OpenAI chat.completion, or the OpenAI error envelope,
both with our `ainfera` block (job, receipt, cost, fallbacks, the decision log)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.chat.functions import as_legacy_functions
from shared.chat.request import ChatCompletionRequest
from shared.errors import BudgetExceeded
from shared.receipts.call import CallRecord, Charge
from shared.receipts.types import money


def reported_params(request: ChatCompletionRequest | None, call: CallRecord) -> list[str]:
    """Every request field that did not reach the provider as sent: unknown fields (never
    forwarded), the legacy functions fields (sent as tools), and what the provider does not take."""
    if request is None:
        return []
    return [*request_reported_params(request), *call.dropped]


def request_reported_params(request: ChatCompletionRequest) -> list[str]:
    """What the request itself does not forward as sent, whichever provider answers."""
    translated = [f"{name}->{to}" for name, to in (("functions", "tools"), ("function_call", "tool_choice"))
                  if getattr(request, name) is not None]
    return [*request.unknown_params, *translated]


def response_body(call: CallRecord, *, job_id: str, receipt_id: str, requested_model: str, charge: Charge,
                  now: datetime, legacy_functions: bool = False,
                  dropped_params: list[str] | None = None, explain: bool = False) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body). `model` names the canonical slug, never the upstream name. `explain`:
    the caller asked for the decision log (`routing_hint.explain`); the receipt has it either way."""
    served, completion = call.served, call.completion
    meta: dict[str, Any] = {
        "job_id": job_id,
        "receipt_id": receipt_id,
        "requested_model": requested_model,
        "provider": served.provider.name if served else None,
        "cost_usd": money(charge.cost_usd),
        "estimated_cost_usd": money(charge.estimated_usd) if charge.estimated_usd is not None else None,
    }
    if served is not None and served.reasoning_effort is not None:
        meta["reasoning_effort"] = served.reasoning_effort  # chosen by ainfera-auto for a latency budget
    if dropped_params:
        meta["dropped_params"] = dropped_params
    if call.fallbacks:
        meta["fallbacks"] = call.fallbacks
    if explain and call.decision_log is not None:
        meta["decision_log"] = call.decision_log
    if not call.succeeded:
        assert call.error is not None
        if isinstance(call.error, BudgetExceeded) and call.error.reason is not None:
            meta["refusal"] = {"reason": call.error.reason, "budget": call.error.budget}
        return call.error.status, {**call.error.envelope(), "ainfera": meta}
    assert completion is not None and served is not None
    return 200, {
        "id": "chatcmpl-" + job_id.removeprefix("job_"),
        "object": "chat.completion",
        "created": int(now.timestamp()),
        "model": served.model.slug,
        "choices": as_legacy_functions(completion.choices) if legacy_functions else completion.choices,
        "usage": {
            "prompt_tokens": completion.input_tokens,
            "completion_tokens": completion.output_tokens,
            "total_tokens": completion.input_tokens + completion.output_tokens,
            **completion.usage_details,
        },
        **({"system_fingerprint": completion.system_fingerprint} if completion.system_fingerprint else {}),
        **({"service_tier": completion.service_tier} if completion.service_tier else {}),
        "ainfera": meta,
    }

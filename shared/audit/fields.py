"""The fields of a job's audit event: what the chain commits to about one call.

Hashes of the prompt and the answer, never their text; the decision log for ainfera-auto.
The payload's envelope (seq, type, tenant, time, job) is added by `shared.audit.writer`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from shared.audit.chain import canonical_json
from shared.chat.request import ChatCompletionRequest, upstream_body
from shared.errors import BudgetExceeded
from shared.receipts.call import CallRecord
from shared.receipts.types import Receipt, ReceiptStatus, money

ROUTED = "inference.routed"
FAILED = "inference.failed"
REJECTED = "inference.rejected"  # refused before any provider was called: no budget had room


def _sha256(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def job_event(call: CallRecord, receipt: Receipt, request: ChatCompletionRequest | None) -> tuple[str, dict[str, Any]]:
    """(event type, fields) of the job's one audit event."""
    completion = call.completion
    fields: dict[str, Any] = {
        "receipt_id": receipt.id,
        "status": receipt.status.value,
        "requested_model": receipt.requested_model,
        "model": receipt.model_slug,
        "provider": receipt.provider,
        "upstream_model": receipt.upstream_model,
        "usage": receipt.usage(),  # the token split only when there is one, as on the receipt
        "cost_usd": money(receipt.cost_usd),
        "estimated_cost_usd": money(receipt.estimated_cost_usd) if receipt.estimated_cost_usd is not None else None,
        "latency_ms": receipt.latency_ms,
        "attempts": call.attempts,
        "prompt_sha256": _sha256(upstream_body(request)["messages"] if request else None),
        "response_sha256": _sha256(completion.choices) if completion else None,
    }
    if call.decision_log is not None:
        fields["decision_log"] = call.decision_log
        fields["original_choice"] = call.plan.chosen.model.slug if call.plan else None
    if receipt.reasoning_effort is not None:
        fields["reasoning_effort"] = receipt.reasoning_effort
        own = request is not None and request.reasoning_effort is not None
        fields["reasoning_effort_source"] = "caller" if own else "ainfera-auto"
    if call.fallbacks:
        fields["fallbacks"] = call.fallbacks
    if call.error:
        fields["error"] = {"code": call.error.code, "message": call.error.message}
    if receipt.streamed:
        # After the first relayed chunk a failure cannot fall back to another candidate: the
        # caller has seen part of this one's answer. The event says how far the stream got.
        fields["stream"] = {"relayed_chunks": call.relayed_chunks, "fallback_possible": call.relayed_chunks == 0,
                            "usage_estimated": receipt.usage_estimated}
    if receipt.status is ReceiptStatus.SUCCEEDED:
        return ROUTED, fields
    if isinstance(call.error, BudgetExceeded):
        if call.error.reason is not None:
            fields["reason"] = call.error.reason  # which cap refused: per_call_cap_exceeded, daily_cap_exceeded...
            fields["budget"] = call.error.budget
        return REJECTED, fields
    return FAILED, fields

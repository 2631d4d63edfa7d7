"""The receipt of a finished call: what it cost and who served it. One per job, whatever happened."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from shared.chat.request import ChatCompletionRequest
from shared.receipts.call import CallRecord, Charge, sent_effort
from shared.receipts.types import Receipt, ReceiptStatus


def receipt_of(call: CallRecord, *, job_id: str, tenant_id: UUID, request: ChatCompletionRequest | None,
               receipt_id: str, charge: Charge, latency_ms: int, now: datetime) -> Receipt:
    model = call.served.model if call.served else None
    completion = call.completion
    tokens = completion.tokens() if completion else None
    routing: dict[str, Any] | None = None
    if call.decision_log is not None or call.fallbacks:
        routing = {"decision_log": call.decision_log, "fallbacks": call.fallbacks}
    return Receipt(
        id=receipt_id,
        job_id=job_id,
        tenant_id=tenant_id,
        status=(ReceiptStatus.SUCCEEDED if call.succeeded else
                ReceiptStatus.CANCELLED if call.cancelled else ReceiptStatus.FAILED),
        requested_model=request.model if request else "",
        model_slug=model.slug if model else None,
        provider=call.served.provider.name if call.served else None,
        upstream_model=model.upstream_model if model else None,
        input_tokens=tokens.prompt if tokens else 0,
        output_tokens=tokens.completion if tokens else 0,
        cached_input_tokens=tokens.cached if tokens else 0,
        cache_write_tokens=tokens.cache_write if tokens else 0,
        reasoning_tokens=tokens.reasoning if tokens else 0,
        estimated_cost_usd=charge.estimated_usd,
        cost_usd=charge.cost_usd,
        latency_ms=latency_ms,
        upstream_latency_ms=call.upstream_latency_ms,
        attempts=call.attempts,
        error_code=call.error.code if call.error else None,
        routing=routing,
        created_at=now,
        reasoning_effort=sent_effort(call, request),
        streamed=bool(request and request.stream),
        usage_estimated=bool(completion and completion.usage_estimated),
    )

"""Turning a finished call into what we keep and what we answer: the response body, the receipt
and the audit event's fields. Pure functions; the dispatch use-case writes the result."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from shared.audit.chain import canonical_json
from shared.errors import AinferaError
from shared.providers.types import Completion
from shared.receipts.types import Receipt, ReceiptStatus, money
from shared.routing.candidates import Candidate
from shared.routing.cost import actual_cost
from shared.routing.plan import Plan


@dataclass(slots=True)
class CallRecord:
    """What happened to one job's call, filled in as it goes."""

    plan: Plan | None = None
    served: Candidate | None = None  # the candidate that answered (or the last one tried)
    completion: Completion | None = None
    attempts: int = 0  # HTTP requests sent upstream, over every candidate
    upstream_latency_ms: int | None = None
    error: AinferaError | None = None
    fallbacks: list[dict[str, Any]] = field(default_factory=list)  # candidates that failed before

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.completion is not None and self.served is not None


@dataclass(frozen=True, slots=True)
class Finished:
    http_status: int
    body: dict[str, Any]
    receipt: Receipt
    event_type: str
    event_fields: dict[str, Any]


def _sha256(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def sent_effort(served: Candidate | None, request: dict[str, Any]) -> str | None:
    """The reasoning effort the call carried: the caller's own, else the one ainfera-auto chose."""
    own = request.get("reasoning_effort")
    if own is not None:
        return str(own)
    return served.reasoning_effort if served is not None else None


def finish(
    call: CallRecord,
    *,
    job_id: str,
    tenant_id: UUID,
    request: dict[str, Any],
    receipt_id: str,
    latency_ms: int,
    now: datetime,
) -> Finished:
    requested = str(request.get("model", ""))
    served, completion = call.served, call.completion
    priced = call.served or (call.plan.chosen if call.plan else None)
    succeeded = call.succeeded
    cost = (
        actual_cost(served.model, completion.input_tokens, completion.output_tokens)
        if succeeded and served is not None and completion is not None
        else Decimal(0)
    )
    est_float = priced.estimated_cost_usd if priced else None
    estimated = Decimal(str(round(est_float, 10))) if est_float is not None else None
    decision_log = call.plan.decision_log if call.plan and call.plan.auto else None
    model = served.model if served else None
    provider = served.provider.name if served else None
    effort = sent_effort(served, request)

    meta: dict[str, Any] = {
        "job_id": job_id,
        "receipt_id": receipt_id,
        "requested_model": requested,
        "provider": provider,
        "cost_usd": money(cost),
        "estimated_cost_usd": money(estimated) if estimated is not None else None,
    }
    if served is not None and served.reasoning_effort is not None:
        meta["reasoning_effort"] = served.reasoning_effort  # chosen by ainfera-auto for a latency budget
    if call.fallbacks:
        meta["fallbacks"] = call.fallbacks
    if decision_log is not None:
        meta["decision_log"] = decision_log
    if succeeded:
        assert completion is not None and model is not None
        status = 200
        body: dict[str, Any] = {
            "id": "chatcmpl-" + job_id.removeprefix("job_"),
            "object": "chat.completion",
            "created": int(now.timestamp()),
            "model": model.slug,
            "choices": completion.choices,
            "usage": {
                "prompt_tokens": completion.input_tokens,
                "completion_tokens": completion.output_tokens,
                "total_tokens": completion.input_tokens + completion.output_tokens,
            },
            "ainfera": meta,
        }
    else:
        assert call.error is not None
        status = call.error.status
        body = {**call.error.envelope(), "ainfera": meta}

    routing: dict[str, Any] | None = None
    if decision_log is not None or call.fallbacks:
        routing = {"decision_log": decision_log, "fallbacks": call.fallbacks}
    receipt = Receipt(
        id=receipt_id,
        job_id=job_id,
        tenant_id=tenant_id,
        status=ReceiptStatus.SUCCEEDED if succeeded else ReceiptStatus.FAILED,
        requested_model=requested,
        model_slug=model.slug if model else None,
        provider=provider,
        upstream_model=model.upstream_model if model else None,
        input_tokens=completion.input_tokens if completion else 0,
        output_tokens=completion.output_tokens if completion else 0,
        estimated_cost_usd=estimated,
        cost_usd=cost,
        latency_ms=latency_ms,
        upstream_latency_ms=call.upstream_latency_ms,
        attempts=call.attempts,
        error_code=call.error.code if call.error else None,
        routing=routing,
        created_at=now,
        reasoning_effort=effort,
    )
    fields: dict[str, Any] = {
        "receipt_id": receipt_id,
        "status": receipt.status.value,
        "requested_model": requested,
        "model": receipt.model_slug,
        "provider": provider,
        "upstream_model": receipt.upstream_model,
        "usage": {"input_tokens": receipt.input_tokens, "output_tokens": receipt.output_tokens},
        "cost_usd": money(cost),
        "estimated_cost_usd": money(estimated) if estimated is not None else None,
        "latency_ms": latency_ms,
        "attempts": call.attempts,
        "prompt_sha256": _sha256(request.get("messages")),
        "response_sha256": _sha256(completion.choices) if completion else None,
    }
    if decision_log is not None:
        fields["decision_log"] = decision_log
        fields["original_choice"] = call.plan.chosen.model.slug if call.plan else None
    if effort is not None:
        fields["reasoning_effort"] = effort
        fields["reasoning_effort_source"] = "caller" if request.get("reasoning_effort") else "ainfera-auto"
    if call.fallbacks:
        fields["fallbacks"] = call.fallbacks
    if call.error:
        fields["error"] = {"code": call.error.code, "message": call.error.message}
    return Finished(
        http_status=status,
        body=body,
        receipt=receipt,
        event_type="inference.routed" if succeeded else "inference.failed",
        event_fields=fields,
    )

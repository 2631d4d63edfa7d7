"""The receipt: what a job cost and who served it. One per job, whatever happens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID


class ReceiptStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the caller left a streamed call; billed for what was generated


@dataclass(frozen=True, slots=True)
class Receipt:
    id: str
    job_id: str
    tenant_id: UUID
    status: ReceiptStatus
    requested_model: str
    model_slug: str | None
    provider: str | None
    upstream_model: str | None
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: Decimal | None
    cost_usd: Decimal
    latency_ms: int
    upstream_latency_ms: int | None
    attempts: int
    error_code: str | None
    routing: dict[str, Any] | None
    created_at: datetime
    signature: str | None = None  # base64url Ed25519 over the public JSON without "signature"
    signing_kid: str | None = None
    reasoning_effort: str | None = None  # the effort the call carried: the caller's, or ainfera-auto's choice
    streamed: bool = False  # the answer was relayed to the caller as it was generated
    usage_estimated: bool = False  # the provider reported no usage: the tokens were counted by us
    # Parts of input_tokens (cache reads, cache writes) and of output_tokens (reasoning).
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def row(self) -> dict[str, Any]:
        """JSON-safe column values, as the database's finish_dispatch() takes them."""
        return {
            "id": self.id,
            "job_id": self.job_id,
            "tenant_id": str(self.tenant_id),
            "status": self.status.value,
            "requested_model": self.requested_model,
            "model_slug": self.model_slug,
            "provider": self.provider,
            "upstream_model": self.upstream_model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "estimated_cost_usd": str(self.estimated_cost_usd) if self.estimated_cost_usd is not None else None,
            "cost_usd": str(self.cost_usd),
            "latency_ms": self.latency_ms,
            "upstream_latency_ms": self.upstream_latency_ms,
            "attempts": self.attempts,
            "error_code": self.error_code,
            "routing": self.routing,
            "created_at": self.created_at.isoformat(),
            "signature": self.signature,
            "signing_kid": self.signing_kid,
            "reasoning_effort": self.reasoning_effort,
            "streamed": self.streamed,
            "usage_estimated": self.usage_estimated,
            "cached_input_tokens": self.cached_input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }

    @staticmethod
    def from_row(row: dict[str, Any]) -> Receipt:
        """The inverse of `row()` (a commit held in Redis is read back with it)."""
        def dec(v: str | None) -> Decimal | None:
            return Decimal(v) if v is not None else None

        return Receipt(
            id=row["id"], job_id=row["job_id"], tenant_id=UUID(row["tenant_id"]), status=ReceiptStatus(row["status"]),
            requested_model=row["requested_model"], model_slug=row["model_slug"], provider=row["provider"],
            upstream_model=row["upstream_model"], input_tokens=row["input_tokens"], output_tokens=row["output_tokens"],
            estimated_cost_usd=dec(row["estimated_cost_usd"]), cost_usd=Decimal(row["cost_usd"]),
            latency_ms=row["latency_ms"], upstream_latency_ms=row["upstream_latency_ms"], attempts=row["attempts"],
            error_code=row["error_code"], routing=row["routing"], created_at=datetime.fromisoformat(row["created_at"]),
            signature=row["signature"], signing_kid=row["signing_kid"], reasoning_effort=row["reasoning_effort"],
            streamed=row.get("streamed", False), usage_estimated=row.get("usage_estimated", False),
            cached_input_tokens=row.get("cached_input_tokens", 0), cache_write_tokens=row.get("cache_write_tokens", 0),
            reasoning_tokens=row.get("reasoning_tokens", 0),
        )

    def public(self) -> dict[str, Any]:
        """The API shape (money as decimal strings, the canonical slug as `model`), with its signature.

        The signature covers exactly this object without its `signature` member and the aliases the
        `ainfera` SDK reads (`receipt_id`, `inference_id`, `audit_url`: shared/signing.py).
        """
        body = self._unsigned()
        if self.signature is not None:
            body["signature"] = {"alg": "EdDSA", "kid": self.signing_kid, "value": self.signature}
        return {**body, "receipt_id": self.id, "inference_id": self.job_id, "audit_url": f"/v1/audit/{self.tenant_id}"}

    def _unsigned(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "receipt",
            "job_id": self.job_id,
            "status": self.status.value,
            "requested_model": self.requested_model,
            "model": self.model_slug,
            "provider": self.provider,
            "upstream_model": self.upstream_model,
            "usage": self.usage(),
            "estimated_cost_usd": money(self.estimated_cost_usd) if self.estimated_cost_usd is not None else None,
            "cost_usd": money(self.cost_usd),
            "latency_ms": self.latency_ms,
            "upstream_latency_ms": self.upstream_latency_ms,
            "attempts": self.attempts,
            "error_code": self.error_code,
            "routing": self.routing,
            "created_at": int(self.created_at.timestamp()),
        }
        if self.reasoning_effort is not None:
            # Present only when set, so receipts signed before the field existed still verify.
            body["reasoning_effort"] = self.reasoning_effort
        # Likewise present only when true, so receipts signed before streaming existed still verify.
        if self.streamed:
            body["streamed"] = True
        if self.usage_estimated:
            body["usage_estimated"] = True
        return body

    def usage(self) -> dict[str, int]:
        """The token counts a receipt (and its audit event) shows. The split of the prompt (cache
        reads and writes) and of the output (reasoning) is present only when not zero, so receipts
        signed before it existed still verify."""
        usage = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        for name in ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens"):
            if value := getattr(self, name):
                usage[name] = value
        return usage


def money(value: Decimal) -> str:
    """USD as a plain decimal string with at most 10 places and no exponent."""
    q = value.quantize(Decimal("0.0000000001"))
    text = format(q.normalize(), "f")
    return text if text != "-0" else "0"

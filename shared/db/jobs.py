"""Finishing jobs and reading their outcomes and receipts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from shared.db.queries import q
from shared.receipts.types import Receipt, ReceiptStatus


@dataclass(frozen=True, slots=True)
class JobRow:
    id: str
    tenant_id: UUID
    kind: str
    status: str
    requested_model: str
    response: dict[str, Any] | None
    http_status: int | None
    receipt_id: str | None
    created_at: datetime
    finished_at: datetime | None


async def finish_job(
    conn: Any,
    *,
    job_id: str,
    tenant_id: UUID,
    kind: str,
    status: str,
    requested_model: str,
    response: dict[str, Any],
    http_status: int,
    receipt_id: str,
    created_at: datetime,
    finished_at: datetime,
) -> bool:
    """Mark the job finished. False when it already was (a second run must write nothing)."""
    got = await conn.fetchval(
        q("jobs", "finish_job"),
        job_id,
        tenant_id,
        kind,
        status,
        requested_model,
        response,
        http_status,
        receipt_id,
        created_at,
        finished_at,
    )
    return got is not None


async def insert_receipt(conn: Any, r: Receipt) -> bool:
    got = await conn.fetchval(
        q("jobs", "insert_receipt"),
        r.id,
        r.job_id,
        r.tenant_id,
        r.status.value,
        r.requested_model,
        r.model_slug,
        r.provider,
        r.upstream_model,
        r.input_tokens,
        r.output_tokens,
        r.estimated_cost_usd,
        r.cost_usd,
        r.latency_ms,
        r.upstream_latency_ms,
        r.attempts,
        r.error_code,
        r.routing,
        r.created_at,
    )
    return got is not None


async def job_outcome(conn: Any, job_id: str) -> JobRow | None:
    r = await conn.fetchrow(q("jobs", "job_outcome"), job_id)
    if r is None:
        return None
    return JobRow(
        r["id"], r["tenant_id"], r["kind"], r["status"], r["requested_model"], r["response"],
        r["http_status"], r["receipt_id"], r["created_at"], r["finished_at"],
    )


async def get_receipt(conn: Any, receipt_id: str, tenant_id: UUID) -> Receipt | None:
    r = await conn.fetchrow(q("jobs", "get_receipt"), receipt_id, tenant_id)
    if r is None:
        return None
    return Receipt(
        id=r["id"], job_id=r["job_id"], tenant_id=r["tenant_id"], status=ReceiptStatus(r["status"]),
        requested_model=r["requested_model"], model_slug=r["model_slug"], provider=r["provider"],
        upstream_model=r["upstream_model"], input_tokens=r["input_tokens"], output_tokens=r["output_tokens"],
        estimated_cost_usd=r["estimated_cost_usd"], cost_usd=r["cost_usd"], latency_ms=r["latency_ms"],
        upstream_latency_ms=r["upstream_latency_ms"], attempts=r["attempts"], error_code=r["error_code"],
        routing=r["routing"], created_at=r["created_at"],
    )

"""Finishing jobs and reading their outcomes and receipts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from shared.db.queries import q
from shared.db.types import Connection
from shared.jobs import JobKind, JobRow, JobStatus
from shared.receipts.types import Receipt, ReceiptStatus


async def finish_dispatch(
    conn: Connection, *, job: dict[str, Any], receipt: dict[str, Any], event_type: str, prefix: str, suffix: str
) -> bool:
    """Write the finished job, its receipt and its audit event atomically.

    `job` and `receipt` are JSON-safe dicts named after the columns. Returns False,
    writing nothing, when the job had already finished (a second delivery).
    """
    return bool(await conn.fetchval(q("jobs", "finish_dispatch"), job, receipt, event_type, prefix, suffix))


async def finish_dispatch_many(conn: Connection, items: list[dict[str, Any]]) -> list[bool]:
    """Finish several jobs in one transaction; each item holds job, receipt, event_type, prefix, suffix.

    Returns, per item, whether it was finished here (False: it had been already).
    """
    result: list[bool] = await conn.fetchval(q("jobs", "finish_dispatch_many"), items)
    return result


async def job_outcome(conn: Connection, job_id: str) -> JobRow | None:
    r = await conn.fetchrow(q("jobs", "job_outcome"), job_id)
    if r is None:
        return None
    return JobRow(
        r["id"], r["tenant_id"], JobKind(r["kind"]), JobStatus(r["status"]), r["requested_model"], _json(r["response"]),
        r["http_status"], r["receipt_id"], r["created_at"], r["finished_at"],
    )


def _json(text: str | None) -> Any:
    return orjson.loads(text) if text is not None else None


def _receipt(r: Any) -> Receipt:
    return Receipt(
        id=r["id"], job_id=r["job_id"], tenant_id=r["tenant_id"], status=ReceiptStatus(r["status"]),
        requested_model=r["requested_model"], model_slug=r["model_slug"], provider=r["provider"],
        upstream_model=r["upstream_model"], input_tokens=r["input_tokens"], output_tokens=r["output_tokens"],
        estimated_cost_usd=r["estimated_cost_usd"], cost_usd=r["cost_usd"], latency_ms=r["latency_ms"],
        upstream_latency_ms=r["upstream_latency_ms"], attempts=r["attempts"], error_code=r["error_code"],
        routing=r["routing"], created_at=r["created_at"], signature=r["signature"], signing_kid=r["signing_kid"],
        reasoning_effort=r["reasoning_effort"], streamed=r["streamed"], usage_estimated=r["usage_estimated"],
        cached_input_tokens=r["cached_input_tokens"], cache_write_tokens=r["cache_write_tokens"],
        reasoning_tokens=r["reasoning_tokens"],
    )


async def get_receipt(conn: Connection, receipt_id: str, tenant_id: UUID) -> Receipt | None:
    r = await conn.fetchrow(q("jobs", "get_receipt"), receipt_id, tenant_id)
    return _receipt(r) if r else None


async def list_receipts(conn: Connection, tenant_id: UUID, *, after: str | None, model: str | None,
                        created_after: datetime | None, created_before: datetime | None,
                        limit: int) -> list[Receipt]:
    rows = await conn.fetch(q("jobs", "list_receipts"), tenant_id, after, model, created_after, created_before,
                            limit)
    return [_receipt(r) for r in rows]


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    tenant_id: UUID
    kind: JobKind
    request: dict[str, Any] | None  # as stored; the worker validates it again
    created_at: datetime
    batch_id: str | None
    attempt: int  # this claim's lease: the attempt number it took
    key_id: UUID | None = None  # the key that submitted it
    key_settings: dict[str, Any] | None = None  # that key's settings now
    key_revoked: bool = False  # that key has been revoked since


async def register_attempt(conn: Connection, *, job_id: str, tenant_id: UUID, kind: str, requested_model: str,
                           created_at: datetime, attempt: int) -> int | None:
    """Take the lease of a job delivered again. Returns the lease now held, None when it finished."""
    lease: int | None = await conn.fetchval(q("jobs", "register_attempt"), job_id, tenant_id, kind,
                                            requested_model, created_at, attempt)
    return lease


async def create_stored_job(conn: Connection, *, job_id: str, tenant_id: UUID, kind: JobKind, requested_model: str,
                            request: dict[str, Any], created_at: datetime, key_id: UUID | None = None) -> None:
    await conn.execute(q("jobs", "create_stored_job"), job_id, tenant_id, kind.value, requested_model, request,
                       created_at, key_id)


async def claim_stored_job(conn: Connection, job_id: str) -> ClaimedJob | None:
    r = await conn.fetchrow(q("jobs", "claim_stored_job"), job_id)
    if r is None:
        return None
    return ClaimedJob(r["tenant_id"], JobKind(r["kind"]), r["request"], r["created_at"], r["batch_id"], r["attempt"],
                      r["key_id"], r["key_settings"], bool(r["key_revoked"]))

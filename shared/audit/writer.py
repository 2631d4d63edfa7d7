"""Appending one event to a tenant's chain.

The payload is built here and cut around seq (`split_around_seq`); the database assigns
seq under a per-tenant lock, hashes and inserts in one statement (`audit_append`), so
concurrent workers never fork a chain and the lock is held for microseconds, not for
network round trips. The link trigger and unique indexes refuse a fork on their own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from shared.audit.chain import split_around_seq
from shared.db.audit import append_event as db_append_event
from shared.db.types import Connection


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_payload_parts(
    *, tenant_id: UUID, event_type: str, fields: dict[str, Any], now: datetime, job_id: str | None
) -> tuple[str, str]:
    """Prefix and suffix of the payload; it carries type, tenant, time and job besides `fields`."""
    payload = {
        **fields,
        "event_type": event_type,
        "tenant_id": str(tenant_id),
        "time": format_time(now),
        "job_id": job_id,
    }
    return split_around_seq(payload)


async def append_event(
    conn: Connection,
    *,
    tenant_id: UUID,
    event_type: str,
    fields: dict[str, Any],
    now: datetime,
    job_id: str | None = None,
) -> tuple[int, str]:
    """Append `event_type` with `fields`; returns (seq, event_hash)."""
    prefix, suffix = event_payload_parts(
        tenant_id=tenant_id, event_type=event_type, fields=fields, now=now, job_id=job_id
    )
    return await db_append_event(conn, tenant_id, event_type, job_id, prefix, suffix, now)

"""Audit rows: lock a tenant's chain head, insert an event, read events back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from shared.db.queries import q
from shared.db.types import Connection


@dataclass(frozen=True, slots=True)
class EventRow:
    seq: int
    event_type: str
    job_id: str | None
    payload: str  # canonical JSON, exactly as hashed
    previous_hash: str | None
    event_hash: str
    created_at: datetime


def _row(r: Any) -> EventRow:
    return EventRow(
        r["seq"], r["event_type"], r["job_id"], r["payload"], r["previous_hash"], r["event_hash"], r["created_at"]
    )


async def append_event(conn: Connection, tenant_id: UUID, event_type: str, job_id: str | None, prefix: str,
                       suffix: str, created_at: datetime) -> tuple[int, str]:
    """Append under the tenant's chain lock (held by the database for this statement's transaction)."""
    r = await conn.fetchrow(q("audit", "append_event"), tenant_id, event_type, job_id, prefix, suffix, created_at)
    assert r is not None  # the function always returns its row
    return int(r["seq"]), str(r["event_hash"])


async def list_events(conn: Connection, tenant_id: UUID, since_seq: int, limit: int) -> list[EventRow]:
    return [_row(r) for r in await conn.fetch(q("audit", "list_events"), tenant_id, since_seq, limit)]


async def chain_head(conn: Connection, tenant_id: UUID) -> tuple[int, str | None]:
    """(seq, event_hash) of the tenant's latest event; (0, None) for an empty chain."""
    r = await conn.fetchrow(q("audit", "chain_head"), tenant_id)
    return (int(r["seq"]), str(r["event_hash"])) if r else (0, None)

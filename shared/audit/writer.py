"""Appending one event to a tenant's chain inside the caller's transaction.

The chain lock (a transaction-scoped advisory lock per tenant) serialises appenders,
so concurrent workers never fork a chain; the database's link trigger and unique
indexes refuse a fork even if this code were wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from shared.audit.chain import canonical_json, event_hash
from shared.db.audit import EventRow, insert_event, lock_head


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def append_event(
    conn: Any,
    *,
    tenant_id: UUID,
    event_type: str,
    fields: dict[str, Any],
    now: datetime,
    job_id: str | None = None,
) -> EventRow:
    """Append `event_type` with `fields`; the payload also carries seq, type, tenant, time, job."""
    head_seq, head_hash = await lock_head(conn, tenant_id)
    seq = head_seq + 1
    payload = {
        **fields,
        "seq": seq,
        "event_type": event_type,
        "tenant_id": str(tenant_id),
        "time": format_time(now),
        "job_id": job_id,
    }
    text = canonical_json(payload)
    ev = EventRow(
        seq=seq,
        event_type=event_type,
        job_id=job_id,
        payload=text.decode("utf-8"),
        previous_hash=head_hash,
        event_hash=event_hash(head_hash, text),
        created_at=now,
    )
    await insert_event(conn, tenant_id, ev)
    return ev

"""What every fault scenario must leave behind, checked in Postgres: every job of the tenant in a
terminal state, one receipt and one audit event per job, and an audit chain that verifies."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from shared.audit.chain import verify_events

TERMINAL = ("succeeded", "failed", "cancelled", "expired")


async def fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def assert_trail(database_url: str, tenant_id: str, *, jobs: int) -> list[asyncpg.Record]:
    """The tenant's jobs (checked as above), oldest first."""
    tid = UUID(tenant_id)
    rows = await fetch(database_url, "SELECT id, status, http_status, response, attempt, custom_id FROM jobs "
                                     "WHERE tenant_id = $1 ORDER BY created_at, id", tid)
    assert len(rows) == jobs, [dict(r) for r in rows]
    assert all(r["status"] in TERMINAL for r in rows), [(r["id"], r["status"]) for r in rows]
    ran = {r["id"] for r in rows if r["status"] in ("succeeded", "failed")}
    receipts = await fetch(database_url, "SELECT job_id FROM receipts WHERE tenant_id = $1", tid)
    assert sorted(r["job_id"] for r in receipts) == sorted(ran), "one receipt per job that ran"
    events = await fetch(database_url, "SELECT seq, job_id, event_type, payload, previous_hash, event_hash "
                                       "FROM audit_events WHERE tenant_id = $1 ORDER BY seq", tid)
    assert sorted(e["job_id"] for e in events if e["job_id"]) == sorted(ran), "one audit event per job that ran"
    assert verify_events([dict(e) for e in events]) == (len(events), None)
    return rows

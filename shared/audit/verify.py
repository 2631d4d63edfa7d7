"""Verifying a tenant's whole chain from the database, page by page (bounded memory).

The same rule as any outside verifier (`shared.audit.chain.verify_events`); what the
`/verify` endpoint and `ainfera-dispatch audit verify` report.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from shared.audit.chain import verify_events
from shared.db.audit import list_events
from shared.db.types import Pool

PAGE = 5000


@dataclass(frozen=True, slots=True)
class ChainReport:
    event_count: int
    valid: bool
    failure_seq: int | None = None
    failure_reason: str | None = None
    head_seq: int = 0
    head_hash: str | None = None


async def verify_tenant_chain(db: Pool, tenant_id: UUID, page: int = PAGE) -> ChainReport:
    checked, since, previous = 0, 0, None
    while True:
        async with db.acquire() as conn:
            rows = await list_events(conn, tenant_id, since, page)
        if not rows:
            return ChainReport(checked, True, head_seq=since, head_hash=previous)
        events = [{"seq": r.seq, "payload": r.payload, "previous_hash": r.previous_hash, "event_hash": r.event_hash}
                  for r in rows]
        count, broken = verify_events(events, start_hash=previous, first_seq=since + 1)
        checked += count
        if broken is not None:
            return ChainReport(checked, False, broken.seq, broken.reason)
        since, previous = rows[-1].seq, rows[-1].event_hash

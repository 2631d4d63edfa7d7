"""The audit API's shapes: an event, a page of a chain, a verification report, a checkpoint.

They are what the public `ainfera` SDK (1.1.0) parses, `agent_id` included (the SDK's name for
the tenant), so a customer can verify our chains with someone else's code.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from shared.audit.verify import ChainReport
from shared.audit.writer import format_time
from shared.db.audit import EventRow


def event_object(tenant_id: str, e: EventRow) -> dict[str, Any]:
    return {
        "id": f"{tenant_id}:{e.seq}",
        "agent_id": tenant_id,
        "tenant_id": tenant_id,
        "seq": e.seq,
        "event_type": e.event_type,
        "payload": orjson.loads(e.payload),
        "previous_hash": e.previous_hash,
        "event_hash": e.event_hash,
        "created_at": format_time(e.created_at),
    }


def event_page(tenant_id: str, rows: Sequence[EventRow], limit: int, since_seq: int) -> dict[str, Any]:
    """Up to `limit` events after `since_seq`; `rows` holds one more when more follow."""
    page = rows[:limit]
    return {
        "object": "list",
        "agent_id": tenant_id,
        "tenant_id": tenant_id,
        "events": [event_object(tenant_id, e) for e in page],
        "has_more": len(rows) > limit,
        "next_since_seq": page[-1].seq if page else since_seq,
    }


def verification_object(tenant_id: str, report: ChainReport) -> dict[str, Any]:
    return {
        "agent_id": tenant_id,
        "tenant_id": tenant_id,
        "event_count": report.event_count,
        "valid": report.valid,
        "failure_seq": report.failure_seq,
        "failure_reason": report.failure_reason,
    }


def checkpoint_object(tenant_id: str, seq: int, event_hash: str | None, issued_at: datetime) -> dict[str, Any]:
    """The chain's head as it is signed (the signature is added by `shared.signing`)."""
    return {
        "object": "audit.checkpoint",
        "tenant_id": tenant_id,
        "seq": seq,
        "event_hash": event_hash,
        "issued_at": format_time(issued_at),
    }

"""Batch rows and the feeder's statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from shared.db.queries import q
from shared.db.types import Connection


@dataclass(frozen=True, slots=True)
class BatchRow:
    id: str
    tenant_id: UUID
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any] | None
    status: str
    errors: dict[str, Any] | None
    output_file_id: str | None
    error_file_id: str | None
    total: int
    completed: int
    failed: int
    fed_through: int
    last_fed_at: datetime | None
    created_at: datetime
    expires_at: datetime
    in_progress_at: datetime | None
    finalizing_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    expired_at: datetime | None
    cancelling_at: datetime | None
    cancelled_at: datetime | None


def _row(r: Any) -> BatchRow:
    return BatchRow(**{f: r[f] for f in BatchRow.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class OpenBatch:
    id: str
    tenant_id: UUID
    status: str
    total: int
    fed_through: int
    input_file_id: str
    expires_at: datetime
    last_fed_at: datetime | None
    key_id: UUID | None = None  # the API key that created it: its lines answer to that key


async def create_batch(conn: Connection, *, batch_id: str, tenant_id: UUID, input_file_id: str, endpoint: str,
                       completion_window: str, metadata: dict[str, str] | None, total: int,
                       expires_at: datetime, key_id: UUID | None = None) -> BatchRow:
    return _row(await conn.fetchrow(q("batches", "create_batch"), batch_id, tenant_id, input_file_id, endpoint,
                                    completion_window, metadata, total, expires_at, key_id))


async def get_batch(conn: Connection, batch_id: str, tenant_id: UUID) -> BatchRow | None:
    r = await conn.fetchrow(q("batches", "get_batch"), batch_id, tenant_id)
    return _row(r) if r else None


async def list_batches(conn: Connection, tenant_id: UUID, after: str | None, limit: int) -> list[BatchRow]:
    return [_row(r) for r in await conn.fetch(q("batches", "list_batches"), tenant_id, after, limit)]


async def request_cancel(conn: Connection, batch_id: str, tenant_id: UUID) -> BatchRow | None:
    r = await conn.fetchrow(q("batches", "request_cancel"), batch_id, tenant_id)
    return _row(r) if r else None


async def open_batches(conn: Connection) -> list[OpenBatch]:
    rows = await conn.fetch(q("batches", "open_batches"))
    return [OpenBatch(r["id"], r["tenant_id"], r["status"], r["total"], r["fed_through"], r["input_file_id"],
                      r["expires_at"], r["last_fed_at"], r["key_id"]) for r in rows]


async def materialize_lines(conn: Connection, batch_id: str, after: int, through: int, job_prefix: str) -> list[str]:
    """Create queued jobs for lines (after, through] and record the progress; returns new job ids."""
    async with conn.transaction():
        ids = [r["id"] for r in await conn.fetch(q("batches", "materialize_lines"), batch_id, after, through,
                                                 job_prefix)]
        await conn.execute(q("batches", "mark_fed"), batch_id, through)
    return ids


async def line_sizes(conn: Connection, batch_id: str, after: int, through: int) -> list[tuple[int, int | None]]:
    """(size in bytes, output cap or None) of each input line (after, through], in line order: what the
    batch rate limits count."""
    return [(int(r["bytes"]), _small_int(r["max_completion_tokens"]) or _small_int(r["max_tokens"]))
            for r in await conn.fetch(q("batches", "line_sizes"), batch_id, after, through)]


def _small_int(text: str | None) -> int | None:
    """A positive integer of at most nine digits, else None (a line's cap is checked when it runs)."""
    return int(text) if text is not None and text.isdigit() and 0 < len(text) <= 9 and int(text) > 0 else None


async def close_open_lines(conn: Connection, batch_id: str, status: str) -> int:
    result: str = await conn.execute(q("batches", "close_open_lines"), batch_id, status)
    return int(result.split()[-1])


async def has_open_lines(conn: Connection, batch_id: str) -> bool:
    return bool(await conn.fetchval(q("batches", "has_open_lines"), batch_id))


async def begin_finalizing(conn: Connection, batch_id: str) -> None:
    await conn.execute(q("batches", "begin_finalizing"), batch_id)


async def finish_batch(conn: Connection, batch_id: str, status: str, output_file_id: str | None,
                       error_file_id: str | None) -> BatchRow | None:
    r = await conn.fetchrow(q("batches", "finish_batch"), batch_id, status, output_file_id, error_file_id)
    return _row(r) if r else None


async def succeeded_lines_after(conn: Connection, batch_id: str, after: int, limit: int) -> list[Any]:
    return list(await conn.fetch(q("batches", "succeeded_lines_after"), batch_id, after, limit))


async def unsucceeded_lines_after(conn: Connection, batch_id: str, after: int, limit: int) -> list[Any]:
    return list(await conn.fetch(q("batches", "unsucceeded_lines_after"), batch_id, after, limit))


async def open_stored_jobs(conn: Connection, older_than_s: float, limit: int, started_before_s: float) -> list[str]:
    rows = await conn.fetch(q("batches", "open_stored_jobs"), timedelta(seconds=older_than_s), limit,
                            timedelta(seconds=started_before_s))
    return [r["id"] for r in rows]


async def get_batch_by_id(conn: Connection, batch_id: str) -> BatchRow | None:
    r = await conn.fetchrow(q("batches", "get_batch_by_id"), batch_id)
    return _row(r) if r else None

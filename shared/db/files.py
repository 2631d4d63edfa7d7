"""Files and their lines: create, fill by COPY, read back in pages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.db.queries import q
from shared.db.types import Connection


@dataclass(frozen=True, slots=True)
class FileRow:
    id: str
    tenant_id: UUID
    purpose: str
    kind: str  # input | output | error
    filename: str
    bytes: int
    line_count: int
    status: str
    batch_id: str | None
    created_at: datetime


def _row(r: Any) -> FileRow:
    return FileRow(r["id"], r["tenant_id"], r["purpose"], r["kind"], r["filename"], r["bytes"], r["line_count"],
                   r["status"], r["batch_id"], r["created_at"])


async def create_file(conn: Connection, *, file_id: str, tenant_id: UUID, purpose: str, kind: str, filename: str,
                      status: str, batch_id: str | None = None, size: int = 0, line_count: int = 0) -> FileRow:
    return _row(await conn.fetchrow(q("files", "create_file"), file_id, tenant_id, purpose, kind, filename, status,
                                    batch_id, size, line_count))


class DuplicateCustomId(Exception):
    """A line repeats a custom_id already in the file (nothing of the chunk was written)."""


async def copy_lines(conn: Connection, file_id: str, lines: Sequence[tuple[int, str, str]]) -> None:
    """Append (line_no, custom_id, raw) rows with COPY, the fast path for large files, in one transaction."""
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "file_lines", records=[(file_id, n, cid, raw) for n, cid, raw in lines],
                columns=["file_id", "line_no", "custom_id", "raw"],
            )
    except asyncpg.UniqueViolationError as e:
        raise DuplicateCustomId(str(e)) from e


async def reserve_input_bytes(conn: Connection, file_id: str, tenant_id: UUID, n: int, *, limit: int) -> bool:
    """Reserve `n` more bytes for an uploading input file; False when its tenant would exceed `limit`."""
    return await conn.fetchval(q("files", "reserve_input_bytes"), file_id, tenant_id, n, limit) is not None


async def finish_upload(conn: Connection, file_id: str, size: int, line_count: int) -> FileRow:
    return _row(await conn.fetchrow(q("files", "finish_upload"), file_id, size, line_count))


async def delete_file(conn: Connection, file_id: str) -> None:
    await conn.execute(q("files", "delete_file"), file_id)


async def get_file(conn: Connection, file_id: str, tenant_id: UUID) -> FileRow | None:
    r = await conn.fetchrow(q("files", "get_file"), file_id, tenant_id)
    return _row(r) if r else None


async def list_files(conn: Connection, tenant_id: UUID, purpose: str | None, limit: int) -> list[FileRow]:
    return [_row(r) for r in await conn.fetch(q("files", "list_files"), tenant_id, purpose, limit)]


async def first_lines_with_custom_ids(conn: Connection, file_id: str, custom_ids: Sequence[str]) -> dict[str, int]:
    rows = await conn.fetch(q("files", "first_lines_with_custom_ids"), file_id, list(custom_ids))
    return {r["custom_id"]: r["line_no"] for r in rows}


async def file_lines_after(conn: Connection, file_id: str, after: int, limit: int) -> list[tuple[int, str]]:
    return [(r["line_no"], r["raw"]) for r in await conn.fetch(q("files", "file_lines_after"), file_id, after, limit)]


async def models_of_lines(conn: Connection, file_id: str) -> list[tuple[str, int]]:
    """(model, first line naming it) for each model an input file's lines name, in line order."""
    return [(r["model"], r["line_no"]) for r in await conn.fetch(q("files", "models_of_lines"), file_id)]

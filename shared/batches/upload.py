"""Storing a batch input file while it streams in: validate each line, COPY them in chunks.

Memory is bounded by one chunk of lines whatever the file's size. The file row exists
(status `uploading`) from the start, so its lines can be written as they arrive; any
failure (a bad line, too many bytes, the client going away) deletes it again, and only a
file that was read to the end and validated becomes `processed`. Its bytes are reserved
against the tenant's storage quota as they arrive (`quota.py`).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import UUID

from shared.batches.lines import LineSplitter, RequestLine, line_error
from shared.batches.quota import QuotaReservation
from shared.db.files import (
    DuplicateCustomId,
    FileRow,
    copy_lines,
    create_file,
    delete_file,
    finish_upload,
    first_lines_with_custom_ids,
)
from shared.db.types import Pool
from shared.errors import InvalidRequest, PayloadTooLarge
from shared.ids import new_id

FLUSH_LINES = 5000


@dataclass(frozen=True, slots=True)
class UploadLimits:
    max_bytes: int
    max_lines: int
    max_line_bytes: int
    max_tenant_bytes: int  # all the tenant's input files together, this one included


@dataclass(frozen=True, slots=True)
class StoredUpload:
    file: FileRow
    sha256: str  # of the content, for Idempotency-Key comparisons


def new_file_id() -> str:
    return new_id("file").replace("_", "-", 1)  # OpenAI style: file-...


async def store_input_file(
    db: Pool, *, tenant_id: UUID, filename: str, content: AsyncIterator[bytes], limits: UploadLimits
) -> StoredUpload:
    file_id = new_file_id()
    async with db.acquire() as conn:
        await create_file(conn, file_id=file_id, tenant_id=tenant_id, purpose="batch", kind="input",
                          filename=filename, status="uploading")
    try:
        quota = QuotaReservation(db, file_id=file_id, tenant_id=tenant_id, limit=limits.max_tenant_bytes)
        digest = hashlib.sha256()
        splitter = LineSplitter(limits.max_lines, max_line_bytes=limits.max_line_bytes)
        size = 0
        pending: list[RequestLine] = []
        async for chunk in content:
            size += len(chunk)
            if size > limits.max_bytes:
                raise PayloadTooLarge(f"The file exceeds the limit of {limits.max_bytes} bytes.", param="file")
            await quota.cover(size)
            digest.update(chunk)
            pending.extend(splitter.feed(chunk))
            if len(pending) >= FLUSH_LINES:
                await _flush(db, file_id, pending)
                pending = []
        pending.extend(splitter.finish())
        if pending:
            await _flush(db, file_id, pending)
        if splitter.request_lines == 0:
            raise InvalidRequest("The file has no request lines.", code="empty_file", param="file")
        async with db.acquire() as conn:
            stored = await finish_upload(conn, file_id, size, splitter.request_lines)
        return StoredUpload(stored, digest.hexdigest())
    except BaseException:
        async with db.acquire() as conn:
            await delete_file(conn, file_id)
        raise


async def _flush(db: Pool, file_id: str, lines: list[RequestLine]) -> None:
    async with db.acquire() as conn:
        try:
            await copy_lines(conn, file_id, [(ln.line_no, ln.custom_id, ln.raw) for ln in lines])
        except DuplicateCustomId as e:
            earlier = await first_lines_with_custom_ids(conn, file_id, [ln.custom_id for ln in lines])
            raise _duplicate_error(lines, earlier) from e


def _duplicate_error(lines: list[RequestLine], earlier: dict[str, int]) -> InvalidRequest:
    """Name the first line that repeats a custom_id, and where that id was first used."""
    first_seen = dict(earlier)
    for ln in lines:
        first = first_seen.get(ln.custom_id)
        if first is not None:
            return line_error(ln.line_no, f"duplicate custom_id {ln.custom_id!r} (first used on line {first}).",
                              param="custom_id")
        first_seen[ln.custom_id] = ln.line_no
    return InvalidRequest("The file repeats a custom_id.", code="invalid_batch_line", param="custom_id")

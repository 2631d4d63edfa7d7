"""Finishing a batch: decide its final status, describe its output and error files, close it.

Runs as its own job (id `finalize:<batch>`, so it is queued at most once at a time), because
measuring the result files of a million-line batch takes a while and must not hold up the
supervisor. The files are not copies: their content is rendered from the jobs on request;
this only measures them. Everything happens in one transaction at the end, so a crash
halfway leaves the batch to be finalized again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from shared.batches.results import error_lines, output_lines
from shared.db.batches import BatchRow, begin_finalizing, finish_batch, get_batch_by_id
from shared.db.files import create_file
from shared.logging import get_logger
from shared.resources import Resources

log = get_logger(__name__)

OPEN = ("validating", "in_progress", "finalizing", "cancelling")


def finalize_job_id(batch_id: str) -> str:
    return f"finalize:{batch_id}"


def final_status(b: BatchRow) -> str:
    if b.cancelling_at is not None:
        return "cancelled"
    if b.completed + b.failed >= b.total:
        return "completed"
    return "expired"


async def _measure(lines: AsyncIterator[bytes]) -> tuple[int, int]:
    size = count = 0
    async for line in lines:
        size += len(line)
        count += 1
    return size, count


async def finalize_batch(res: Resources, batch_id: str) -> BatchRow | None:
    async with res.db.acquire() as conn:
        b = await get_batch_by_id(conn, batch_id)
        if b is None or b.status not in OPEN:
            return b
        status = final_status(b)
        if status == "completed":
            await begin_finalizing(conn, batch_id)
    suffix = batch_id.removeprefix("batch_")
    out_size, out_lines = await _measure(output_lines(res.db, batch_id))
    err_size, err_lines = await _measure(error_lines(res.db, batch_id, status))
    async with res.db.acquire() as conn, conn.transaction():
        output_id = error_id = None
        if out_lines:
            output_id = f"file-{suffix}-output"
            await create_file(conn, file_id=output_id, tenant_id=b.tenant_id, purpose="batch_output",
                              kind="output", filename=f"{batch_id}_output.jsonl", status="processed",
                              batch_id=batch_id, size=out_size, line_count=out_lines)
        if err_lines:
            error_id = f"file-{suffix}-error"
            await create_file(conn, file_id=error_id, tenant_id=b.tenant_id, purpose="batch_output",
                              kind="error", filename=f"{batch_id}_error.jsonl", status="processed",
                              batch_id=batch_id, size=err_size, line_count=err_lines)
        done = await finish_batch(conn, batch_id, status, output_id, error_id)
    log.info("batch_finished", batch_id=batch_id, status=status, succeeded=out_lines, unsucceeded=err_lines)
    return done

"""Output and error files: rendered on demand from the batch's jobs, never stored twice.

Lines follow OpenAI's batch output format, in input order:
- output file: `{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error": null}`
  for every line that succeeded;
- error file: the same shape with the error response for lines that ran and failed, and
  `"response": null, "error": {"code": "batch_expired" | "batch_cancelled", "message"}` for lines
  that never ran.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from shared.db.batches import succeeded_lines_after, unsucceeded_lines_after
from shared.db.types import Pool

PAGE = 2000
_NEVER_RAN = {
    "expired": ("batch_expired", "This request could not be executed before the completion window expired."),
    "cancelled": ("batch_cancelled", "This request was not executed because the batch was cancelled."),
}


def _stored(answer: str) -> orjson.Fragment:
    """A job's answer, spliced in as the JSON text it was stored as: byte for byte, never re-parsed."""
    return orjson.Fragment(answer)


def _request_id(job_id: str | None, line_no: int, batch_id: str) -> str:
    return f"batch_req_{(job_id or f'{batch_id}_{line_no}').removeprefix('job_')}"


def render_success(batch_id: str, row: Any) -> bytes:
    return orjson.dumps({
        "id": _request_id(row["id"], row["line_no"], batch_id),
        "custom_id": row["custom_id"],
        "response": {"status_code": row["http_status"], "request_id": row["id"], "body": _stored(row["response"])},
        "error": None,
    }) + b"\n"


def render_failure(batch_id: str, row: Any, batch_status: str) -> bytes:
    status = row["status"]
    if status == "failed" and row["response"] is not None:
        response: dict[str, Any] | None = {
            "status_code": row["http_status"], "request_id": row["id"], "body": _stored(row["response"])}
        error = None
    else:
        # Never ran: closed as expired or cancelled, or never became a job before the batch ended.
        reason = status if status in _NEVER_RAN else ("cancelled" if batch_status == "cancelled" else "expired")
        code, message = _NEVER_RAN[reason]
        response, error = None, {"code": code, "message": message}
    return orjson.dumps({
        "id": _request_id(row["id"], row["line_no"], batch_id),
        "custom_id": row["custom_id"],
        "response": response,
        "error": error,
    }) + b"\n"


async def _paged(db: Pool, fetch: Callable[[Any, int], Awaitable[list[Any]]],
                 render: Callable[[Any], bytes]) -> AsyncIterator[bytes]:
    """Rendered lines, fetched a page at a time in line order (a connection is held per page only)."""
    after = 0
    while True:
        async with db.acquire() as conn:
            rows = await fetch(conn, after)
        if not rows:
            return
        for row in rows:
            yield render(row)
        after = rows[-1]["line_no"]


def output_lines(db: Pool, batch_id: str) -> AsyncIterator[bytes]:
    return _paged(db, lambda conn, after: succeeded_lines_after(conn, batch_id, after, PAGE),
                  lambda row: render_success(batch_id, row))


def error_lines(db: Pool, batch_id: str, batch_status: str) -> AsyncIterator[bytes]:
    return _paged(db, lambda conn, after: unsucceeded_lines_after(conn, batch_id, after, PAGE),
                  lambda row: render_failure(batch_id, row, batch_status))

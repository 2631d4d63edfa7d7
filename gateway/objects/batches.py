"""The OpenAI shapes of file and batch objects, built from our rows (Files and Batches APIs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.db.batches import BatchRow
from shared.db.files import FileRow


def _ts(t: datetime | None) -> int | None:
    return int(t.timestamp()) if t else None


def file_object(f: FileRow) -> dict[str, Any]:
    return {
        "id": f.id,
        "object": "file",
        "bytes": f.bytes,
        "created_at": _ts(f.created_at),
        "expires_at": None,
        "filename": f.filename,
        "purpose": f.purpose,
        "status": f.status,
        "status_details": None,
    }


def batch_object(b: BatchRow) -> dict[str, Any]:
    return {
        "id": b.id,
        "object": "batch",
        "endpoint": b.endpoint,
        "errors": b.errors,
        "input_file_id": b.input_file_id,
        "completion_window": b.completion_window,
        "status": b.status,
        "output_file_id": b.output_file_id,
        "error_file_id": b.error_file_id,
        "created_at": _ts(b.created_at),
        "in_progress_at": _ts(b.in_progress_at),
        "expires_at": _ts(b.expires_at),
        "finalizing_at": _ts(b.finalizing_at),
        "completed_at": _ts(b.completed_at),
        "failed_at": _ts(b.failed_at),
        "expired_at": _ts(b.expired_at),
        "cancelling_at": _ts(b.cancelling_at),
        "cancelled_at": _ts(b.cancelled_at),
        "request_counts": {"total": b.total, "completed": b.completed, "failed": b.failed},
        "metadata": b.metadata,
    }

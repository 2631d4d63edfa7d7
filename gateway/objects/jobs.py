"""The job object: `GET /v1/jobs/{id}` and the 202 answer of an async chat completion."""

from __future__ import annotations

from typing import Any

from shared.jobs import JobRow


def job_object(job: JobRow) -> dict[str, Any]:
    return {
        "id": job.id,
        "object": "job",
        "kind": job.kind,
        "status": job.status,
        "model": job.requested_model,
        "created_at": int(job.created_at.timestamp()),
        "finished_at": int(job.finished_at.timestamp()) if job.finished_at else None,
        "receipt_id": job.receipt_id,
        "http_status": job.http_status,
        "response": job.response,
    }

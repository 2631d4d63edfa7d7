"""`GET /v1/receipts/{id}` and `GET /v1/jobs/{id}`: a tenant reads only its own; anything else is 404."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request

from gateway.auth import authenticate
from gateway.deps import gateway_state
from gateway.responses import JSONResponse
from shared.db.jobs import get_receipt, job_outcome
from shared.errors import NotFound

router = APIRouter()


@router.get("/v1/receipts/{receipt_id}")
async def retrieve_receipt(request: Request, receipt_id: str) -> JSONResponse:
    owner = await authenticate(request)
    async with gateway_state(request).res.db.acquire() as conn:
        receipt = await get_receipt(conn, receipt_id, owner.tenant.id)
    if receipt is None:
        raise NotFound(f"No receipt '{receipt_id}'.", param="receipt_id")
    return JSONResponse(receipt.public())


@router.get("/v1/jobs/{job_id}")
async def retrieve_job(request: Request, job_id: str) -> JSONResponse:
    owner = await authenticate(request)
    async with gateway_state(request).res.db.acquire() as conn:
        job = await job_outcome(conn, job_id)
    if job is None or job.tenant_id != owner.tenant.id:
        raise NotFound(f"No job '{job_id}'.", param="job_id")
    body = {
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
    return JSONResponse(body)

"""`GET /v1/receipts/{id}`: a tenant reads only its own; anything else is 404."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request

from gateway.auth import authenticate
from gateway.deps import gateway_state
from gateway.responses import JSONResponse
from shared.db.jobs import get_receipt
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

"""`GET /v1/receipts/{id}` and `GET /v1/receipts`: a tenant reads only its own; anything else is 404.

Each receipt carries its Ed25519 signature (verify with `/.well-known/jwks.json`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Query
from starlette.requests import Request

from gateway.auth import Owner
from gateway.deps import gateway_state
from gateway.objects.lists import cursor_page
from gateway.objects.receipts import receipt_object
from gateway.responses import JSONResponse
from shared.db.jobs import get_receipt, list_receipts
from shared.errors import NotFound

router = APIRouter()

# 9999-12-31T23:59:59Z, the last second a datetime can hold; beyond it Python cannot convert.
MAX_UNIX_SECONDS = 253_402_300_799


@router.get("/v1/receipts/{receipt_id}")
async def retrieve_receipt(request: Request, owner: Owner, receipt_id: str) -> JSONResponse:
    async with gateway_state(request).res.db.acquire() as conn:
        receipt = await get_receipt(conn, receipt_id, owner.tenant.id)
    if receipt is None:
        raise NotFound(f"No receipt '{receipt_id}'.", param="receipt_id")
    return JSONResponse(receipt_object(receipt))


@router.get("/v1/receipts")
async def list_tenant_receipts(
    request: Request,
    owner: Owner,
    after: str | None = Query(default=None, description="the last id of the previous page"),
    limit: int = Query(default=100, ge=1, le=1000),
    model: str | None = Query(default=None, description="only receipts of this slug"),
    created_after: int | None = Query(default=None, ge=0, le=MAX_UNIX_SECONDS, description="unix seconds, inclusive"),
    created_before: int | None = Query(default=None, ge=0, le=MAX_UNIX_SECONDS,
                                       description="unix seconds, exclusive"),
) -> JSONResponse:
    def ts(v: int | None) -> datetime | None:
        return datetime.fromtimestamp(v, UTC) if v is not None else None

    async with gateway_state(request).res.db.acquire() as conn:
        rows = await list_receipts(conn, owner.tenant.id, after=after, model=model,
                                   created_after=ts(created_after), created_before=ts(created_before),
                                   limit=limit + 1)
    return JSONResponse(cursor_page(rows, limit, receipt_object))

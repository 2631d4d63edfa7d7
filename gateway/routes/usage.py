"""`GET /v1/usage`: the calling tenant's own spend, summed from its receipts, per UTC day or model."""

from __future__ import annotations

from fastapi import APIRouter, Query
from starlette.requests import Request

from gateway.auth import Owner
from gateway.deps import gateway_state
from gateway.objects.usage import usage_object
from gateway.responses import JSONResponse
from shared.db.usage import tenant_usage
from shared.usage import UsageQuery

router = APIRouter()


@router.get("/v1/usage")
async def usage(
    request: Request,
    owner: Owner,
    group_by: str | None = Query(default=None, description="day (default) or model"),
    start: str | None = Query(default=None, alias="from",
                              description="RFC 3339 time or YYYY-MM-DD (UTC), inclusive; default 30 days before 'to'"),
    end: str | None = Query(default=None, alias="to",
                            description="RFC 3339 time, exclusive, or YYYY-MM-DD including that day; default now"),
) -> JSONResponse:
    res = gateway_state(request).res
    query = UsageQuery.parse(group_by, start, end, now=res.clock())
    async with res.db.acquire() as conn:
        groups = await tenant_usage(conn, owner.tenant.id, query)
    return JSONResponse(usage_object(query, groups))

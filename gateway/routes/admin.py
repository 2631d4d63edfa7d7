"""Admin API (separate admin key from settings): tenants and their API keys.

A new key is returned once, in the response that creates it; only its hash is stored.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from starlette.requests import Request

from gateway.auth import require_admin
from gateway.body import read_json
from gateway.deps import gateway_state
from gateway.responses import JSONResponse
from shared.auth.keys import hash_key, new_api_key, shown_prefix
from shared.db.tenants import create_api_key, create_tenant, get_tenant, set_spend_policy
from shared.errors import InvalidRequest, NotFound
from shared.routing.policy import validate_policy

router = APIRouter(prefix="/v1/admin")


@router.post("/tenants")
async def admin_create_tenant(request: Request) -> JSONResponse:
    require_admin(request)
    data = await read_json(request, 64 * 1024)
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidRequest("'name' must be a non-empty string of at most 200 characters.", param="name")
    res = gateway_state(request).res
    key = new_api_key()
    async with res.db.acquire() as conn, conn.transaction():
        tenant = await create_tenant(conn, name.strip())
        key_id = await create_api_key(conn, tenant.id, hash_key(key), shown_prefix(key))
    return JSONResponse(
        {"tenant_id": str(tenant.id), "name": tenant.name, "api_key": key, "key_id": str(key_id)}, status_code=201
    )


def _tenant_uuid(tenant_id: str) -> UUID:
    try:
        return UUID(tenant_id)
    except ValueError as e:
        raise NotFound("No such tenant.", param="tenant_id") from e


@router.get("/tenants/{tenant_id}")
async def admin_get_tenant(request: Request, tenant_id: str) -> JSONResponse:
    require_admin(request)
    async with gateway_state(request).res.db.acquire() as conn:
        tenant = await get_tenant(conn, _tenant_uuid(tenant_id))
    if tenant is None:
        raise NotFound("No such tenant.", param="tenant_id")
    return JSONResponse({"tenant_id": str(tenant.id), "name": tenant.name, "spend_policy": tenant.spend_policy})


@router.put("/tenants/{tenant_id}/spend_policy")
async def admin_set_spend_policy(request: Request, tenant_id: str) -> JSONResponse:
    """Replace the tenant's spend policy; unknown fields, providers or slugs are a 400 naming them."""
    require_admin(request)
    tid = _tenant_uuid(tenant_id)
    res = gateway_state(request).res
    policy = validate_policy(await read_json(request, 256 * 1024), res.catalog.current)
    async with res.db.acquire() as conn:
        if not await set_spend_policy(conn, tid, policy):
            raise NotFound("No such tenant.", param="tenant_id")
    return JSONResponse({"tenant_id": str(tid), "spend_policy": policy})


@router.post("/tenants/{tenant_id}/keys")
async def admin_create_key(request: Request, tenant_id: str) -> JSONResponse:
    require_admin(request)
    tid = _tenant_uuid(tenant_id)
    res = gateway_state(request).res
    key = new_api_key()
    async with res.db.acquire() as conn, conn.transaction():
        if await get_tenant(conn, tid) is None:
            raise NotFound("No such tenant.", param="tenant_id")
        key_id = await create_api_key(conn, tid, hash_key(key), shown_prefix(key))
    return JSONResponse({"tenant_id": str(tid), "api_key": key, "key_id": str(key_id)}, status_code=201)

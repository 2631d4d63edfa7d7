"""Admin API (separate admin key from settings, checked by the router's `ADMIN` dependency):
tenants and their API keys.

A new key is returned once, in the response that creates it; only its hash is stored.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from starlette.requests import Request

from gateway.auth import ADMIN
from gateway.body import read_json
from gateway.deps import gateway_state
from gateway.objects.tenants import admin_tenant_object, new_key_object, new_tenant_object, spend_policy_object
from gateway.responses import JSONResponse
from shared.auth.keys import hash_key, new_api_key, shown_prefix
from shared.db.tenants import create_api_key, create_tenant, get_tenant, set_spend_policy
from shared.errors import InvalidRequest, NotFound
from shared.routing.policy import validate_policy

router = APIRouter(prefix="/v1/admin", dependencies=[ADMIN])


@router.post("/tenants")
async def admin_create_tenant(request: Request) -> JSONResponse:
    data = await read_json(request, 64 * 1024)
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidRequest("'name' must be a non-empty string of at most 200 characters.", param="name")
    res = gateway_state(request).res
    key = new_api_key()
    async with res.db.acquire() as conn, conn.transaction():
        tenant = await create_tenant(conn, name.strip())
        key_id = await create_api_key(conn, tenant.id, hash_key(key), shown_prefix(key))
    return JSONResponse(new_tenant_object(tenant, key, key_id), status_code=201)


def _tenant_uuid(tenant_id: str) -> UUID:
    try:
        return UUID(tenant_id)
    except ValueError as e:
        raise NotFound("No such tenant.", param="tenant_id") from e


@router.get("/tenants/{tenant_id}")
async def admin_get_tenant(request: Request, tenant_id: str) -> JSONResponse:
    async with gateway_state(request).res.db.acquire() as conn:
        tenant = await get_tenant(conn, _tenant_uuid(tenant_id))
    if tenant is None:
        raise NotFound("No such tenant.", param="tenant_id")
    return JSONResponse(admin_tenant_object(tenant))


@router.put("/tenants/{tenant_id}/spend_policy")
async def admin_set_spend_policy(request: Request, tenant_id: str) -> JSONResponse:
    """Replace the tenant's spend policy; unknown fields, providers or slugs are a 400 naming them."""
    tid = _tenant_uuid(tenant_id)
    res = gateway_state(request).res
    policy = validate_policy(await read_json(request, 256 * 1024), res.catalog.current)
    async with res.db.acquire() as conn:
        if not await set_spend_policy(conn, tid, policy):
            raise NotFound("No such tenant.", param="tenant_id")
    return JSONResponse(spend_policy_object(tid, policy))


@router.post("/tenants/{tenant_id}/keys")
async def admin_create_key(request: Request, tenant_id: str) -> JSONResponse:
    tid = _tenant_uuid(tenant_id)
    res = gateway_state(request).res
    key = new_api_key()
    async with res.db.acquire() as conn, conn.transaction():
        if await get_tenant(conn, tid) is None:
            raise NotFound("No such tenant.", param="tenant_id")
        key_id = await create_api_key(conn, tid, hash_key(key), shown_prefix(key))
    return JSONResponse(new_key_object(tid, key, key_id), status_code=201)

"""Admin API (separate admin key from settings, checked by the router's `ADMIN` dependency):
tenants and their API keys.

A new key is returned once, in the response that creates it; only its hash is stored. A tenant's
keys are listed, changed (name, expiry, settings: `shared.auth.key_fields`) and revoked here; every
change also bumps the key version every gateway checks each second (`shared.auth.directory`).
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Query
from starlette.requests import Request

from gateway.auth import ADMIN
from gateway.body import read_json, read_optional_json
from gateway.deps import gateway_state
from gateway.objects.lists import cursor_page
from gateway.objects.tenants import admin_tenant_object, new_tenant_object, spend_policy_object
from gateway.responses import JSONResponse
from shared.auth.directory import bump_key_version
from shared.auth.key_fields import parse_key_fields
from shared.auth.key_view import api_key_object, new_key_object
from shared.auth.keys import hash_key, new_api_key, shown_prefix
from shared.db.tenants import (
    create_api_key,
    create_tenant,
    get_tenant,
    insert_api_key,
    list_api_keys,
    revoke_api_key,
    set_spend_policy,
    update_api_key,
)
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


KEY_BODY_LIMIT = 64 * 1024  # a key's settings: 500 allowed models of 200 characters fit with room


def _key_uuid(key_id: str) -> UUID:
    try:
        return UUID(key_id)
    except ValueError as e:
        raise NotFound("No such API key for this tenant.", param="key_id") from e


@router.post("/tenants/{tenant_id}/keys")
async def admin_create_key(request: Request, tenant_id: str) -> JSONResponse:
    """A new key for the tenant, with an optional body `{"name", "expires_at", "settings"}`."""
    tid = _tenant_uuid(tenant_id)
    res = gateway_state(request).res
    now = res.clock()
    fields = parse_key_fields(await read_optional_json(request, KEY_BODY_LIMIT), res.catalog.current, now)
    key = new_api_key()
    async with res.db.acquire() as conn, conn.transaction():
        if await get_tenant(conn, tid) is None:
            raise NotFound("No such tenant.", param="tenant_id")
        row = await insert_api_key(conn, tid, hash_key(key), shown_prefix(key), name=fields.name,
                                   expires_at=fields.expires_at, settings=fields.settings)
    await bump_key_version(res.redis)
    return JSONResponse(new_key_object(row, key, now), status_code=201)


@router.get("/tenants/{tenant_id}/keys")
async def admin_list_keys(
    request: Request,
    tenant_id: str,
    after: str | None = Query(default=None, description="the last id of the previous page"),
    limit: int = Query(default=100, ge=1, le=100),
) -> JSONResponse:
    """The tenant's keys, newest first: prefix and metadata, never the key or its hash."""
    tid = _tenant_uuid(tenant_id)
    try:
        after_id = UUID(after) if after is not None else None
    except ValueError as e:
        raise InvalidRequest("'after' must be a key id from a previous page.", code="invalid_value",
                             param="after") from e
    res = gateway_state(request).res
    now = res.clock()
    async with res.db.acquire() as conn:
        if await get_tenant(conn, tid) is None:
            raise NotFound("No such tenant.", param="tenant_id")
        rows = await list_api_keys(conn, tid, after_id, limit + 1)
    return JSONResponse(cursor_page(rows, limit, lambda row: api_key_object(row, now)))


@router.patch("/tenants/{tenant_id}/keys/{key_id}")
async def admin_update_key(request: Request, tenant_id: str, key_id: str) -> JSONResponse:
    """Change the fields given (`name`, `expires_at`, `settings`; null clears one), validated as on create."""
    tid, kid = _tenant_uuid(tenant_id), _key_uuid(key_id)
    res = gateway_state(request).res
    now = res.clock()
    fields = parse_key_fields(await read_json(request, KEY_BODY_LIMIT), res.catalog.current, now)
    async with res.db.acquire() as conn:
        row = await update_api_key(conn, tid, kid, **fields.changes())
    if row is None:
        raise NotFound("No such API key for this tenant.", param="key_id")
    await bump_key_version(res.redis)
    return JSONResponse(api_key_object(row, now))


@router.delete("/tenants/{tenant_id}/keys/{key_id}")
async def admin_revoke_key(request: Request, tenant_id: str, key_id: str) -> JSONResponse:
    """Revoke the key (idempotent: a revoked key keeps its first `revoked_at`)."""
    tid, kid = _tenant_uuid(tenant_id), _key_uuid(key_id)
    res = gateway_state(request).res
    async with res.db.acquire() as conn:
        row = await revoke_api_key(conn, tid, kid)
    if row is None:
        raise NotFound("No such API key for this tenant.", param="key_id")
    await bump_key_version(res.redis)
    return JSONResponse(api_key_object(row, res.clock()))

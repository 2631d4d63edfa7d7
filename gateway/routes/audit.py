"""The audit chain's read API, its verification, signed checkpoints, and our public keys.

A tenant reads only its own chain: any other tenant id is a 404, as for a missing one. The id may
also be an agent's (one of the tenant's API keys, `gateway/routes/agents.py`): the chain is the
tenant's, one chain for all its agents, so that is the chain an agent walks and verifies.
The shapes (`gateway.objects.audit`) are what the public `ainfera` SDK (1.1.0) parses, so a
customer can verify our chains with someone else's code.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Query
from starlette.requests import Request

from gateway.auth import Owner
from gateway.deps import gateway_state
from gateway.objects.audit import checkpoint_object, event_page, verification_object
from gateway.objects.tenants import tenant_object
from gateway.responses import JSONResponse
from shared.audit.verify import verify_tenant_chain
from shared.db.audit import chain_head, list_events
from shared.db.tenants import KeyOwner, get_api_key
from shared.errors import NotFound

router = APIRouter()

MAX_PAGE = 500
MAX_SEQ = 2**63 - 1  # seq is a bigint: a larger number cannot even be sent to Postgres


async def _own_tenant(request: Request, owner: KeyOwner, tenant_id: str) -> UUID:
    """The caller's tenant, if `tenant_id` names it or one of its agents (keys); else a 404."""
    if tenant_id == str(owner.tenant.id) or tenant_id == str(owner.key_id):
        return owner.tenant.id
    try:
        kid = UUID(tenant_id)
    except ValueError:
        kid = None
    if kid is not None:
        async with gateway_state(request).res.db.acquire() as conn:
            if await get_api_key(conn, owner.tenant.id, kid) is not None:
                return owner.tenant.id
    raise NotFound(f"No audit chain '{tenant_id[:64]}'.", param="tenant_id")


@router.get("/v1/audit/{tenant_id}")
async def list_audit_events(
    request: Request,
    owner: Owner,
    tenant_id: str,
    since_seq: int = Query(default=0, ge=0, le=MAX_SEQ, description="return events with seq greater than this"),
    limit: int = Query(default=100, ge=1, description=f"at most {MAX_PAGE}; larger values are capped"),
) -> JSONResponse:
    tid = await _own_tenant(request, owner, tenant_id)
    limit = min(limit, MAX_PAGE)
    async with gateway_state(request).res.db.acquire() as conn:
        rows = await list_events(conn, tid, since_seq, limit + 1)
    return JSONResponse(event_page(tenant_id, rows, limit, since_seq))


@router.get("/v1/audit/{tenant_id}/verify")
async def verify_audit_chain(request: Request, owner: Owner, tenant_id: str) -> JSONResponse:
    tid = await _own_tenant(request, owner, tenant_id)
    report = await verify_tenant_chain(gateway_state(request).res.db, tid)
    return JSONResponse(verification_object(tenant_id, report))


@router.get("/v1/audit/{tenant_id}/checkpoint")
async def audit_checkpoint(request: Request, owner: Owner, tenant_id: str) -> JSONResponse:
    """The chain's head, signed: a customer who keeps checkpoints can prove later history was not rewritten."""
    tid = await _own_tenant(request, owner, tenant_id)
    res = gateway_state(request).res
    async with res.db.acquire() as conn:
        seq, event_hash = await chain_head(conn, tid)
    return JSONResponse(res.signer.sign(checkpoint_object(tenant_id, seq, event_hash, res.clock())))


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> JSONResponse:
    return JSONResponse(gateway_state(request).res.signer.jwks(), headers={"cache-control": "public, max-age=300"})


@router.get("/v1/me")
async def whoami(owner: Owner) -> JSONResponse:
    return JSONResponse(tenant_object(owner.tenant))

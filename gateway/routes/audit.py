"""The audit chain's read API, its verification, signed checkpoints, and our public keys.

A tenant reads only its own chain: any other tenant id is a 404, as for a missing one.
Events have the shape the public `ainfera` SDK (1.1.0) parses, `agent_id` included, so a
customer can verify our chains with someone else's code.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Query
from starlette.requests import Request

from gateway.auth import authenticate
from gateway.deps import gateway_state
from gateway.responses import JSONResponse
from shared.audit.verify import verify_tenant_chain
from shared.audit.writer import format_time
from shared.db.audit import EventRow, chain_head, list_events
from shared.errors import NotFound

router = APIRouter()

MAX_PAGE = 500
MAX_SEQ = 2**63 - 1  # seq is a bigint: a larger number cannot even be sent to Postgres


def event_object(tenant_id: str, e: EventRow) -> dict[str, Any]:
    return {
        "id": f"{tenant_id}:{e.seq}",
        "agent_id": tenant_id,
        "tenant_id": tenant_id,
        "seq": e.seq,
        "event_type": e.event_type,
        "payload": orjson.loads(e.payload),
        "previous_hash": e.previous_hash,
        "event_hash": e.event_hash,
        "created_at": format_time(e.created_at),
    }


async def _own_tenant(request: Request, tenant_id: str) -> UUID:
    owner = await authenticate(request)
    if tenant_id != str(owner.tenant.id):
        raise NotFound(f"No audit chain '{tenant_id}'.", param="tenant_id")
    return owner.tenant.id


@router.get("/v1/audit/{tenant_id}")
async def list_audit_events(
    request: Request,
    tenant_id: str,
    since_seq: int = Query(default=0, ge=0, le=MAX_SEQ, description="return events with seq greater than this"),
    limit: int = Query(default=100, ge=1, description=f"at most {MAX_PAGE}; larger values are capped"),
) -> JSONResponse:
    tid = await _own_tenant(request, tenant_id)
    limit = min(limit, MAX_PAGE)
    async with gateway_state(request).res.db.acquire() as conn:
        rows = await list_events(conn, tid, since_seq, limit + 1)
    page = rows[:limit]
    return JSONResponse({
        "object": "list",
        "agent_id": tenant_id,
        "tenant_id": tenant_id,
        "events": [event_object(tenant_id, e) for e in page],
        "has_more": len(rows) > limit,
        "next_since_seq": page[-1].seq if page else since_seq,
    })


@router.get("/v1/audit/{tenant_id}/verify")
async def verify_audit_chain(request: Request, tenant_id: str) -> JSONResponse:
    tid = await _own_tenant(request, tenant_id)
    report = await verify_tenant_chain(gateway_state(request).res.db, tid)
    return JSONResponse({
        "agent_id": tenant_id,
        "tenant_id": tenant_id,
        "event_count": report.event_count,
        "valid": report.valid,
        "failure_seq": report.failure_seq,
        "failure_reason": report.failure_reason,
    })


@router.get("/v1/audit/{tenant_id}/checkpoint")
async def audit_checkpoint(request: Request, tenant_id: str) -> JSONResponse:
    """The chain's head, signed: a customer who keeps checkpoints can prove later history was not rewritten."""
    tid = await _own_tenant(request, tenant_id)
    res = gateway_state(request).res
    async with res.db.acquire() as conn:
        seq, event_hash = await chain_head(conn, tid)
    checkpoint = {
        "object": "audit.checkpoint",
        "tenant_id": tenant_id,
        "seq": seq,
        "event_hash": event_hash,
        "issued_at": format_time(res.clock()),
    }
    return JSONResponse(res.signer.sign(checkpoint))


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> JSONResponse:
    return JSONResponse(gateway_state(request).res.signer.jwks(), headers={"cache-control": "public, max-age=300"})


@router.get("/v1/me")
async def whoami(request: Request) -> JSONResponse:
    owner = await authenticate(request)
    return JSONResponse({"object": "tenant", "tenant_id": str(owner.tenant.id), "name": owner.tenant.name})

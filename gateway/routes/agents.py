"""The agents of Ainfera's own API: `GET /v1/agents/{id}` and its spend policy, where an agent is a
named API key of the caller's tenant (docs/decisions.md); and a 501 naming the feature for each
call of the `ainfera` SDK this gateway does not serve (wallets, ledger, signup, register, agent
cards, Annex IV export), never a bare 404. Errors here have Ainfera's flat shape (`gateway/errors.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from fastapi import APIRouter
from starlette.requests import Request

from gateway.auth import Owner
from gateway.body import read_json
from gateway.deps import gateway_state
from gateway.responses import JSONResponse
from shared.ainfera_api.agents import agent_object, parse_policy, spend_policy_object
from shared.ainfera_api.errors import NotSupported
from shared.auth.directory import bump_key_version
from shared.db.tenants import ApiKeyRow, KeyOwner, get_api_key, set_agent_policy
from shared.db.types import Connection
from shared.errors import NotFound

router = APIRouter()

POLICY_BODY_LIMIT = 4 * 1024


async def tenant_key(conn: Connection, owner: KeyOwner, agent_id: str) -> ApiKeyRow:
    """The caller's tenant's key with this id; a 404 for anything else (another tenant's included)."""
    try:
        kid = UUID(agent_id)
    except ValueError as e:
        raise NotFound(f"No agent '{agent_id[:64]}'.", param="agent_id") from e
    key = await get_api_key(conn, owner.tenant.id, kid)
    if key is None:
        raise NotFound(f"No agent '{agent_id[:64]}'.", param="agent_id")
    return key


@router.get("/v1/agents/{agent_id}")
async def retrieve_agent(request: Request, owner: Owner, agent_id: str) -> JSONResponse:
    res = gateway_state(request).res
    async with res.db.acquire() as conn:
        key = await tenant_key(conn, owner, agent_id)
    return JSONResponse(agent_object(key, res.clock()))


async def _set_policy(request: Request, owner: KeyOwner, agent_id: str, *, replace: bool) -> JSONResponse:
    res = gateway_state(request).res
    change = parse_policy(await read_json(request, POLICY_BODY_LIMIT), replace=replace)
    async with res.db.acquire() as conn, conn.transaction():
        key = await tenant_key(conn, owner, agent_id)
        row = await set_agent_policy(conn, owner.tenant.id, key.id, change.apply(key.settings))
    assert row is not None  # the key was read in this transaction
    await bump_key_version(res.redis)  # every gateway re-reads its keys
    res.tenants.clear()  # this one at once: the next call is held to the new caps
    return JSONResponse({"object": "spend_policy", "agent_id": str(row.id), **spend_policy_object(row.settings)})


@router.post("/v1/agents/{agent_id}/spend-policy")
async def set_spend_policy(request: Request, owner: Owner, agent_id: str) -> JSONResponse:
    """Set the agent's drain-proof caps; a cap not named is cleared."""
    return await _set_policy(request, owner, agent_id, replace=True)


@router.patch("/v1/agents/{agent_id}/spend-policy")
async def change_spend_policy(request: Request, owner: Owner, agent_id: str) -> JSONResponse:
    """Change the caps named (null clears one); the other is kept."""
    return await _set_policy(request, owner, agent_id, replace=False)


@router.get("/v1/agents/{agent_id}/spend-policy")
async def retrieve_spend_policy(request: Request, owner: Owner, agent_id: str) -> JSONResponse:
    async with gateway_state(request).res.db.acquire() as conn:
        key = await tenant_key(conn, owner, agent_id)
    return JSONResponse({"object": "spend_policy", "agent_id": str(key.id), **spend_policy_object(key.settings)})


_KEYS = "agents are the tenant's API keys, made by the operator with POST /v1/admin/tenants/{id}/keys"
UNSUPPORTED: tuple[tuple[str, str, str, str], ...] = (
    ("POST", "/v1/agents/signup", "Agent signup", _KEYS),
    ("POST", "/v1/agents/register", "Agent registration", _KEYS),
    ("POST", "/v1/agents/install-from-local", "Installing agents from manifests", _KEYS),
    ("GET", "/v1/agents", "Listing agents", "the operator lists a tenant's keys with GET /v1/admin/tenants/{id}/keys"),
    ("GET", "/v1/agents/{agent_id}/card", "Agent cards (signed AgentCards)",
     "there is no agent identity card; receipts and checkpoints are signed (/.well-known/jwks.json)"),
    ("GET", "/v1/wallets/{agent_id}", "Wallets", "spend is bounded by budgets and the agent's spend policy, not a "
                                                 "prepaid balance"),
    ("POST", "/v1/wallets/topup", "Wallet top-ups", "there are no wallets; budgets bound spend"),
    ("GET", "/v1/ledger/{agent_id}", "The wallet ledger", "there are no wallets; GET /v1/usage and GET /v1/receipts "
                                                         "show spend"),
    ("GET", "/v1/audit/{agent_id}/annex-iv", "The Annex IV audit export",
     "walk GET /v1/audit/{id} and verify it, or fetch a signed GET /v1/audit/{id}/checkpoint"),
)


def _unsupported_route(feature: str, why: str) -> Callable[[], Awaitable[JSONResponse]]:
    async def unsupported() -> JSONResponse:
        raise NotSupported(feature, why)
    return unsupported


for _method, _path, _feature, _why in UNSUPPORTED:
    router.add_api_route(_path, _unsupported_route(_feature, _why), methods=[_method],
                         summary=f"{_feature}: not supported (501)")

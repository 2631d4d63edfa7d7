"""Bearer authentication for tenants and for the admin API, as FastAPI dependencies.

Every failure gets the same 401 and message, so a caller cannot tell a revoked key
from a mistyped one; only a key past its `expires_at` is told so (checked against the clock on
every request: the owner is cached). Tenant keys are looked up by SHA-256 hash (a token not shaped like our
keys is refused without a lookup, see `shared.auth.directory`); the admin key comes from
settings and is compared in constant time.

The Messages routes (`/v1/messages`) take `owner: KeyHeaderOwner`: Anthropic's `x-api-key: <key>`
header, or the same bearer header, with the same tenant keys.

Routes take `owner: Owner` (or list `TENANT` in their router's dependencies when they need
no owner); admin routers list `ADMIN`. Dependencies run after the app-wide URL check
(`gateway.url_params`) and before the handler, so a route that streams its body still
authenticates before reading a byte of it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from gateway.deps import gateway_state
from gateway.middleware import TENANT_CLASS_KEY
from shared.auth.key_access import check_not_expired
from shared.auth.keys import bearer_token, same_secret
from shared.db.tenants import KeyOwner
from shared.errors import AuthenticationFailed
from shared.metrics.labels import TenantClass

_MESSAGE = "Incorrect API key provided. Send 'Authorization: Bearer <key>' with a valid key."
_KEY_HEADER_MESSAGE = "Incorrect API key provided. Send 'x-api-key: <key>' with a valid key."


async def authenticate(request: Request) -> KeyOwner:
    """The tenant behind the request's bearer key; a 401 for anything else."""
    return await _owner(request, bearer_token(request.headers.get("authorization")), _MESSAGE)


async def authenticate_key_header(request: Request) -> KeyOwner:
    """The tenant behind `x-api-key` (Anthropic's header), else behind the bearer key; a 401 for anything else."""
    token = request.headers.get("x-api-key", "").strip() or bearer_token(request.headers.get("authorization"))
    return await _owner(request, token, _KEY_HEADER_MESSAGE)


async def _owner(request: Request, token: str | None, message: str) -> KeyOwner:
    if token is None:
        raise AuthenticationFailed(message)
    res = gateway_state(request).res
    owner = await res.tenants.owner_of(token)
    if owner is None:
        raise AuthenticationFailed(message)
    if owner.expires_at is not None:
        check_not_expired(owner.expires_at, res.clock())
    request.scope[TENANT_CLASS_KEY] = TenantClass.TENANT
    return owner


async def require_admin(request: Request) -> None:
    """A 401 unless the bearer key is the admin key (and one is configured)."""
    expected = gateway_state(request).res.settings.admin_api_key
    token = bearer_token(request.headers.get("authorization"))
    if expected is None or token is None or not same_secret(token, expected.get_secret_value()):
        raise AuthenticationFailed(_MESSAGE)
    request.scope[TENANT_CLASS_KEY] = TenantClass.ADMIN


Owner = Annotated[KeyOwner, Depends(authenticate)]
KeyHeaderOwner = Annotated[KeyOwner, Depends(authenticate_key_header)]
TENANT = Depends(authenticate)
ADMIN = Depends(require_admin)

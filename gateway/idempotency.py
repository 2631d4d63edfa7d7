"""Idempotency-Key on every POST that creates work, scoped per tenant.

- first request with a key: runs; its answer (status, body, our headers) is stored;
- same key, same request, answered: the stored answer is replayed, with no new work or charge
  (`Idempotent-Replayed: true`);
- same key, different request: 422 `idempotency_key_reused`;
- same key while the first request still runs: 409 `idempotency_request_in_progress`.
Answers of 500 and above are not stored (the key is released) so the caller can retry.
Keys live for 24 hours. A first request that died holding its key releases it after
`idempotency_lock_s`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.deps import GatewayState
from gateway.errors import error_response
from gateway.responses import JSONResponse
from shared.db.idempotency import StoredKey, claim_key, get_key, release_key, set_request_hash, store_response
from shared.errors import AinferaError, Conflict, IdempotencyKeyReused, InvalidRequest

HEADER = "idempotency-key"
PENDING_HASH = "pending"  # while an upload's content has not been hashed yet
_KEPT_HEADERS = ("location", "preference-applied", "x-ainfera-job-id", "x-ainfera-receipt-id", "x-ainfera-cost-usd",
                 "x-ainfera-model")


def request_hash(request: Request, body: bytes | str) -> str:
    h = hashlib.sha256(f"{request.method} {request.url.path}\n".encode())
    h.update(body.encode() if isinstance(body, str) else body)
    return h.hexdigest()


def key_of(request: Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise InvalidRequest("Idempotency-Key must be 1 to 255 printable characters.", param="Idempotency-Key")
    return key


def replay(stored: StoredKey) -> JSONResponse:
    headers = dict(stored.response_headers or {})
    headers["idempotent-replayed"] = "true"
    return JSONResponse(stored.response_body, status_code=stored.response_status or 200, headers=headers)


@dataclass
class KeyClaim:
    """A key this request holds: store the answer with `finish`, or give it up with `release`."""

    st: GatewayState
    tenant_id: UUID
    key: str

    async def finish(self, response: Response, *, final_hash: str | None = None) -> Response:
        async with self.st.res.db.acquire() as conn:
            if response.status_code >= 500:
                await release_key(conn, self.tenant_id, self.key)
                return response
            if final_hash is not None:
                await set_request_hash(conn, self.tenant_id, self.key, final_hash)
            headers = {k: v for k, v in response.headers.items() if k in _KEPT_HEADERS}
            await store_response(conn, self.tenant_id, self.key, response.status_code, headers,
                                 orjson.loads(bytes(response.body)))
        return response

    async def release(self) -> None:
        async with self.st.res.db.acquire() as conn:
            await release_key(conn, self.tenant_id, self.key)


async def claim(st: GatewayState, tenant_id: UUID, key: str, req_hash: str) -> KeyClaim | StoredKey:
    """Take the key, or return what is stored under it (answered, or still in progress)."""
    async with st.res.db.acquire() as conn:
        for _ in range(2):  # a key released between our two statements: try once more
            if await claim_key(conn, tenant_id, key, req_hash, st.res.settings.idempotency_lock_s):
                return KeyClaim(st, tenant_id, key)
            stored = await get_key(conn, tenant_id, key)
            if stored is not None:
                return stored
    raise Conflict("This Idempotency-Key is being released; retry.", code="idempotency_request_in_progress")


def check_stored(stored: StoredKey, req_hash: str) -> Response:
    """The answer to a repeated key: replay, 422 for a different request, 409 while in flight."""
    if stored.request_hash not in (req_hash, PENDING_HASH):
        raise IdempotencyKeyReused("This Idempotency-Key was used with a different request.",
                                   param="Idempotency-Key")
    if stored.response_status is None:
        raise Conflict("A request with this Idempotency-Key is still in progress.",
                       code="idempotency_request_in_progress", param="Idempotency-Key")
    return replay(stored)


async def idempotent(request: Request, st: GatewayState, tenant_id: UUID, body: bytes | str,
                     handler: Callable[[], Awaitable[Response]]) -> Response:
    """Run `handler` at most once per (tenant, Idempotency-Key); see the module docstring."""
    key = key_of(request)
    if key is None:
        return await handler()
    req_hash = request_hash(request, body)
    got = await claim(st, tenant_id, key, req_hash)
    if not isinstance(got, KeyClaim):
        return check_stored(got, req_hash)
    try:
        response = await handler()
    except AinferaError as e:
        response = error_response(e)
    except BaseException:
        await got.release()
        raise
    return await got.finish(response)


def canonical_body(data: Any) -> bytes:
    """Hash input for JSON bodies: the parsed value, so whitespace and key order do not matter."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)

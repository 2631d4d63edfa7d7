"""Idempotency-Key on every POST that creates work, scoped per tenant.

- first request with a key: runs; its answer (status, body, our headers) is stored;
- same key, same request, answered: the stored answer is replayed, with no new work or charge
  (`Idempotent-Replayed: true`);
- same key, different request: 422 `idempotency_key_reused`;
- same key while the first request still runs: 409 `idempotency_request_in_progress`.

A key is bound to the work its request created (a job, a batch) as soon as that work may
start, before it is handed to a queue. From then on the key never lets a second copy run:
an answer of 500 or more (a 504 while the job still runs, say) is not stored but does not
release the key either, and a repeat resolves through the work itself (`resume`): its
finished answer is replayed, a 409 says it still runs, and only work that left no trace at
all (never finished, not queued, not running) frees the key. A key whose request died
before it created anything is released after `idempotency_lock_s`, as before; answers of
500 and above, and 429 (a rate limit), from such requests release it at once so the caller can retry. Keys live for
24 hours.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from uuid import UUID

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.deps import GatewayState
from gateway.errors import error_response
from gateway.responses import JSONResponse
from shared.db.idempotency import (
    StoredKey,
    bind_key,
    claim_key,
    get_key,
    release_key,
    release_lost_key,
    set_request_hash,
    store_response,
    unbind_key,
)
from shared.db.jobs import job_outcome
from shared.db.types import Connection
from shared.errors import AinferaError, Conflict, IdempotencyKeyReused, InvalidRequest
from shared.jobs import DISPATCH, Outcome
from shared.queue.enqueue import job_known

HEADER = "idempotency-key"
PENDING_HASH = "pending"  # while an upload's content has not been hashed yet
_KEPT_HEADERS = ("location", "preference-applied", "x-ainfera-job-id", "x-ainfera-receipt-id", "x-ainfera-cost-usd",
                 "x-ainfera-model")


class WorkState(Enum):
    RUNNING = "running"  # the bound work may still produce an answer
    LOST = "lost"  # the bound work left no trace: nothing ran, nothing was charged


# What a route knows of the work a key was bound to: its final answer, or its state.
Resume = Callable[[str], Awaitable[Response | WorkState]]


def sync_job_resume(st: GatewayState, answer: Callable[[str, Outcome], Response]) -> Resume:
    """The `resume` of a route whose work is one synchronous job: the answer the first request with
    this key would have given (`answer(job id, outcome)`), from the job it created; looked at twice,
    as it may finish between the two looks."""
    async def resume(jid: str) -> Response | WorkState:
        for _ in range(2):
            async with st.res.db.acquire() as conn:
                stored = await job_outcome(conn, jid)
            done = Outcome.from_row(stored) if stored is not None else None
            if done is not None:
                return answer(jid, done)
            if stored is not None or await job_known(st.res.redis, DISPATCH.queue, jid):
                return WorkState.RUNNING
        return WorkState.LOST

    return resume


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


class Binder:
    """What a handler tells the key about the work it creates. Without a key, nothing to tell."""

    async def bind(self, work_id: str, conn: Connection | None = None) -> None:
        """The work may start from now on (call it before handing the work to a queue; pass the
        connection of the transaction that creates the work, so both commit together)."""

    async def unbind(self, work_id: str) -> None:
        """The work was never handed over (its enqueue failed): the key may run again."""


NO_KEY = Binder()


@dataclass
class KeyClaim(Binder):
    """A key this request holds: store the answer with `finish`, or give it up with `release`."""

    st: GatewayState
    tenant_id: UUID
    key: str
    work_id: str | None = field(default=None)

    async def bind(self, work_id: str, conn: Connection | None = None) -> None:
        if conn is not None:
            await bind_key(conn, self.tenant_id, self.key, work_id)
        else:
            async with self.st.res.db.acquire() as own:
                await bind_key(own, self.tenant_id, self.key, work_id)
        self.work_id = work_id

    async def unbind(self, work_id: str) -> None:
        async with self.st.res.db.acquire() as conn:
            await unbind_key(conn, self.tenant_id, self.key, work_id)
        self.work_id = None

    async def finish(self, response: Response, *, final_hash: str | None = None) -> Response:
        async with self.st.res.db.acquire() as conn:
            if response.status_code >= 500 or response.status_code == 429:
                if self.work_id is None:  # nothing was created (a rate limit refused it): the caller may retry
                    await release_key(conn, self.tenant_id, self.key)
                return response  # bound: a repeat resolves through the work
            if final_hash is not None:
                await set_request_hash(conn, self.tenant_id, self.key, final_hash)
            await _store(conn, self.tenant_id, self.key, response)
        return response

    async def release(self) -> None:
        async with self.st.res.db.acquire() as conn:
            await release_key(conn, self.tenant_id, self.key)


async def _store(conn: Connection, tenant_id: UUID, key: str, response: Response) -> None:
    if isinstance(response, StreamingResponse):
        return  # a stream is not stored: a repeat resolves through the bound work, and is replayed from it
    headers = {k: v for k, v in response.headers.items() if k in _KEPT_HEADERS}
    await store_response(conn, tenant_id, key, response.status_code, headers, bytes(response.body))


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


def _in_progress() -> Conflict:
    return Conflict("A request with this Idempotency-Key is still in progress.",
                    code="idempotency_request_in_progress", param="Idempotency-Key")


def check_stored(stored: StoredKey, req_hash: str) -> Response:
    """The answer to a repeated key: replay, 422 for a different request, 409 while in flight."""
    if stored.request_hash not in (req_hash, PENDING_HASH):
        raise IdempotencyKeyReused("This Idempotency-Key was used with a different request.",
                                   param="Idempotency-Key")
    if stored.response_status is None:
        raise _in_progress()
    return replay(stored)


async def _resolve(st: GatewayState, tenant_id: UUID, key: str, stored: StoredKey, req_hash: str,
                   resume: Resume | None) -> Response | None:
    """A repeat of a key with no stored answer: the bound work's answer, a 409, or None when the
    bound work was lost and the key is free again."""
    if stored.request_hash != req_hash or stored.response_status is not None or stored.work_id is None \
            or resume is None:
        return check_stored(stored, req_hash)
    found = await resume(stored.work_id)
    if found is WorkState.RUNNING:
        raise _in_progress()
    async with st.res.db.acquire() as conn:
        if found is WorkState.LOST:
            await release_lost_key(conn, tenant_id, key, stored.work_id)
            return None
        assert isinstance(found, Response)
        await _store(conn, tenant_id, key, found)
    found.headers["idempotent-replayed"] = "true"
    return found


async def idempotent(request: Request, st: GatewayState, tenant_id: UUID, body: bytes | str,
                     handler: Callable[[Binder], Awaitable[Response]], *, resume: Resume | None = None) -> Response:
    """Run `handler` at most once per (tenant, Idempotency-Key); see the module docstring."""
    key = key_of(request)
    if key is None:
        return await handler(NO_KEY)
    req_hash = request_hash(request, body)
    got = await claim(st, tenant_id, key, req_hash)
    if not isinstance(got, KeyClaim):
        resolved = await _resolve(st, tenant_id, key, got, req_hash, resume)
        if resolved is not None:
            return resolved
        got = await claim(st, tenant_id, key, req_hash)  # the lost work's key, free again
        if not isinstance(got, KeyClaim):
            return check_stored(got, req_hash)
    try:
        response = await handler(got)
    except AinferaError as e:
        response = error_response(e, path=request.url.path)
    except BaseException:
        if got.work_id is None:
            await got.release()
        raise
    return await got.finish(response)


def canonical_body(data: Any) -> bytes:
    """Hash input for JSON bodies: the parsed value, so whitespace and key order do not matter."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)

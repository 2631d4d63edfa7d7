"""Idempotency keys: claim, look up, bind to the work they created, store the first answer,
release after a failure of ours that created nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import orjson

from shared.db.queries import q
from shared.db.types import Connection


@dataclass(frozen=True, slots=True)
class StoredKey:
    request_hash: str
    in_progress: bool
    response_status: int | None
    response_headers: dict[str, str] | None
    response_body: Any
    work_id: str | None  # the job or batch this key's request created, once it did


async def claim_key(conn: Connection, tenant_id: UUID, key: str, request_hash: str, lock_s: float) -> bool:
    return await conn.fetchval(q("idempotency", "claim_key"), tenant_id, key, request_hash,
                               timedelta(seconds=lock_s)) is not None


async def get_key(conn: Connection, tenant_id: UUID, key: str) -> StoredKey | None:
    r = await conn.fetchrow(q("idempotency", "get_key"), tenant_id, key)
    if r is None:
        return None
    body = orjson.loads(r["response_body"]) if r["response_body"] is not None else None
    return StoredKey(r["request_hash"], bool(r["in_progress"]), r["response_status"], r["response_headers"], body,
                     r["work_id"])


async def set_request_hash(conn: Connection, tenant_id: UUID, key: str, request_hash: str) -> None:
    await conn.execute(q("idempotency", "set_request_hash"), tenant_id, key, request_hash)


async def store_response(conn: Connection, tenant_id: UUID, key: str, status: int, headers: dict[str, str],
                         body: bytes) -> None:
    """Keep the answer as the JSON text it was sent as (text, not jsonb: lossless, U+0000 included)."""
    await conn.execute(q("idempotency", "store_response"), tenant_id, key, status, headers, body.decode())


async def bind_key(conn: Connection, tenant_id: UUID, key: str, work_id: str) -> None:
    await conn.execute(q("idempotency", "bind_key"), tenant_id, key, work_id)


async def unbind_key(conn: Connection, tenant_id: UUID, key: str, work_id: str) -> None:
    await conn.execute(q("idempotency", "unbind_key"), tenant_id, key, work_id)


async def release_key(conn: Connection, tenant_id: UUID, key: str) -> None:
    await conn.execute(q("idempotency", "release_key"), tenant_id, key)


async def release_lost_key(conn: Connection, tenant_id: UUID, key: str, work_id: str) -> None:
    await conn.execute(q("idempotency", "release_lost_key"), tenant_id, key, work_id)


async def expire_keys(conn: Connection, older_than: timedelta) -> int:
    result: str = await conn.execute(q("idempotency", "expire_keys"), older_than)
    return int(result.split()[-1])

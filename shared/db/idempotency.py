"""Idempotency keys: claim, look up, store the first answer, release after a failure of ours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from shared.db.queries import q


@dataclass(frozen=True, slots=True)
class StoredKey:
    request_hash: str
    in_progress: bool
    response_status: int | None
    response_headers: dict[str, str] | None
    response_body: Any


async def claim_key(conn: Any, tenant_id: UUID, key: str, request_hash: str, lock_s: float) -> bool:
    return await conn.fetchval(q("idempotency", "claim_key"), tenant_id, key, request_hash,
                               timedelta(seconds=lock_s)) is not None


async def get_key(conn: Any, tenant_id: UUID, key: str) -> StoredKey | None:
    r = await conn.fetchrow(q("idempotency", "get_key"), tenant_id, key)
    if r is None:
        return None
    return StoredKey(r["request_hash"], bool(r["in_progress"]), r["response_status"], r["response_headers"],
                     r["response_body"])


async def set_request_hash(conn: Any, tenant_id: UUID, key: str, request_hash: str) -> None:
    await conn.execute(q("idempotency", "set_request_hash"), tenant_id, key, request_hash)


async def store_response(conn: Any, tenant_id: UUID, key: str, status: int, headers: dict[str, str],
                         body: Any) -> None:
    await conn.execute(q("idempotency", "store_response"), tenant_id, key, status, headers, body)


async def release_key(conn: Any, tenant_id: UUID, key: str) -> None:
    await conn.execute(q("idempotency", "release_key"), tenant_id, key)


async def expire_keys(conn: Any, older_than: timedelta) -> int:
    result: str = await conn.execute(q("idempotency", "expire_keys"), older_than)
    return int(result.split()[-1])

"""`ainfera-dispatch keys create|list|revoke`: a tenant's API keys, straight on the database as the
other operator commands are (`shared.cli.database`), validated as the admin API validates them
(`shared.auth.key_fields`). The key itself is printed once, by `create`; every change bumps the
key version on Redis, so every gateway drops the key within a second."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from shared.db.types import Connection
from shared.settings import Settings

LIST_LIMIT = 1000


def _tenant_id(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise SystemExit(f"error: --tenant must be a tenant id (UUID), got {value!r}") from None


@asynccontextmanager
async def _connection(settings: Settings) -> AsyncIterator[Connection]:
    from shared.db.pool import connect_session

    conn = await connect_session(settings)
    try:
        yield conn
    finally:
        await conn.close()


async def _bump(settings: Settings) -> None:
    """Bump the key version every gateway checks each second (on top of Postgres's NOTIFY)."""
    from redis.exceptions import RedisError

    from shared.queue.names import KEYS_VERSION_KEY
    from shared.queue.pool import open_redis

    redis = open_redis(settings.redis_url, cluster=settings.redis_cluster, socket_connect_timeout=2,
                       socket_timeout=2)
    try:
        await redis.incr(KEYS_VERSION_KEY)
    except RedisError as e:
        print(f"warning: could not reach Redis to bump the key version ({type(e).__name__}); gateways still "
              "hear the change from Postgres", file=sys.stderr)
    finally:
        await redis.aclose()


async def create(settings: Settings, tenant: str, *, name: str | None, expires_at: str | None,
                 settings_json: str | None) -> dict[str, Any]:
    from shared.auth.key_fields import parse_key_fields
    from shared.auth.key_view import new_key_object
    from shared.auth.keys import hash_key, new_api_key, shown_prefix
    from shared.db.catalog import load_catalog
    from shared.db.tenants import get_tenant, insert_api_key
    from shared.errors import AinferaError
    from shared.storable import check_storable

    tid = _tenant_id(tenant)
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if expires_at is not None:
        body["expires_at"] = expires_at
    if settings_json is not None:
        try:
            body["settings"] = json.loads(settings_json)
        except (json.JSONDecodeError, RecursionError) as e:
            raise SystemExit(f"error: --settings is not valid JSON: {e}") from None
    now = datetime.now(UTC)
    async with _connection(settings) as conn:
        try:
            check_storable(body)
            fields = parse_key_fields(body, await load_catalog(conn), now)
        except AinferaError as e:
            raise SystemExit(f"error: {e.message}") from None
        key = new_api_key()
        async with conn.transaction():
            if await get_tenant(conn, tid) is None:
                raise SystemExit(f"error: no tenant {tenant}")
            row = await insert_api_key(conn, tid, hash_key(key), shown_prefix(key), name=fields.name,
                                       expires_at=fields.expires_at, settings=fields.settings)
    await _bump(settings)
    return new_key_object(row, key, now)


async def list_keys(settings: Settings, tenant: str) -> dict[str, Any]:
    from shared.auth.key_view import api_key_object
    from shared.db.tenants import get_tenant, list_api_keys

    tid = _tenant_id(tenant)
    async with _connection(settings) as conn:
        if await get_tenant(conn, tid) is None:
            raise SystemExit(f"error: no tenant {tenant}")
        rows = await list_api_keys(conn, tid, None, LIST_LIMIT + 1)
    now = datetime.now(UTC)
    return {"object": "list", "data": [api_key_object(r, now) for r in rows[:LIST_LIMIT]],
            "has_more": len(rows) > LIST_LIMIT}


async def revoke(settings: Settings, tenant: str, key_id: str) -> dict[str, Any]:
    from shared.auth.key_view import api_key_object
    from shared.db.tenants import revoke_api_key

    tid = _tenant_id(tenant)
    try:
        kid = UUID(key_id)
    except ValueError:
        raise SystemExit(f"error: KEY_ID must be a key id (UUID, the `id` of `keys list`), got {key_id!r}") from None
    async with _connection(settings) as conn:
        row = await revoke_api_key(conn, tid, kid)
    if row is None:
        raise SystemExit(f"error: no API key {key_id} for tenant {tenant}")
    await _bump(settings)
    return api_key_object(row, datetime.now(UTC))

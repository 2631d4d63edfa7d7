"""Opening asyncpg pools with the codecs the project relies on (jsonb <-> Python via orjson)."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from shared.db.types import Connection, Pool


async def _init_connection(conn: Any) -> None:
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: b"\x01" + orjson.dumps(v),
        decoder=lambda b: orjson.loads(b[1:]),
        schema="pg_catalog",
        format="binary",
    )
    await conn.set_type_codec(
        "json", encoder=orjson.dumps, decoder=orjson.loads, schema="pg_catalog", format="binary"
    )


async def _keep_session(_conn: Any) -> None:
    """Release hook: no reset query. asyncpg's default sends `RESET ALL; UNLISTEN *; ...` on every
    release, a round trip per acquire. Pooled connections here never carry session state (no
    session SET, no LISTEN, only transaction-scoped advisory locks); asyncpg still rolls back a
    transaction left open."""


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> Pool:
    """A pool whose connections encode and decode json/jsonb with orjson."""
    pool: Pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=60, reset=_keep_session
    )
    return pool


async def connect(dsn: str) -> Connection:
    """A single connection with the same codecs (CLI commands, listeners)."""
    conn: Connection = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn

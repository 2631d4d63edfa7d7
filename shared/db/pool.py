"""Opening asyncpg pools with the codecs the project relies on (jsonb <-> Python via orjson)."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from shared.db.types import Connection, Pool
from shared.settings import Settings


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


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20, pooler: str = "none") -> Pool:
    """A pool whose connections encode and decode json/jsonb with orjson.

    Behind PgBouncer in transaction mode (`pooler="pgbouncer"`) a client's statements may run on
    a different server connection each transaction, so a statement prepared by name on one would
    be missing on the next: asyncpg's statement cache is turned off, and every query goes as an
    unnamed statement, parsed and run within one transaction's server connection. PgBouncer 1.21+
    can track named statements itself (`max_prepared_statements`); the distribution's 1.18 cannot.
    Nothing here keeps session state (see `_keep_session`), which transaction mode would lose."""
    pool: Pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=60, reset=_keep_session,
        statement_cache_size=0 if pooler == "pgbouncer" else 100,
    )
    return pool


async def open_pool(settings: Settings, *, min_size: int = 2, max_size: int = 20) -> Pool:
    """The process's pool, through the pooler the settings name."""
    return await create_pool(settings.database_url, min_size=min_size, max_size=max_size,
                             pooler=settings.database_pooler)


async def connect(dsn: str, *, pooler: str = "none") -> Connection:
    """A single connection with the same codecs (CLI commands, listeners)."""
    conn: Connection = await asyncpg.connect(dsn, statement_cache_size=0 if pooler == "pgbouncer" else 100)
    await _init_connection(conn)
    return conn


async def connect_session(settings: Settings) -> Connection:
    """A connection of its own to Postgres itself when `database_direct_url` is set (else through
    the pooler, prepared statements off), for commands and sessions."""
    return await connect(settings.session_database_url,
                         pooler="none" if settings.database_direct_url else settings.database_pooler)

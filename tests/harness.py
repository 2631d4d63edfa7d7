"""Real parts for tests: a migrated template database cloned per test, a flushed Redis db,
the worker and the gateway in the test's event loop.

Nothing here is mocked; only the upstream providers are simulated.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
from pydantic import SecretStr

from shared.auth.keys import hash_key, new_api_key, shown_prefix
from shared.catalog.seed import seed_catalog
from shared.db.migrate import drop_database as drop_dsn
from shared.db.migrate import ensure_database, migrate
from shared.db.pool import connect
from shared.db.tenants import create_api_key, create_tenant
from shared.settings import Settings

PG_ADMIN_DSN = os.environ.get("AINFERA_TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("AINFERA_TEST_REDIS", "redis://127.0.0.1:6379")
ADMIN_KEY = "admin-test-key-0123456789"


def _test_signing_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


# One Ed25519 key per test session signs receipts and checkpoints.
SIGNING_KEY_PEM = _test_signing_key()


def dsn_for(dbname: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{dbname}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def create_template(name: str) -> None:
    """A database with every migration applied and the catalog seeded, used as a clone source."""
    await drop_database(name)
    await ensure_database(dsn_for(name))
    await migrate(dsn_for(name))
    conn = await connect(dsn_for(name))
    try:
        await seed_catalog(conn)
    finally:
        await conn.close()


async def clone_database(template: str) -> str:
    name = f"ainfera_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    finally:
        await admin.close()
    return name


async def drop_database(name: str) -> None:
    await drop_dsn(dsn_for(name))


def make_settings(database_url: str, redis_db: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": f"{REDIS_BASE}/{redis_db}",
        "admin_api_key": SecretStr(ADMIN_KEY),
        "signing_key": SecretStr(SIGNING_KEY_PEM),
        "provider_keys": {},
        "log_format": "json",
        "log_level": "WARNING",
        "upstream_backoff_base_s": 0.01,
        "waiter_recheck_s": 1.0,
        "sync_wait_timeout_s": 30.0,
        "worker_poll_fallback_s": 0.5,
        "worker_job_completion_wait_s": 5,
    }
    values.update(overrides)
    return Settings(**values)


async def new_tenant(settings: Settings, name: str = "acme", policy: dict[str, Any] | None = None) -> tuple[str, str]:
    """(tenant id, API key) for a fresh tenant."""
    conn = await connect(settings.session_database_url)
    try:
        key = new_api_key()
        tenant = await create_tenant(conn, name, policy)
        await create_api_key(conn, tenant.id, hash_key(key), shown_prefix(key))
    finally:
        await conn.close()
    return str(tenant.id), key


@contextlib.asynccontextmanager
async def running_worker(settings: Settings, queues: Any = None) -> AsyncIterator[Any]:
    """The workers (interactive, batch and control queues by default) inside this event loop."""
    from shared.queue.names import QueueName
    from worker.main import running_workers

    default = (QueueName.INTERACTIVE, QueueName.BATCH, QueueName.CONTROL)
    async with running_workers(settings, queues or default) as running:
        yield running


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app with its lifespan, reached through an in-process ASGI transport."""
    from gateway.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test", timeout=60) as client:
            yield client


async def fetch_rows(settings: Settings, query: str, *args: Any) -> list[asyncpg.Record]:
    """Rows of one query on the test's database, on a connection of its own."""
    conn = await asyncpg.connect(settings.session_database_url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(query, *args)
        return rows
    finally:
        await conn.close()


async def seeded_catalog(settings: Settings) -> Any:
    """The catalog as the test's database holds it (seeded, plus any change the test made)."""
    from shared.db.catalog import load_catalog

    conn = await connect(settings.session_database_url)
    try:
        return await load_catalog(conn)
    finally:
        await conn.close()

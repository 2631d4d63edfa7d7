"""The key directory under unauthenticated load: bad keys cost a bounded cache, never a valid key's
entry, and a key created after its token was refused works once the change notice arrives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest

from shared.auth.directory import TenantDirectory
from shared.auth.keys import hash_key, new_api_key, shown_prefix
from shared.db.pool import connect, create_pool
from shared.db.tenants import create_api_key
from shared.settings import Settings
from tests.harness import new_tenant, running_gateway

pytestmark = pytest.mark.integration

TTL_S = 30.0


class CountingPool:
    """The real pool, counting the connections taken from it: one per Postgres lookup."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self.acquired = 0

    def acquire(self) -> Any:
        self.acquired += 1
        return self._pool.acquire()


class HeldPool:
    """The real pool, but a lookup stops after its query until `release` is set (to order a race)."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self.queried = asyncio.Event()
        self.release = asyncio.Event()

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        async with self._pool.acquire() as conn:
            yield conn
        self.queried.set()
        await self.release.wait()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Any]:
    pool = await create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


async def add_key(database_url: str, tenant_id: str, key: str) -> None:
    conn = await connect(database_url)
    try:
        await create_api_key(conn, UUID(tenant_id), hash_key(key), shown_prefix(key))
    finally:
        await conn.close()


async def test_distinct_bad_keys_do_not_evict_a_valid_key(db, settings: Settings):
    tenant_id, valid = await new_tenant(settings)
    pool = CountingPool(db)
    directory = TenantDirectory(pool, ttl_s=TTL_S, max_unknown=16)
    owner = await directory.owner_of(valid)
    assert owner is not None and str(owner.tenant.id) == tenant_id
    bad = [new_api_key() for _ in range(100)]
    for token in bad:
        assert await directory.owner_of(token) is None
    assert pool.acquired == 1 + len(bad)
    assert await directory.owner_of(valid) == owner
    assert pool.acquired == 1 + len(bad)  # still cached: the bad keys went to their own, bounded cache
    assert await directory.owner_of(bad[-1]) is None
    assert pool.acquired == 1 + len(bad)  # the newest bad keys are remembered ...
    assert await directory.owner_of(bad[0]) is None
    assert pool.acquired == 2 + len(bad)  # ... the oldest were pushed out of the bound


async def test_a_malformed_key_never_reaches_postgres_and_an_unknown_one_once_per_ttl(db):
    pool, clock = CountingPool(db), FakeClock()
    directory = TenantDirectory(pool, ttl_s=TTL_S, clock=clock)
    for token in ("sk-ainf-wrong", "nope", "sk-" + "a" * 43, new_api_key() + "x", "x" * 5000, new_api_key()[:-1]):
        assert await directory.owner_of(token) is None
    assert pool.acquired == 0
    unknown = new_api_key()
    for _ in range(5):
        assert await directory.owner_of(unknown) is None
    assert pool.acquired == 1
    clock.now += TTL_S + 1
    assert await directory.owner_of(unknown) is None
    assert pool.acquired == 2


async def test_a_lookup_overtaken_by_a_change_notice_is_not_remembered(db, settings: Settings):
    tenant_id, _ = await new_tenant(settings)
    key = new_api_key()
    pool = HeldPool(db)
    directory = TenantDirectory(pool, ttl_s=TTL_S)
    lookup = asyncio.create_task(directory.owner_of(key))
    await pool.queried.wait()  # Postgres answered "no such key" ...
    await add_key(settings.database_url, tenant_id, key)
    await directory.on_notice("ainfera_tenants")  # ... then the key was created and the notice arrived
    pool.release.set()
    assert await lookup is None
    owner = await directory.owner_of(key)
    assert owner is not None and str(owner.tenant.id) == tenant_id


async def test_a_key_created_after_its_token_failed_works_once_the_notice_arrives(settings: Settings):
    tenant_id, _ = await new_tenant(settings)
    key = new_api_key()
    auth = {"Authorization": f"Bearer {key}"}
    async with running_gateway(settings) as client:
        for _ in range(2):
            refused = await client.get("/v1/models", headers=auth)
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
        await add_key(settings.database_url, tenant_id, key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5  # the notice takes milliseconds; the TTL would take 30 s
        while (r := await client.get("/v1/models", headers=auth)).status_code == 401 and loop.time() < deadline:
            await asyncio.sleep(0.02)
        assert r.status_code == 200

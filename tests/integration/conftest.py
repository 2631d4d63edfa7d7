"""Integration fixtures: real Postgres (a migrated, seeded template cloned per test), real Redis
(db 9, flushed per test), and the simulated provider as a real HTTP server."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis

from shared.queue.pool import ClusterRedis
from shared.settings import Settings
from tests.harness import (
    REDIS_BASE,
    clone_database,
    create_template,
    drop_database,
    dsn_for,
    make_settings,
)
from tests.integration.queue_jobs import cluster_url, fresh_pool
from tests.integration.simulator_server import running_simulator
from tests.pgbouncer import running_pgbouncer, through
from tests.redis_cluster import running_redis_cluster

REDIS_DB = 9


@pytest.fixture(scope="session")
async def pg_template() -> AsyncIterator[str]:
    name = f"ainfera_tmpl_{uuid.uuid4().hex[:10]}"
    await create_template(name)
    yield name
    await drop_database(name)


@pytest.fixture
async def database_url(pg_template: str) -> AsyncIterator[str]:
    name = await clone_database(pg_template)
    yield dsn_for(name)
    await drop_database(name)


# The suite's Redis Cluster leg (`make test-redis-cluster`): three masters, each with a replica,
# started here; the queue tests and the whole system (settings) use them instead of one Redis.
REDIS_CLUSTER = os.environ.get("AINFERA_TEST_REDIS_CLUSTER") == "1"


@pytest.fixture(scope="session", autouse=True)
def redis_cluster_leg() -> Iterator[None]:
    if not REDIS_CLUSTER:
        yield
        return
    with running_redis_cluster(replicas=1) as ports:
        os.environ["AINFERA_TEST_REDIS_CLUSTER_URL"] = f"redis://127.0.0.1:{ports[0]}"
        try:
            yield
        finally:
            del os.environ["AINFERA_TEST_REDIS_CLUSTER_URL"]


@pytest.fixture
async def redis_flushed() -> AsyncIterator[Redis]:
    if cluster_url() is not None:
        cluster = await fresh_pool()
        yield cluster
        await cluster.flushall(target_nodes=ClusterRedis.PRIMARIES)
        await cluster.aclose()
        return
    r = Redis.from_url(f"{REDIS_BASE}/{REDIS_DB}")
    await r.flushdb()
    yield r
    await r.flushdb()
    await r.aclose()


@pytest.fixture(scope="session")
async def sim_url() -> AsyncIterator[str]:
    with running_simulator(latency_ms=0) as url:
        yield url


@pytest.fixture
async def sim(sim_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the simulator's control API; faults and counters are reset around each test."""
    async with httpx.AsyncClient(base_url=sim_url) as client:
        await client.delete("/_sim/faults")
        await client.delete("/_sim/stats")
        yield client
        await client.delete("/_sim/faults")


# The suite's PgBouncer leg (`make test-pgbouncer`): the gateway's and workers' pools connect
# through PgBouncer in transaction mode; sessions (LISTEN, the tests' own reads) go direct.
PGBOUNCER = os.environ.get("AINFERA_TEST_PGBOUNCER") == "1"


@pytest.fixture(scope="session")
def pgbouncer_port() -> Iterator[int | None]:
    if not PGBOUNCER:
        yield None
        return
    with running_pgbouncer(dsn_for("postgres")) as port:
        yield port


@pytest.fixture
def settings(database_url: str, redis_flushed: Redis, sim_url: str, pgbouncer_port: int | None) -> Settings:
    if pgbouncer_port is not None:
        return make_settings(through(database_url, pgbouncer_port), REDIS_DB, upstream_override=sim_url,
                             database_direct_url=database_url, database_pooler="pgbouncer")
    if (url := cluster_url()) is not None:
        return make_settings(database_url, REDIS_DB, upstream_override=sim_url, redis_url=url, redis_cluster=True)
    return make_settings(database_url, REDIS_DB, upstream_override=sim_url)


@pytest.fixture
async def pool() -> AsyncIterator[ArqRedis]:
    """The queue tests' Redis (db 11), flushed, with arq's JSON helpers."""
    pool = await fresh_pool()
    yield pool
    await pool.aclose()

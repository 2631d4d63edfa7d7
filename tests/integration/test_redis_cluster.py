"""The Lua scripts of the rate limiter and of the learned statistics on a real Redis Cluster
(three masters, started by the harness): every key a script touches is declared, and the keys one
script uses together share a hash tag (the tenant for rate limits; `{stats}` for statistics), so
each runs in one slot. The queue is not cluster-ready yet (docs/scaling.md)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio.cluster import RedisCluster

from shared.rate_limits import Lane, admit, limits_for, take_batch
from shared.routing.learned import RATIO_HASH, StatsWindow, ratios_key, record_sample
from shared.routing.limits import RateLimits
from tests.redis_cluster import running_redis_cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster_ports() -> Iterator[list[int]]:
    with running_redis_cluster() as ports:
        yield ports


@pytest.fixture
async def cluster(cluster_ports: list[int]) -> AsyncIterator[RedisCluster]:
    client = RedisCluster(host="127.0.0.1", port=cluster_ports[0])
    await client.initialize()
    try:
        yield client
    finally:
        await client.aclose()


async def test_a_calls_tenant_and_key_limits_are_checked_in_one_script_on_a_cluster(cluster):
    tenant, key = uuid.uuid4(), uuid.uuid4()
    limits = limits_for(tenant, RateLimits(requests_per_minute=5, tokens_per_minute=10_000), key,
                        RateLimits(requests_per_minute=2, tokens_per_minute=10_000))
    assert len(limits) == 4
    slots = {await cluster.cluster_keyslot(lim.redis_key) for lim in limits}
    assert len(slots) == 1  # one hash tag: the tenant
    first = await admit(cluster, limits, 100)
    second = await admit(cluster, limits, 100)
    third = await admit(cluster, limits, 100)
    assert first.admitted and second.admitted and not third.admitted
    assert third.refused is not None and third.refused.owner_id == key  # the key's 2 a minute


async def test_batch_lines_take_from_their_own_limits_on_a_cluster(cluster):
    tenant = uuid.uuid4()
    limits = limits_for(tenant, RateLimits(batch_requests_per_minute=3), None, RateLimits(), Lane.BATCH)
    assert await take_batch(cluster, limits, [10, 10, 10, 10, 10]) == 3


async def test_learned_statistics_record_and_publish_on_a_cluster(cluster):
    window = StatsWindow(size=50, tenant_share=10, min_samples=21)
    slug = f"model-{uuid.uuid4().hex[:8]}@provider"
    assert len({await cluster.cluster_keyslot(k) for k in (ratios_key(slug), RATIO_HASH)}) == 1
    for i in range(30):
        await record_sample(cluster, window, slug, input_tokens=100, output_tokens=50, latency_ms=200,
                            tenant=f"t{i % 3}")
    assert await cluster.llen(ratios_key(slug)) == 30
    assert float(await cluster.hget(RATIO_HASH, slug)) == 0.5

"""The Lua scripts of the rate limiter and of the learned statistics on a real Redis Cluster
(three masters, started by the harness): every key a script touches is declared, and the keys one
script uses together share a hash tag (the tenant for rate limits; `{stats}` for statistics), so
each runs in one slot; and the queue while the master holding a queue fails over (docs/scaling.md).
The queue, budget and rate-limit suites run whole on a cluster in `make test-redis-cluster`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from arq.constants import job_key_prefix
from arq.worker import func
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import ResponseError

from shared.queue.enqueue import enqueue
from shared.queue.names import QueueName, arq_id, running_key
from shared.queue.pool import ClusterRedis, queue_redis
from shared.queue.worker import WakingWorker
from shared.rate_limits import Lane, admit, limits_for, take_batch
from shared.routing.learned import RATIO_HASH, StatsWindow, ratios_key, record_sample
from shared.routing.limits import RateLimits
from tests.integration.queue_jobs import Probe, mark_started, running, wait_until
from tests.redis_cluster import fail_over, kill_node, primary_and_replica, running_redis_cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster_ports() -> Iterator[list[int]]:
    with running_redis_cluster() as ports:
        yield ports


@pytest.fixture
async def cluster(cluster_ports: list[int]) -> AsyncIterator[RedisCluster]:
    client = ClusterRedis(host="127.0.0.1", port=cluster_ports[0])
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


# ---- the queue while a master fails over ---------------------------------------------------------


@pytest.fixture
def failover_ports() -> Iterator[list[int]]:
    """A cluster of its own (three masters, a replica each): each of these tests breaks one."""
    with running_redis_cluster(replicas=1) as ports:
        yield ports


async def _one_slow_job_across_a_failover(ports: list[int], fail: Callable[[int, int | None], None]) -> None:
    """Run one job that is mid-flight when `fail(master, replica)` takes the queue's master away;
    then check it ran once, finished once, and that the queue still takes and runs new work."""
    queue = QueueName.INTERACTIVE
    cluster = ClusterRedis(host="127.0.0.1", port=ports[0])
    await cluster.initialize()
    master, replica = primary_and_replica(ports, await cluster.cluster_keyslot(str(queue)))
    assert replica is not None
    probe = Probe()
    started = asyncio.Event()

    async def slow(ctx: dict[str, Any]) -> None:
        probe.tries.append(ctx["job_try"])
        started.set()
        await asyncio.sleep(1.0)

    worker = WakingWorker([func(slow, name="slow"), mark_started], queue_name=queue, handle_signals=False,
                          redis_pool=cluster.new_slot_client(queue), fallback_poll_s=0.5, ctx={"probe": probe},
                          keep_result=0)
    try:
        async with running(worker):
            assert await enqueue(cluster, queue, "slow", job_id="across", kwargs={})
            await queue_redis(cluster, queue).execute_command("WAIT", 1, 2000)  # the replica has the job
            async with asyncio.timeout(10):
                await started.wait()
            fail(master, replica)
            # The job finishes on the old master's replica, now the master: its writes got MOVED or
            # a refused connection, and were retried there.
            await wait_until(lambda: _gone(cluster, queue, "across"), within_s=30)
            assert await enqueue(cluster, queue, "mark_started", job_id="after", kwargs={})
            async with asyncio.timeout(15):
                await probe.started.wait()
        assert probe.tries == [1]  # ran once: the failover did not hand it to anyone else
        assert worker.jobs_complete == 2 and worker.jobs_failed == 0 and worker.jobs_retried == 0
        assert await queue_redis(cluster, queue).zcard(running_key(queue)) == 0
        assert primary_and_replica(ports, await cluster.cluster_keyslot(str(queue)))[0] == replica
    finally:
        await cluster.aclose()


async def _gone(cluster: ClusterRedis, queue: str, job_id: str) -> bool:
    # Through the queue's pinned client, which follows the failover (redis-py's cluster client
    # raises while the dead master is still in its slot table).
    return not await queue_redis(cluster, queue).exists(job_key_prefix + arq_id(queue, job_id))


async def test_a_job_in_flight_when_its_queue_s_master_hands_over_finishes_once(failover_ports):
    await _one_slow_job_across_a_failover(failover_ports, lambda master, replica: fail_over(replica))


async def test_a_job_in_flight_when_its_queue_s_master_dies_finishes_once_on_the_new_master(failover_ports):
    await _one_slow_job_across_a_failover(failover_ports, lambda master, replica: kill_node(master))


async def test_a_key_of_another_slot_on_a_queue_s_client_fails_at_once_rather_than_waiting(cluster_ports):
    cluster = ClusterRedis(host="127.0.0.1", port=cluster_ports[0])
    try:
        node = queue_redis(cluster, QueueName.BATCH)
        assert queue_redis(cluster, running_key(QueueName.BATCH)) is node  # one client per hash tag
        assert await node.set(running_key(QueueName.BATCH), b"x")  # the queue's own slot: served
        other = next(f"k{i}" for i in range(100) if key_slot(f"k{i}".encode()) != key_slot(QueueName.BATCH.encode()))
        async with asyncio.timeout(2):  # not the 30 s a failover may take
            with pytest.raises(ResponseError, match="was sent to the client of slot"):
                await node.get(other)
    finally:
        await cluster.aclose()

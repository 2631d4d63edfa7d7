"""WakingWorker in this process: wake-ups, deferred work, the one-round-trip claim, and arq semantics kept."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from arq import cron
from arq.connections import ArqRedis
from arq.jobs import Job
from arq.worker import JobExecutionFailed, func

from shared.queue.claim import claim_jobs
from shared.queue.enqueue import enqueue, enqueue_many
from shared.queue.names import QueueName, arq_id, health_key, running_key
from shared.queue.pool import database_of, queue_redis
from shared.queue.serializer import deserialize
from tests.integration.queue_jobs import (
    ON_CLUSTER_LEG,
    RUNS,
    Probe,
    count_run,
    flaky,
    hold,
    mark_started,
    running,
    tick,
    too_slow,
    wait_until,
    waking_worker,
)

pytestmark = pytest.mark.integration

QUEUE = QueueName.INTERACTIVE


def _queued(pool: ArqRedis, job_id: str) -> Job:
    """arq's view of one of our jobs on QUEUE (through the client that reaches the queue's slot)."""
    return Job(arq_id(QUEUE, job_id), queue_redis(pool, QUEUE), _queue_name=QUEUE, _deserializer=deserialize)


async def _health_key_written(pool: ArqRedis, queue: str = QUEUE) -> bool:
    # Written by the first heart beat, which comes after the wake-up subscription.
    return bool(await pool.exists(health_key(queue)))


async def test_an_idle_worker_picks_up_a_new_job_at_once(pool: ArqRedis) -> None:
    probe = Probe()
    worker = waking_worker([mark_started], fallback_poll_s=5, ctx={"probe": probe})
    async with running(worker):
        await wait_until(lambda: _health_key_written(pool))
        await asyncio.sleep(0.2)  # let it go idle: nothing to synchronise with, just time passing
        loop = asyncio.get_running_loop()
        enqueued_at = loop.time()
        await enqueue(pool, QUEUE, "mark_started", job_id="wake-1", kwargs={})
        async with asyncio.timeout(5):
            await probe.started.wait()
    latency = probe.start_times["wake-1"] - enqueued_at
    print(f"idle worker, enqueue to job start: {latency * 1000:.1f} ms (fallback poll 5 s)")
    assert latency < 1.0


async def test_a_deferred_job_runs_when_due_without_waiting_for_the_fallback(pool: ArqRedis) -> None:
    probe = Probe()
    worker = waking_worker([mark_started], fallback_poll_s=5, ctx={"probe": probe})
    async with running(worker):
        await wait_until(lambda: _health_key_written(pool))
        enqueued_at = asyncio.get_running_loop().time()
        await enqueue(pool, QUEUE, "mark_started", job_id="later", kwargs={}, defer_s=0.3)
        async with asyncio.timeout(5):
            await probe.started.wait()
    waited = probe.start_times["later"] - enqueued_at
    print(f"deferred 0.3 s, started after {waited * 1000:.0f} ms")
    assert 0.29 <= waited < 2.0


@pytest.mark.skipif(ON_CLUSTER_LEG, reason="arq's own enqueue speaks to one Redis only")
async def test_a_job_enqueued_without_a_wake_up_runs_on_the_fallback_poll(pool: ArqRedis) -> None:
    probe = Probe()
    worker = waking_worker([mark_started], fallback_poll_s=0.3, ctx={"probe": probe})
    async with running(worker):
        await wait_until(lambda: _health_key_written(pool))
        await pool.enqueue_job("mark_started", _job_id="stock-enqueue", _queue_name=QUEUE)  # plain arq
        async with asyncio.timeout(5):
            await probe.started.wait()
    assert "stock-enqueue" in probe.start_times


async def test_a_lost_wake_up_connection_is_restored(pool: ArqRedis) -> None:
    probe = Probe()
    worker = waking_worker([mark_started], fallback_poll_s=5, ctx={"probe": probe})
    async with running(worker):
        await wait_until(lambda: _health_key_written(pool))
        killed = await _kill_clients(pool, "ainfera-wake:")
        assert killed == 1
        await wait_until(lambda: _wake_reconnected(worker))
        enqueued_at = asyncio.get_running_loop().time()
        await enqueue(pool, QUEUE, "mark_started", job_id="after-kill", kwargs={})
        async with asyncio.timeout(5):
            await probe.started.wait()
    assert probe.start_times["after-kill"] - enqueued_at < 1.0


async def _wake_reconnected(worker: object) -> bool:
    return getattr(worker, "wake_reconnects", 0) >= 1


async def _kill_clients(pool: ArqRedis, name_prefix: str) -> int:
    killed = 0
    node = queue_redis(pool, QUEUE)  # on a cluster: the master the worker's wake-ups come from
    for client in await node.client_list():
        if client["name"].startswith(name_prefix) and client["db"] == str(database_of(node)):
            await node.client_kill_filter(_id=client["id"])
            killed += 1
    return killed


async def test_the_claim_skips_running_jobs_and_reports_the_next_due_one(pool: ArqRedis) -> None:
    await enqueue_many(pool, QUEUE, "noop", [(f"c{i}", {}) for i in range(5)])
    await enqueue(pool, QUEUE, "noop", job_id="deferred", kwargs={}, defer_s=60)
    now_ms = int(time.time() * 1000) + 5
    running_set = running_key(QUEUE)
    # c0 is held by another worker's claim; c2's claim lapsed (its worker died): it is taken again.
    await pool.zadd(running_set, {arq_id(QUEUE, "c0"): now_ms + 60_000, arq_id(QUEUE, "c2"): now_ms - 1})

    claim = await claim_jobs(pool, QUEUE, limit=10, in_progress_ms=7_000, now_ms=now_ms, scan_limit=100)
    assert [job_id for job_id, _ in claim.jobs] == [arq_id(QUEUE, c) for c in ("c1", "c2", "c3", "c4")]
    assert not claim.maybe_more
    assert claim.next_due_ms == await pool.zscore(QUEUE, arq_id(QUEUE, "deferred"))
    assert await pool.zscore(running_set, arq_id(QUEUE, "c3")) == now_ms + 7_000
    assert await pool.zscore(running_set, arq_id(QUEUE, "c0")) == now_ms + 60_000

    again = await claim_jobs(pool, QUEUE, limit=1, in_progress_ms=7_000, now_ms=now_ms, scan_limit=100)
    assert again.jobs == ()


async def test_two_workers_run_each_of_two_thousand_jobs_exactly_once(pool: ArqRedis) -> None:
    await enqueue_many(pool, QUEUE, "count_run", [(f"n{i}", {}) for i in range(2000)])
    workers = [waking_worker([count_run], burst=True, max_jobs=20, keep_result=0) for _ in range(2)]
    started = time.perf_counter()
    await asyncio.gather(*(worker.async_run() for worker in workers))
    elapsed = time.perf_counter() - started
    for worker in workers:
        await worker.close()
    print(f"two workers drained 2,000 jobs in {elapsed:.2f} s ({2000 / elapsed:,.0f} jobs/s)")

    runs = await pool.hgetall(RUNS)
    assert len(runs) == 2000
    assert set(runs.values()) == {b"1"}
    assert sum(worker.jobs_complete for worker in workers) == 2000
    assert await pool.zcard(QUEUE) == 0


async def test_four_workers_fill_all_eighty_slots(pool: ArqRedis) -> None:
    probe = Probe()
    await enqueue_many(pool, QUEUE, "hold", [(f"s{i}", {"seconds": 0.5}) for i in range(200)])
    workers = [waking_worker([hold], burst=True, max_jobs=20, keep_result=0, ctx={"probe": probe}) for _ in range(4)]
    await asyncio.gather(*(worker.async_run() for worker in workers))
    for worker in workers:
        await worker.close()
    print(f"4 workers x 20 slots: at most {probe.max_running} jobs ran at once")
    assert probe.max_running == 80
    assert sum(worker.jobs_complete for worker in workers) == 200


async def test_a_retried_job_runs_again_with_a_higher_job_try(pool: ArqRedis) -> None:
    probe = Probe()
    await enqueue(pool, QUEUE, "flaky", job_id="flaky", kwargs={"fail_tries": 2})
    worker = waking_worker([flaky], burst=True, fallback_poll_s=5, max_tries=5, ctx={"probe": probe})
    started = time.perf_counter()
    await worker.async_run()
    elapsed = time.perf_counter() - started
    print(f"two retries with Retry(defer=0.1): done in {elapsed * 1000:.0f} ms (fallback poll 5 s)")
    result = await _queued(pool, "flaky").result_info()
    await worker.close()

    assert probe.tries == [1, 2, 3]
    assert (worker.jobs_retried, worker.jobs_complete) == (2, 1)
    assert result is not None
    assert (result.success, result.result, result.job_try) == (True, "ok", 3)


async def test_a_job_that_keeps_asking_for_retries_fails_after_max_tries(pool: ArqRedis) -> None:
    probe = Probe()
    await enqueue(pool, QUEUE, "flaky", job_id="hopeless", kwargs={"fail_tries": 99})
    worker = waking_worker([flaky], burst=True, max_tries=2, ctx={"probe": probe})
    await worker.async_run()
    result = await _queued(pool, "hopeless").result_info()
    await worker.close()

    assert probe.tries == [1, 2]
    assert result is not None
    assert result.success is False
    assert isinstance(result.result, JobExecutionFailed)
    assert str(result.result) == "max 2 retries exceeded"


async def test_a_job_past_its_timeout_fails_with_a_timeout_error(pool: ArqRedis) -> None:
    await enqueue(pool, QUEUE, "too_slow", job_id="slow", kwargs={})
    worker = waking_worker([func(too_slow, timeout=0.2)], burst=True)
    await worker.async_run()
    raw = await pool.get("arq:result:" + arq_id(QUEUE, "slow"))
    await worker.close()

    assert worker.jobs_failed == 1
    result = orjson.loads(raw)
    assert (result["s"], result["r"]["error"], result["t"]) == (False, "TimeoutError", 1)
    assert await pool.zcard(QUEUE) == 0


async def test_a_cron_job_fires_every_second(pool: ArqRedis) -> None:
    worker = waking_worker([], cron_jobs=[cron(tick, second=set(range(60)))], fallback_poll_s=5)
    async with running(worker):
        await wait_until(lambda: _ticks_at_least(pool, 2), within_s=5)
    assert int(await pool.get("test:ticks")) >= 2


async def _ticks_at_least(pool: ArqRedis, n: int) -> bool:
    return int(await pool.get("test:ticks") or 0) >= n

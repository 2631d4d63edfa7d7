"""Enqueue: one round trip with arq's layout and a wake-up; bulk enqueue; JSON only."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import orjson
import pytest
from arq.connections import ArqRedis
from arq.jobs import Job, JobStatus
from arq.worker import Worker

from shared.queue.enqueue import enqueue, enqueue_many
from shared.queue.names import QueueName, arq_id, wake_channel
from shared.queue.pool import database_of, queue_redis
from shared.queue.serializer import NotJSONSafeError, deserialize, serialize
from tests.integration.queue_jobs import ON_CLUSTER_LEG, REDIS_SETTINGS, RUNS, count_run

pytestmark = pytest.mark.integration

QUEUE = QueueName.INTERACTIVE


def _queued(pool: ArqRedis, job_id: str) -> Job:
    """arq's view of one of our jobs on QUEUE (through the client that reaches the queue's slot)."""
    return Job(arq_id(QUEUE, job_id), queue_redis(pool, QUEUE), _queue_name=QUEUE, _deserializer=deserialize)


async def test_enqueue_writes_the_job_key_and_score_arq_expects(pool: ArqRedis) -> None:
    before = int(time.time() * 1000)
    assert await enqueue(pool, QUEUE, "count_run", job_id="job-1", kwargs={"tenant": "t1", "n": 3})

    raw = await pool.get("arq:job:" + arq_id(QUEUE, "job-1"))
    job = orjson.loads(raw)
    assert job == {"t": None, "f": "count_run", "a": [], "k": {"tenant": "t1", "n": 3}, "et": job["et"]}
    # arq rounds milliseconds (`timestamp_ms`), the bounds truncate: allow the 1 ms between
    assert before <= job["et"] <= int(time.time() * 1000) + 1
    assert await pool.zscore(QUEUE, arq_id(QUEUE, "job-1")) == job["et"]
    assert 86_390_000 < await pool.pttl("arq:job:" + arq_id(QUEUE, "job-1")) <= 86_400_000
    job_status = await _queued(pool, "job-1").status()
    assert job_status == JobStatus.queued


async def test_deferred_enqueue_scores_the_due_time_and_extends_the_expiry(pool: ArqRedis) -> None:
    assert await enqueue(pool, QUEUE, "count_run", job_id="later", kwargs={}, defer_s=30)
    et = orjson.loads(await pool.get("arq:job:" + arq_id(QUEUE, "later")))["et"]
    assert await pool.zscore(QUEUE, arq_id(QUEUE, "later")) == et + 30_000
    assert await pool.pttl("arq:job:" + arq_id(QUEUE, "later")) > 86_400_000
    assert await _queued(pool, "later").status() == JobStatus.deferred


async def test_explicit_expiry_sets_the_job_key_ttl(pool: ArqRedis) -> None:
    assert await enqueue(pool, QUEUE, "count_run", job_id="short", kwargs={}, expires_s=60)
    assert 59_000 < await pool.pttl("arq:job:" + arq_id(QUEUE, "short")) <= 60_000


async def test_a_duplicate_job_id_is_refused_and_changes_nothing(pool: ArqRedis) -> None:
    assert await enqueue(pool, QUEUE, "count_run", job_id="dup", kwargs={"v": 1})
    raw = await pool.get("arq:job:" + arq_id(QUEUE, "dup"))
    assert not await enqueue(pool, QUEUE, "count_run", job_id="dup", kwargs={"v": 2})
    assert await pool.get("arq:job:" + arq_id(QUEUE, "dup")) == raw
    assert await pool.zcard(QUEUE) == 1


async def test_a_job_id_with_a_kept_result_is_refused(pool: ArqRedis) -> None:
    await pool.set("arq:result:" + arq_id(QUEUE, "done"), b"{}")
    assert not await enqueue(pool, QUEUE, "count_run", job_id="done", kwargs={})
    assert await pool.zcard(QUEUE) == 0


async def test_enqueue_publishes_a_wake_up_on_the_queue_s_sharded_channel(pool: ArqRedis) -> None:
    node = queue_redis(pool, QUEUE)  # on a cluster: the master holding the queue's slot
    channel = wake_channel(QUEUE, database_of(node))
    async with node.pubsub() as pubsub:
        await pubsub.execute_command("SSUBSCRIBE", channel)
        assert (await pubsub.get_message(timeout=5))["type"] == "ssubscribe"
        await enqueue(pool, QUEUE, "count_run", job_id="w1", kwargs={})
        message = await pubsub.get_message(timeout=5)
    assert message is not None
    assert (message["type"], message["channel"], message["data"]) == (
        "smessage", channel.encode(), arq_id(QUEUE, "w1").encode())


@pytest.mark.skipif(ON_CLUSTER_LEG, reason="a stock arq worker speaks to one Redis only")
async def test_an_unmodified_arq_worker_runs_jobs_we_enqueued(pool: ArqRedis) -> None:
    await enqueue(pool, QUEUE, "count_run", job_id="stock-1", kwargs={"x": 1})
    await enqueue_many(pool, QUEUE, "count_run", [("stock-2", {"x": 2})])
    worker = Worker(
        [count_run],
        queue_name=QUEUE,
        redis_settings=REDIS_SETTINGS,
        burst=True,
        poll_delay=0.01,
        handle_signals=False,
        job_serializer=serialize,
        job_deserializer=deserialize,
    )
    try:
        assert await worker.run_check() == 2
    finally:
        await worker.close()
    assert await pool.hgetall(RUNS) == {b"stock-1": b"1", b"stock-2": b"1"}  # count_run records its own id


async def test_kwargs_that_are_not_json_are_refused_at_enqueue(pool: ArqRedis) -> None:
    with pytest.raises(NotJSONSafeError, match=r"job 'bad' \(count_run\): kwargs are not JSON-safe"):
        await enqueue(pool, QUEUE, "count_run", job_id="bad", kwargs={"at": dt.datetime.now(dt.UTC)})
    assert await pool.dbsize() == 0


async def test_the_raw_job_in_redis_is_json(pool: ArqRedis) -> None:
    await enqueue(pool, QUEUE, "count_run", job_id="j", kwargs={"prompt_hash": "ab", "tokens": [1, 2]})
    raw = await pool.get("arq:job:" + arq_id(QUEUE, "j"))
    assert raw.startswith(b"{")
    assert orjson.loads(raw)["k"] == {"prompt_hash": "ab", "tokens": [1, 2]}


async def test_enqueue_many_lands_ten_thousand_jobs(pool: ArqRedis) -> None:
    jobs = [(f"bulk-{i}", {"line": i}) for i in range(10_000)]
    started = time.perf_counter()
    added = await enqueue_many(pool, QueueName.BATCH, "count_run", jobs)
    elapsed = time.perf_counter() - started
    print(f"enqueue_many: 10,000 jobs in {elapsed * 1000:.0f} ms ({10_000 / elapsed:,.0f} jobs/s)")

    assert added == 10_000
    assert await pool.zcard(QueueName.BATCH) == 10_000
    assert orjson.loads(await pool.get("arq:job:" + arq_id(QueueName.BATCH, "bulk-9999")))["k"] == {"line": 9999}
    assert await enqueue_many(pool, QueueName.BATCH, "count_run", jobs[:500]) == 0


async def test_enqueue_many_stops_at_the_chunk_holding_a_bad_job(pool: ArqRedis) -> None:
    jobs = [(f"b-{i}", {"i": i}) for i in range(10)] + [("b-bad", {"s": {1, 2}})]
    with pytest.raises(NotJSONSafeError):
        await enqueue_many(pool, QUEUE, "count_run", jobs, chunk_size=5)
    assert await pool.zcard(QUEUE) == 10


async def test_a_script_redis_does_not_know_yet_is_loaded_alone_and_in_a_pipeline(pool: ArqRedis) -> None:
    # What enqueue, enqueue_many, claim_jobs and the learned statistics rely on from redis-py's
    # script objects after a Redis restart. Sources no server has seen stand in for ours
    # (SCRIPT FLUSH would disturb other users of this server).
    pool = queue_redis(pool, "counter")  # on a cluster: the node that holds `counter`
    alone = pool.register_script(f"return ARGV[1] .. '{uuid.uuid4().hex}'")
    assert await pool.script_exists(alone.sha) == [False]
    assert (await alone(args=["x"])).startswith(b"x")
    assert await pool.script_exists(alone.sha) == [True]
    assert (await alone(args=["y"])).startswith(b"y")

    piped = pool.register_script(f"return redis.call('INCRBY', KEYS[1], ARGV[1]) -- {uuid.uuid4().hex}")
    assert await pool.script_exists(piped.sha) == [False]
    async with pool.pipeline(transaction=False) as pipe:
        await piped(keys=["counter"], args=["2"], client=pipe)
        await piped(keys=["counter"], args=["3"], client=pipe)
        pipe.get("counter")
        assert await pipe.execute() == [2, 5, b"5"]
    assert await pool.script_exists(piped.sha) == [True]

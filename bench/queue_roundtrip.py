"""Stock arq 0.28.0 against shared.queue, side by side: round trip, drain, enqueue, slots, idle CPU.

Usage: .venv/bin/python bench/queue_roundtrip.py [--redis redis://127.0.0.1:6379/12]
Uses (and flushes) Redis database 12. Workers run in this process and event loop; the
waiter (or arq's Job.result) is the only other client, so figures are per-process, not per-host.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker

from shared.queue.enqueue import enqueue, enqueue_many
from shared.queue.names import QueueName
from shared.queue.notify import CompletionWaiters, notify_done
from shared.queue.serializer import deserialize, serialize
from shared.queue.worker import WakingWorker

QUEUE = QueueName.INTERACTIVE


# ---- jobs --------------------------------------------------------------------------------


async def noop(ctx: dict[str, Any], **kwargs: Any) -> None:
    return None


async def echo(ctx: dict[str, Any]) -> str:
    return "ok"


async def reply(ctx: dict[str, Any], *, reply_to: str, job_id: str) -> None:
    # The job's own id from its kwargs, as the system's tasks do (arq's ctx id has the queue's tag).
    await notify_done(ctx["redis"], reply_to, job_id, b"ok")


@dataclass
class Slots:
    running: int = 0
    peak: int = 0


async def busy(ctx: dict[str, Any], *, seconds: float) -> None:
    slots: Slots = ctx["slots"]
    slots.running += 1
    slots.peak = max(slots.peak, slots.running)
    try:
        await asyncio.sleep(seconds)
    finally:
        slots.running -= 1


# ---- harness -----------------------------------------------------------------------------


def stock_worker(functions: list[Any], settings: RedisSettings, **kwargs: Any) -> Worker:
    return Worker(
        functions,
        queue_name=QUEUE,
        redis_settings=settings,
        handle_signals=False,
        job_serializer=serialize,
        job_deserializer=deserialize,
        **kwargs,
    )


def our_worker(functions: list[Any], settings: RedisSettings, **kwargs: Any) -> Worker:
    return WakingWorker(functions, queue_name=QUEUE, redis_settings=settings, handle_signals=False, **kwargs)


async def run_in_background(workers: Sequence[Worker], body: Callable[[], Awaitable[Any]]) -> Any:
    mains = [asyncio.create_task(worker.async_run()) for worker in workers]
    try:
        await asyncio.sleep(0.3)  # let the workers connect and go idle
        return await body()
    finally:
        for worker in workers:
            worker.handle_sig(signal.SIGUSR1)
        await asyncio.gather(*mains, return_exceptions=True)
        for worker in workers:
            await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
            worker.tasks.clear()
            await worker.close()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Row:
    name: str
    stock: str
    ours: str


# ---- measurements ------------------------------------------------------------------------


async def roundtrip_stock(pool: ArqRedis, settings: RedisSettings, n: int) -> list[float]:
    async def body() -> list[float]:
        samples = []
        for i in range(n):
            started = time.perf_counter()
            job = await pool.enqueue_job("echo", _job_id=f"rt-stock-{i}", _queue_name=QUEUE)
            assert job is not None
            assert await job.result(timeout=10) == "ok"
            samples.append(time.perf_counter() - started)
        return samples

    return await run_in_background([stock_worker([echo], settings)], body)


async def roundtrip_ours(pool: ArqRedis, settings: RedisSettings, n: int) -> list[float]:
    async def body() -> list[float]:
        samples = []
        async with CompletionWaiters(pool) as waiters:
            for i in range(n):
                job_id = f"rt-ours-{i}"
                started = time.perf_counter()
                future = waiters.register(job_id)
                await enqueue(pool, QUEUE, "reply", job_id=job_id, kwargs={"reply_to": waiters.channel,
                                                                           "job_id": job_id})
                assert await waiters.wait(future, max_wait_s=10) == b"ok"
                samples.append(time.perf_counter() - started)
        return samples

    return await run_in_background([our_worker([reply], settings, keep_result=0)], body)


async def drain(pool: ArqRedis, make: Callable[[], Worker], n: int) -> float:
    await enqueue_many(pool, QUEUE, "noop", [(f"drain-{i}", {}) for i in range(n)])
    worker = make()
    started = time.perf_counter()
    await worker.async_run()
    elapsed = time.perf_counter() - started
    await worker.close()
    assert worker.jobs_complete == n, worker.jobs_complete
    return n / elapsed


async def enqueue_rate(n: int, one: Callable[[int], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    for i in range(n):
        await one(i)
    return n / (time.perf_counter() - started)


async def bulk_rate(pool: ArqRedis, n: int) -> float:
    jobs = [(f"bulk-{i}", {"line": i, "batch": "b-1"}) for i in range(n)]
    started = time.perf_counter()
    added = await enqueue_many(pool, QueueName.BATCH, "noop", jobs)
    elapsed = time.perf_counter() - started
    assert added == n
    return n / elapsed


async def peak_slots(pool: ArqRedis, make: Callable[[dict[str, Any]], Worker], workers: int, jobs: int) -> int:
    slots = Slots()
    await enqueue_many(pool, QUEUE, "busy", [(f"slot-{i}", {"seconds": 1.0}) for i in range(jobs)])
    pool_of_workers = [make({"slots": slots}) for _ in range(workers)]
    await asyncio.gather(*(worker.async_run() for worker in pool_of_workers))
    for worker in pool_of_workers:
        await worker.close()
    return slots.peak


async def idle_cpu(worker: Worker, seconds: float) -> float:
    async def body() -> float:
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        return (time.process_time() - cpu) / (time.perf_counter() - wall)

    return float(await run_in_background([worker], body))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--roundtrips", type=int, default=300, help="sequential round trips, ours")
    parser.add_argument("--stock-roundtrips", type=int, default=30, help="stock arq pays ~0.5 s each")
    parser.add_argument("--drain", type=int, default=5000)
    parser.add_argument("--enqueue", type=int, default=3000, help="single enqueues, one at a time")
    parser.add_argument("--bulk", type=int, default=50_000)
    args = parser.parse_args()

    settings = RedisSettings.from_dsn(args.redis)
    pool = await create_pool(settings, job_serializer=serialize, job_deserializer=deserialize)
    rows: list[Row] = []

    async def fresh() -> None:
        await pool.flushdb()

    await fresh()
    stock_rt = await roundtrip_stock(pool, settings, args.stock_roundtrips)
    await fresh()
    ours_rt = await roundtrip_ours(pool, settings, args.roundtrips)
    rows.append(
        Row(
            "round trip p50 / p99 (sequential)",
            f"{statistics.median(stock_rt) * 1000:.0f} / {percentile(stock_rt, 0.99) * 1000:.0f} ms"
            f" (n={len(stock_rt)})",
            f"{statistics.median(ours_rt) * 1000:.1f} / {percentile(ours_rt, 0.99) * 1000:.1f} ms (n={len(ours_rt)})",
        )
    )

    await fresh()
    stock_drain = await drain(
        pool, lambda: stock_worker([noop], settings, burst=True, max_jobs=100, keep_result=0), args.drain
    )
    await fresh()
    ours_drain = await drain(
        pool, lambda: our_worker([noop], settings, burst=True, max_jobs=100, keep_result=0), args.drain
    )
    rows.append(
        Row(
            f"drain {args.drain:,} no-op jobs, 1 worker x 100",
            f"{stock_drain:,.0f} jobs/s",
            f"{ours_drain:,.0f} jobs/s",
        )
    )

    await fresh()
    stock_enq = await enqueue_rate(
        args.enqueue, lambda i: pool.enqueue_job("noop", _job_id=f"e-{i}", _queue_name=QUEUE)
    )
    await fresh()
    ours_enq = await enqueue_rate(args.enqueue, lambda i: enqueue(pool, QUEUE, "noop", job_id=f"e-{i}", kwargs={}))
    rows.append(Row("enqueue one at a time", f"{stock_enq:,.0f} jobs/s", f"{ours_enq:,.0f} jobs/s"))
    await fresh()
    ours_bulk = await bulk_rate(pool, args.bulk)
    rows.append(
        Row(f"bulk enqueue {args.bulk:,} (enqueue_many)", "n/a (one at a time above)", f"{ours_bulk:,.0f} jobs/s")
    )

    await fresh()
    stock_peak = await peak_slots(
        pool, lambda ctx: stock_worker([busy], settings, burst=True, max_jobs=20, ctx=ctx, keep_result=0), 8, 320
    )
    await fresh()
    ours_peak = await peak_slots(
        pool, lambda ctx: our_worker([busy], settings, burst=True, max_jobs=20, ctx=ctx, keep_result=0), 8, 320
    )
    rows.append(Row("peak busy slots, 8 workers x 20, 320 x 1 s jobs", f"{stock_peak} / 160", f"{ours_peak} / 160"))

    await fresh()
    stock_idle = await idle_cpu(stock_worker([noop], settings), 3.0)
    stock_idle_fast = await idle_cpu(stock_worker([noop], settings, poll_delay=0.001), 3.0)
    ours_idle = await idle_cpu(our_worker([noop], settings), 3.0)
    rows.append(
        Row("idle worker CPU (3 s)", f"{stock_idle:.2%} (poll 0.5 s), {stock_idle_fast:.1%} (1 ms)", f"{ours_idle:.2%}")
    )
    await pool.flushdb()
    await pool.aclose()

    width = max(len(r.name) for r in rows)
    stock_width = max(len(r.stock) for r in rows)
    print(f"{'':{width}}  {'stock arq 0.28.0':{stock_width}}  shared.queue")
    for row in rows:
        print(f"{row.name:{width}}  {row.stock:{stock_width}}  {row.ours}")


if __name__ == "__main__":
    asyncio.run(main())

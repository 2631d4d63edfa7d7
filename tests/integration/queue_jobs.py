"""Job functions, WorkerSettings and helpers for the queue tests; also the entry point of worker subprocesses.

Run as `python -m tests.integration.queue_jobs <SettingsClassName>` to start a WakingWorker.
Everything uses Redis database 11 only, or, in the suite's Redis Cluster leg (`make
test-redis-cluster`), the cluster the harness started (its url in AINFERA_TEST_REDIS_CLUSTER_URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from arq import Retry, cron
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker, func

from shared.queue.names import QueueName
from shared.queue.notify import notify_done
from shared.queue.pool import ClusterRedis
from shared.queue.serializer import deserialize, serialize
from shared.queue.worker import WakingWorker, create_worker

REDIS_URL = "redis://127.0.0.1:6379/11"
REDIS_SETTINGS = RedisSettings.from_dsn(REDIS_URL)

RUNS = "test:runs"  # hash: job id -> times the job body ran
EVENTS = "test:events"  # list of facts the subprocess jobs record


# Known when the tests are collected (the leg's cluster starts later, with the session).
ON_CLUSTER_LEG = os.environ.get("AINFERA_TEST_REDIS_CLUSTER") == "1"


def cluster_url() -> str | None:
    """The Redis Cluster of the suite's cluster leg, or None on the single-Redis legs."""
    return os.environ.get("AINFERA_TEST_REDIS_CLUSTER_URL") or None


async def fresh_pool() -> ArqRedis:
    """A JSON-speaking client on db 11 (or the leg's cluster: a ClusterRedis), flushed."""
    url = cluster_url()
    if url is not None:
        cluster = ClusterRedis.from_url(url)
        await cluster.flushall(target_nodes=ClusterRedis.PRIMARIES)
        return cluster  # type: ignore[return-value]  # used for its commands, which both offer
    pool = await create_pool(REDIS_SETTINGS, job_serializer=serialize, job_deserializer=deserialize)
    await pool.flushdb()
    return pool


def _own_pool(queue: str) -> dict[str, Any]:
    """How a worker of the tests reaches Redis: db 11, or its own client pinned to its queue's slot."""
    url = cluster_url()
    if url is None:
        return {"redis_settings": REDIS_SETTINGS}
    return {"redis_pool": ClusterRedis.from_url(url).new_slot_client(queue)}


async def wait_until(check: Callable[[], Awaitable[bool]], *, within_s: float = 10.0) -> None:
    """Bounded wait for a condition that has no event to await (state in Redis or another process)."""
    async with asyncio.timeout(within_s):
        while not await check():
            await asyncio.sleep(0.01)


@dataclass
class Probe:
    """In-process observations of jobs, shared with the jobs through the worker ctx."""

    started: asyncio.Event = field(default_factory=asyncio.Event)
    start_times: dict[str, float] = field(default_factory=dict)
    running: int = 0
    max_running: int = 0
    tries: list[int] = field(default_factory=list)


# ---- job functions -------------------------------------------------------------------------


def own_id(ctx: dict[str, Any]) -> str:
    """The job's own id: arq's `job_id` without the queue's hash tag in front."""
    queued: str = ctx["job_id"]
    return queued.split("}", 1)[1] if queued.startswith("{") else queued


def _facts(ctx: dict[str, Any]) -> Any:
    """Where jobs record what the tests check: the worker's own client, or on a cluster (whose
    worker client reaches its queue's slot only) a cluster client the worker was given."""
    return ctx.get("facts") or ctx["redis"]


async def noop(ctx: dict[str, Any], **kwargs: Any) -> None:
    return None


async def count_run(ctx: dict[str, Any], **kwargs: Any) -> None:
    await _facts(ctx).hincrby(RUNS, own_id(ctx), 1)


async def mark_started(ctx: dict[str, Any], **kwargs: Any) -> None:
    probe: Probe = ctx["probe"]
    probe.start_times[own_id(ctx)] = asyncio.get_running_loop().time()
    probe.started.set()


async def hold(ctx: dict[str, Any], *, seconds: float) -> None:
    probe: Probe = ctx["probe"]
    probe.running += 1
    probe.max_running = max(probe.max_running, probe.running)
    try:
        await asyncio.sleep(seconds)
    finally:
        probe.running -= 1


async def flaky(ctx: dict[str, Any], *, fail_tries: int) -> str:
    ctx["probe"].tries.append(ctx["job_try"])
    if ctx["job_try"] <= fail_tries:
        raise Retry(defer=0.1)
    return "ok"


async def too_slow(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(30)


async def reply(ctx: dict[str, Any], *, reply_to: str, text: str) -> None:
    await notify_done(_facts(ctx), reply_to, own_id(ctx), text.encode())


async def tick(ctx: dict[str, Any]) -> None:
    await _facts(ctx).incr("test:ticks")


async def stuck_on_first_try(ctx: dict[str, Any]) -> None:
    """Runs long on its first try (to be killed), returns at once on later tries."""
    await _facts(ctx).hincrby(RUNS, own_id(ctx), 1)
    if ctx["job_try"] == 1:
        await asyncio.sleep(60)


async def slow_then_record(ctx: dict[str, Any], *, seconds: float) -> None:
    await _facts(ctx).rpush(EVENTS, "started")
    await asyncio.sleep(seconds)
    await _facts(ctx).rpush(EVENTS, "finished")


# ---- in-process workers --------------------------------------------------------------------


def waking_worker(functions: list[Any], **kwargs: Any) -> WakingWorker:
    kwargs.setdefault("queue_name", QueueName.INTERACTIVE)
    if "redis_settings" not in kwargs and "redis_pool" not in kwargs:
        kwargs.update(_own_pool(kwargs["queue_name"]))
    if (url := cluster_url()) is not None:
        kwargs["ctx"] = {**(kwargs.get("ctx") or {}), "facts": ClusterRedis.from_url(url)}
    kwargs.setdefault("handle_signals", False)
    return WakingWorker(functions, **kwargs)


@contextlib.asynccontextmanager
async def running(*workers: Worker) -> AsyncIterator[None]:
    """Run workers in this event loop for the body of the block, then stop and close them."""
    mains = [asyncio.create_task(worker.async_run()) for worker in workers]
    try:
        yield
    finally:
        for worker in workers:
            worker.handle_sig(signal.SIGUSR1)
        await asyncio.gather(*mains, return_exceptions=True)
        for worker in workers:
            await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
            worker.tasks.clear()
            await worker.close()


# ---- subprocess workers --------------------------------------------------------------------


class KillableSettings:
    functions = [func(stuck_on_first_try, timeout=1)]
    queue_name = QueueName.BATCH
    redis_settings = REDIS_SETTINGS
    max_tries = 3
    keep_result = 0


class GracefulSettings:
    functions = [func(slow_then_record, timeout=10)]
    queue_name = QueueName.BATCH
    redis_settings = REDIS_SETTINGS
    job_completion_wait = 10
    keep_result = 0


class IdleSettings:
    functions = [noop]
    queue_name = QueueName.PROBE
    redis_settings = REDIS_SETTINGS
    cron_jobs = [cron(tick, hour=3, minute=33, second=33)]  # a cron job that does not fire during the test
    keep_result = 0


def main(argv: list[str]) -> None:
    settings = globals()[argv[1]]
    url = cluster_url()
    overrides = {} if url is None else {"redis_pool": _own_pool(settings.queue_name)["redis_pool"],
                                        "ctx": {"facts": ClusterRedis.from_url(url)}}
    worker = create_worker(settings, **overrides)
    if len(argv) > 2:
        # A claim lapses after the job timeout + 10 s (arq's rule); the kill test shortens that
        # window so that the re-run it waits for comes within seconds.
        worker.in_progress_timeout_s = float(argv[2])
    worker.run()


if __name__ == "__main__":
    main(sys.argv)

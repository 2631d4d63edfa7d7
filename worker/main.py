"""The worker process: one WakingWorker (our arq extension) per queue, sharing one Resources.

- `interactive`: synchronous calls (`dispatch`), never behind bulk work;
- `batch`: stored jobs (async calls and batch lines, `dispatch_stored`), batch finalization,
  and the batch supervisor's tick (arq cron, every second).
Run them in one process (the default) or in separate ones (`--queue interactive`,
`--queue batch`) so bulk work cannot take CPU from synchronous callers.

Job timeouts are explicit: the provider call has its own overall deadline, and the job
gets that plus a margin for the database work, so arq never re-runs a job that is merely
slow (arq's in-progress lock lasts the job timeout plus 10 s). SIGTERM/SIGINT stop
picking new jobs and let running ones finish (up to `worker_job_completion_wait_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from arq.connections import RedisSettings
from arq.cron import cron
from arq.worker import func

from shared.batches.supervisor import SupervisorConfig
from shared.queue.names import QueueName
from shared.queue.worker import WakingWorker
from shared.resources import Resources, open_resources
from shared.settings import Settings
from worker.context import RESOURCES
from worker.tasks import DISPATCH_MAX_TRIES, dispatch, dispatch_stored, finalize, supervise_batches

JOB_TIMEOUT_MARGIN_S = 30.0
QUEUES: dict[str, QueueName] = {"interactive": QueueName.INTERACTIVE, "batch": QueueName.BATCH}


def _functions(settings: Settings, queue: QueueName) -> tuple[list[Any], list[Any]]:
    timeout = settings.upstream_deadline_s + JOB_TIMEOUT_MARGIN_S
    if queue == QueueName.INTERACTIVE:
        return [func(dispatch, name="dispatch", timeout=timeout, max_tries=DISPATCH_MAX_TRIES)], []
    return (
        [
            func(dispatch_stored, name="dispatch_stored", timeout=timeout, max_tries=DISPATCH_MAX_TRIES),
            func(finalize, name="finalize_batch", timeout=3600, max_tries=DISPATCH_MAX_TRIES),
            func(supervise_batches, name="supervise_batches", timeout=60, max_tries=1),
        ],
        [cron(supervise_batches, name="cron:supervise_batches", second=set(range(60)), run_at_startup=True,
              timeout=60, max_tries=1, unique=True)],
    )


def build_worker(settings: Settings, queue: QueueName, res: Resources, *, burst: bool = False,
                 max_jobs: int | None = None) -> WakingWorker:
    functions, crons = _functions(settings, queue)
    slots = settings.worker_max_jobs if queue == QueueName.INTERACTIVE else settings.batch_worker_max_jobs
    ctx: dict[str, Any] = {"settings": settings, RESOURCES: res, "supervisor_config": supervisor_config(settings)}
    return WakingWorker(
        functions=functions,
        cron_jobs=crons or None,
        queue_name=str(queue),
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        ctx=ctx,
        max_jobs=max_jobs or slots,
        job_timeout=settings.upstream_deadline_s + JOB_TIMEOUT_MARGIN_S,
        keep_result=0,
        burst=burst,
        handle_signals=False,
        job_completion_wait=settings.worker_job_completion_wait_s,
        fallback_poll_s=settings.worker_poll_fallback_s,
    )


def supervisor_config(settings: Settings) -> SupervisorConfig:
    return SupervisorConfig(watermark=settings.batch_queue_watermark, chunk=settings.batch_feed_chunk)


@dataclass(frozen=True)
class WorkerSet:
    workers: list[WakingWorker]
    tasks: list[asyncio.Task[None]]


@contextlib.asynccontextmanager
async def running_workers(settings: Settings, queues: Sequence[QueueName],
                          res: Resources | None = None) -> AsyncIterator[WorkerSet]:
    """Start a worker per queue in this event loop; on exit let running jobs finish, then stop."""
    async with contextlib.AsyncExitStack() as stack:
        if res is None:
            res = await stack.enter_async_context(open_resources(settings))
        workers = [build_worker(settings, q, res) for q in queues]
        tasks = [asyncio.create_task(w.async_run(), name=f"worker:{w.queue_name}") for w in workers]
        try:
            yield WorkerSet(workers, tasks)
        finally:
            for w in workers:
                w.handle_sig_wait_for_completion(signal.SIGTERM)
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            for w in workers:
                await w.close()


async def serve(settings: Settings, queues: Sequence[QueueName]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_workers(settings, queues) as running:
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([stopped, *running.tasks], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()


def run_worker(settings: Settings, queues: list[str] | None = None) -> None:
    names = queues or list(QUEUES)
    unknown = [q for q in names if q not in QUEUES]
    if unknown:
        raise SystemExit(f"error: unknown queue(s) {', '.join(unknown)}; known: {', '.join(QUEUES)}")
    asyncio.run(serve(settings, [QUEUES[q] for q in names]))

"""The worker process: one WakingWorker (our arq extension) per queue, sharing one Resources.

- `interactive`: synchronous calls (`dispatch`), never behind bulk work;
- `batch`: stored jobs (async calls and batch lines, `dispatch_stored`);
- `probe`: fanout planning (here, where the keys are) and probes;
- `control`: housekeeping: the batch supervisor's tick (arq cron, every second), batch
  finalization, fanout decisions and the fanout tick (every minute). `--queue batch` serves
  it too.
Run them in one process (the default) or in separate ones (`--queue interactive`,
`--queue batch`), so bulk work cannot take CPU from synchronous callers: a process that
serves no interactive queue lowers its own CPU priority (`AINFERA_BULK_WORKER_NICE`).

Job timeouts are explicit: the provider call has its own overall deadline, and the job
gets that plus a margin for the database work, so arq never re-runs a job that is merely
slow (arq's in-progress lock lasts the job timeout plus 10 s). SIGTERM/SIGINT stop
picking new jobs and let running ones finish (up to `worker_job_completion_wait_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import uvloop
from arq.cron import cron
from arq.typing import WorkerCoroutine
from arq.worker import func

from shared.batches.supervisor import SupervisorConfig
from shared.jobs import (
    DECIDE_FANOUT,
    DISPATCH,
    DISPATCH_STORED,
    FANOUT_TICK,
    FINALIZE_BATCH,
    PLAN_FANOUT,
    PROBE_MODEL,
    SUPERVISE_BATCHES,
    TASKS,
    TaskSpec,
)
from shared.metrics.serve import metrics_port
from shared.metrics.workers import WorkerSlots
from shared.queue.names import QueueName
from shared.queue.pool import new_queue_client
from shared.queue.worker import WakingWorker
from shared.resources import Resources, open_resources
from shared.settings import Settings
from worker.context import RESOURCES
from worker.tasks import (
    decide_fanout,
    dispatch,
    dispatch_stored,
    fanout_tick,
    finalize,
    plan_fanout,
    probe_model,
    supervise_batches,
)

CONTROL_SLOTS = 8
# A process given a queue name also serves the queues listed with it.
QUEUES: dict[str, tuple[QueueName, ...]] = {
    "interactive": (QueueName.INTERACTIVE,),
    "batch": (QueueName.BATCH, QueueName.CONTROL),
    "probe": (QueueName.PROBE,),
    "control": (QueueName.CONTROL,),
}


# Each task's coroutine; its name, queue, timeout and tries are its spec in shared/jobs.py.
_TASK_FUNCTIONS: dict[TaskSpec, WorkerCoroutine] = {
    DISPATCH: dispatch,
    DISPATCH_STORED: dispatch_stored,
    PROBE_MODEL: probe_model,
    PLAN_FANOUT: plan_fanout,
    FINALIZE_BATCH: finalize,
    SUPERVISE_BATCHES: supervise_batches,
    DECIDE_FANOUT: decide_fanout,
    FANOUT_TICK: fanout_tick,
}
# Housekeeping that runs on a schedule as well: (spec, seconds of the minute it runs at).
_CRONS: tuple[tuple[TaskSpec, set[int]], ...] = ((SUPERVISE_BATCHES, set(range(60))), (FANOUT_TICK, {0}))


def _functions(settings: Settings, queue: QueueName) -> tuple[list[Any], list[Any]]:
    """Each queue's functions, from their specs. Within a queue the timeouts are alike on purpose:
    arq holds a running job's in-progress lock for the queue's longest timeout + 10 s, and that is
    how long a killed worker's job waits before it runs again."""
    functions = [func(_TASK_FUNCTIONS[spec], name=spec.name, timeout=spec.timeout_s(settings),
                      max_tries=spec.max_tries(settings)) for spec in TASKS if spec.queue == queue]
    crons = [cron(_TASK_FUNCTIONS[spec], name=f"cron:{spec.name}", second=seconds, run_at_startup=True,
                  timeout=spec.timeout_s(settings), max_tries=spec.max_tries(settings), unique=True)
             for spec, seconds in _CRONS if spec.queue == queue]
    return functions, crons


def build_worker(settings: Settings, queue: QueueName, res: Resources | None, *, burst: bool = False,
                 max_jobs: int | None = None) -> WakingWorker:
    """The worker of one queue. `res` None: a worker that is only looked at (its functions, slots and
    timeouts), never run; its Redis client is then a plain one to `redis_url` that never connects."""
    functions, crons = _functions(settings, queue)
    slots = {QueueName.INTERACTIVE: settings.worker_max_jobs, QueueName.BATCH: settings.batch_worker_max_jobs,
             QueueName.PROBE: settings.probe_worker_max_jobs, QueueName.CONTROL: CONTROL_SLOTS}[queue]
    ctx: dict[str, Any] = {"settings": settings, RESOURCES: res, "supervisor_config": supervisor_config(settings)}
    return WakingWorker(
        functions=functions,
        cron_jobs=crons or None,
        queue_name=str(queue),
        redis_pool=new_queue_client(settings.redis_url, str(queue), shared=res.redis if res is not None else None),
        ctx=ctx,
        max_jobs=max_jobs or slots,
        job_timeout=DISPATCH.timeout_s(settings),
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
    metrics_port: int | None = None  # where this process serves its metrics (None: not served)


@contextlib.asynccontextmanager
async def running_workers(settings: Settings, queues: Sequence[QueueName],
                          res: Resources | None = None) -> AsyncIterator[WorkerSet]:
    """Start a worker per queue in this event loop; on exit let running jobs finish, then stop.
    The process's metrics (its slots and arq's job counts included) are served on
    `worker_metrics_port` when it is set (`WorkerSet.metrics_port`)."""
    async with contextlib.AsyncExitStack() as stack:
        if res is None:
            res = await stack.enter_async_context(open_resources(settings))
        workers = [build_worker(settings, q, res) for q in queues]
        slots = WorkerSlots(workers)
        res.metrics.registry.register(slots)
        stack.callback(res.metrics.registry.unregister, slots)
        port = stack.enter_context(metrics_port(res.metrics.registry, settings.worker_metrics_host,
                                                settings.worker_metrics_port))
        tasks = [asyncio.create_task(w.async_run(), name=f"worker:{w.queue_name}") for w in workers]
        try:
            yield WorkerSet(workers, tasks, port)
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
    names = queues or ["interactive", "batch", "probe"]
    unknown = [q for q in names if q not in QUEUES]
    if unknown:
        raise SystemExit(f"error: unknown queue(s) {', '.join(unknown)}; known: {', '.join(QUEUES)}")
    served = list(dict.fromkeys(q for name in names for q in QUEUES[name]))
    if QueueName.INTERACTIVE not in served and settings.bulk_worker_nice > 0:
        # Bulk work yields the CPU to synchronous callers' processes on the same machine.
        os.nice(settings.bulk_worker_nice)
    # uvloop, as the gateway runs under: a cheaper event loop and socket layer for every job.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(settings, served))

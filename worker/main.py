"""The worker process: a WakingWorker (our arq extension) serving the dispatch queue.

Job timeouts are explicit: the provider call has its own overall deadline, and the
job gets that plus a margin for the database work, so arq never re-runs a job that
is merely slow (arq's in-progress lock lasts the job timeout plus 10 s).
"""

from __future__ import annotations

from typing import Any

from arq.connections import RedisSettings
from arq.worker import func

from shared.queue.names import QueueName
from shared.queue.worker import WakingWorker
from shared.settings import Settings
from worker.context import on_shutdown, on_startup
from worker.tasks import DISPATCH_MAX_TRIES, dispatch

JOB_TIMEOUT_MARGIN_S = 30.0


def build_worker(
    settings: Settings,
    queue: str = QueueName.INTERACTIVE,
    *,
    burst: bool = False,
    handle_signals: bool = True,
    max_jobs: int | None = None,
) -> WakingWorker:
    ctx: dict[str, Any] = {"settings": settings}
    timeout = settings.upstream_deadline_s + JOB_TIMEOUT_MARGIN_S
    return WakingWorker(
        functions=[func(dispatch, name="dispatch", timeout=timeout, max_tries=DISPATCH_MAX_TRIES)],
        queue_name=str(queue),
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        ctx=ctx,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        max_jobs=max_jobs or settings.worker_max_jobs,
        job_timeout=timeout,
        keep_result=0,
        burst=burst,
        handle_signals=handle_signals,
        job_completion_wait=settings.worker_job_completion_wait_s,
        fallback_poll_s=settings.worker_poll_fallback_s,
    )


def run_worker(settings: Settings, queues: list[str] | None = None) -> None:
    queue = (queues or [QueueName.INTERACTIVE])[0]
    build_worker(settings, queue).run()

"""WakingWorker: arq's Worker, woken by enqueues instead of polling, claiming due jobs in one round trip.

Also `create_worker` / `run_worker`, which build one from a WorkerSettings class or mapping, as arq's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import arq.worker as _arq_worker
from arq.connections import create_pool
from arq.constants import default_queue_name, job_key_prefix, result_key_prefix, retry_key_prefix
from arq.typing import WorkerCoroutine
from arq.utils import timestamp_ms, to_ms
from arq.worker import Function, Worker

from shared.queue.claim import claim_jobs
from shared.queue.names import health_key, running_key, wake_channel
from shared.queue.pool import QueueRedis, database_of
from shared.queue.serializer import deserialize, serialize
from shared.queue.subscription import Subscription

# arq formats every job's arguments for an INFO line before the logger checks its level: work on
# the hot path for nothing, and our arguments hold prompts, which are never logged. Replaced
# once, here, for every worker of the process.
_arq_worker.args_to_string = lambda args, kwargs: "..."  # type: ignore[attr-defined]

# arq 0.28.0 (pinned in pyproject.toml) looks cron jobs this far ahead: 2 x max(poll_delay, 0.5) s.
_CRON_LOOKAHEAD_S = 1.0
# A burst worker stops when the queue is empty, which also depends on jobs other workers run
# and whose end nobody announces; it re-checks this often rather than after fallback_poll_s.
_BURST_RECHECK_S = 0.1


class WakingWorker(Worker):
    """arq 0.28.0's Worker without its fixed polling delay.

    Takes every argument arq's Worker takes (`poll_delay` and
    `queue_read_limit` are accepted and unused) plus `fallback_poll_s`, and
    defaults `job_serializer`/`job_deserializer` to JSON (also on a given
    `redis_pool` that has no serializer of its own). Between polls it
    waits on an event, set by: a wake-up published on its queue's wake channel
    by `enqueue`/`enqueue_many`; one of its own jobs finishing when that may
    have left claimable work (its last claim filled every slot, the job was
    retried, burst mode, or shutdown); a timer for the earliest deferred job it
    saw, the next cron window and the next health check; and at the latest
    `fallback_poll_s`, which catches lost wake-ups, jobs enqueued by plain arq,
    jobs of a killed worker whose in-progress key expired, and aborts (in
    burst mode 0.1 s, because "queue empty" also depends on other workers).

    Overridden arq methods (checked against arq 0.28.0 by
    tests/unit/test_queue_arq_contract.py, which pins digests of the arq code
    they depend on and fails when an arq upgrade changes it):
    - `__init__`: JSON serializer defaults, `fallback_poll_s`, poll_delay 0 so
      arq's `main` loop never sleeps (the wait happens in `_poll_iteration`).
    - `main`: arq's, with a `QueueRedis` client when none was given (so cron
      jobs get the queue's hash tag), plus stopping the wake-up subscription
      when it ends.
    - `finish_job`, `finish_failed_job`: arq's, with the queue's running set
      instead of arq's in-progress keys, and without arq's global `arq:abort`
      set (aborts are not offered, so nothing is ever in it), so that every
      key of the transaction is in the queue's slot.
    - `_poll_iteration`: wait for the event instead of sleeping; heart beat
      (health key, cron enqueue) before claiming so new cron jobs are seen;
      one Lua claim (`claim.py`) instead of ZRANGEBYSCORE + a WATCH/MULTI
      transaction per job; then arq's own `run_job`, `_cancel_aborted_jobs`
      and task reaping, so retries, job_try, max_tries, timeouts, keep_result,
      abort, cron, health checks, burst mode and graceful shutdown stay arq's.
    arq's `start_jobs` and its semaphore are no longer used; `job_counter`
    still counts running jobs. Aborting jobs (`allow_abort_jobs`) is not
    offered: arq's abort requests go to its one global set. The health-check
    key defaults to the queue's slot (`names.health_key`).
    """

    # How many due entries one claim may look at (jobs other workers run are skipped, not counted).
    claim_scan_limit: ClassVar[int] = 10_000

    def __init__(
        self,
        functions: Sequence[Function | WorkerCoroutine] = (),
        *,
        fallback_poll_s: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if fallback_poll_s <= 0:
            raise ValueError("fallback_poll_s must be positive")
        if kwargs.get("allow_abort_jobs"):
            raise ValueError("WakingWorker does not offer arq's job aborts")
        kwargs.setdefault("job_serializer", serialize)
        kwargs.setdefault("job_deserializer", deserialize)
        pool = kwargs.get("redis_pool")
        queue = kwargs.get("queue_name") or (pool.default_queue_name if pool is not None else default_queue_name)
        kwargs.setdefault("health_check_key", health_key(queue))
        super().__init__(functions, **kwargs)
        if self._pool is not None and self._pool.job_serializer is None:
            # A pool made with ArqRedis.from_url would pickle the cron jobs arq enqueues through it.
            self._pool.job_serializer = self.job_serializer
            self._pool.job_deserializer = self.job_deserializer
        self.fallback_poll_s = fallback_poll_s
        self.poll_delay_s = 0.0
        self._wake = asyncio.Event()
        self._wake_subscription: Subscription | None = None
        self._next_due_ms: int | None = None
        self._more_due = False
        self._retries_seen = 0

    @property
    def wake_reconnects(self) -> int:
        """How many times the wake-up subscription was lost and made again."""
        return 0 if self._wake_subscription is None else self._wake_subscription.reconnects

    async def main(self) -> None:
        if self._pool is None:
            made = await create_pool(self.redis_settings, default_queue_name=self.queue_name)
            self._pool = QueueRedis(pool_or_conn=made.connection_pool, default_queue_name=self.queue_name)
        try:
            await super().main()
        finally:
            subscription, self._wake_subscription = self._wake_subscription, None
            if subscription is not None:
                await subscription.stop()

    async def _poll_iteration(self) -> None:
        if self._wake_subscription is None:
            # Subscribe before the first claim: anything enqueued later wakes us, anything earlier is claimed.
            await self._subscribe_to_wake_ups()
        else:
            await self._wait_for_work()
        self._wake.clear()
        await self.heart_beat()
        await self._claim_and_start()
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                task.result()  # as arq does: an error escaping run_job stops the worker

    async def _subscribe_to_wake_ups(self) -> None:
        subscription = Subscription(
            self.pool,
            wake_channel(self.queue_name, database_of(self.pool)),
            on_message=self._on_wake_up,
            on_subscribed=self._on_wake_subscribed,
            sharded=True,
            client_name=f"ainfera-wake:{self.queue_name}:{os.getpid()}:{id(self):x}",
        )
        await subscription.start()
        self._wake_subscription = subscription

    def _on_wake_up(self, _message: bytes) -> None:
        self._wake.set()

    def _on_wake_subscribed(self, first: bool) -> None:
        if not first:
            self._wake.set()  # wake-ups published while we were disconnected are lost

    async def _wait_for_work(self) -> None:
        timeout = self._seconds_until_next_check()
        if timeout <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()

    def _seconds_until_next_check(self) -> float:
        now = time.time()
        deadline = now + (min(self.fallback_poll_s, _BURST_RECHECK_S) if self.burst else self.fallback_poll_s)
        if self._next_due_ms is not None:
            deadline = min(deadline, self._next_due_ms / 1000)
        deadline = min(deadline, self._last_health_check + self.health_check_interval)
        for cron_job in self.cron_jobs:
            if cron_job.next_run is not None:
                # Wake inside arq's look-ahead window; run_cron then enqueues it deferred to next_run.
                deadline = min(deadline, cron_job.next_run.timestamp() - _CRON_LOOKAHEAD_S / 2)
        return max(0.0, deadline - now)

    def _free_slots(self) -> int:
        free = self.max_jobs - self.job_counter
        if self.burst and self.max_burst_jobs >= 0:
            free = min(free, self.max_burst_jobs - self._jobs_started())
        return free

    async def _claim_and_start(self) -> None:
        free = self._free_slots()
        if not self.allow_pick_jobs or free < 1:
            # No claim, so no fresh view of the queue: a finishing job triggers the next claim.
            self._next_due_ms = None
            self._more_due = True
            return
        claim = await claim_jobs(
            self.pool,
            self.queue_name,
            limit=free,
            in_progress_ms=int(self.in_progress_timeout_s * 1000),
            now_ms=timestamp_ms(),
            scan_limit=self.claim_scan_limit,
        )
        self._next_due_ms = claim.next_due_ms
        self._more_due = claim.maybe_more
        for job_id, score in claim.jobs:
            self._start(job_id, score)

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        # arq 0.28's finish_job, with the claim in the running set and no abort set.
        async with self.pool.pipeline(transaction=True) as tr:
            running = running_key(self.queue_name)
            if keep_in_progress is None:
                tr.zrem(running, job_id)
            else:
                tr.zadd(running, {job_id: timestamp_ms() + to_ms(keep_in_progress)}, xx=True)
            if finish:
                if result_data:
                    expire = None if keep_result_forever else result_timeout_s
                    tr.set(result_key_prefix + job_id, result_data, px=to_ms(expire))
                tr.delete(retry_key_prefix + job_id, job_key_prefix + job_id)
                tr.zrem(self.queue_name, job_id)
            elif incr_score:
                tr.zincrby(self.queue_name, incr_score, job_id)
            await tr.execute()

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        # arq 0.28's finish_failed_job, with the same two changes as finish_job.
        async with self.pool.pipeline(transaction=True) as tr:
            tr.delete(retry_key_prefix + job_id, job_key_prefix + job_id)
            tr.zrem(running_key(self.queue_name), job_id)
            tr.zrem(self.queue_name, job_id)
            keep_result = self.keep_result_forever or self.keep_result_s > 0
            if result_data is not None and keep_result:
                expire = 0 if self.keep_result_forever else self.keep_result_s
                tr.set(result_key_prefix + job_id, result_data, px=to_ms(expire))
            await tr.execute()

    def _start(self, job_id: str, score: int) -> None:
        previous = self.tasks.pop(job_id, None)
        if previous is not None and previous.done():
            previous.result()  # a retried job claimed again before its old task was reaped
        self.job_counter += 1
        task = self.loop.create_task(self.run_job(job_id, score))
        task.add_done_callback(self._job_finished)
        self.tasks[job_id] = task

    def _job_finished(self, _task: asyncio.Task[Any]) -> None:
        self.job_counter -= 1
        retried = self.jobs_retried != self._retries_seen
        self._retries_seen = self.jobs_retried
        if self._more_due or retried or self.burst or not self.allow_pick_jobs:
            self._wake.set()


_WORKER_PARAMETERS = frozenset(inspect.signature(Worker).parameters) | {"fallback_poll_s"}


def create_worker(settings: type | Mapping[str, Any], **overrides: Any) -> WakingWorker:
    """A WakingWorker from a WorkerSettings class (its own attributes) or a mapping, as arq's does."""
    source: Mapping[str, Any] = settings if isinstance(settings, Mapping) else vars(settings)
    picked = {name: value for name, value in source.items() if name in _WORKER_PARAMETERS}
    return WakingWorker(**{**picked, **overrides})


def run_worker(settings: type | Mapping[str, Any], **overrides: Any) -> WakingWorker:
    """Build a WakingWorker and run it until it is signalled to stop (or, in burst mode, until done)."""
    worker = create_worker(settings, **overrides)
    worker.run()
    return worker

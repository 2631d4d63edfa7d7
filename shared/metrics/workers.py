"""The worker process's view of its own queues, collected when it is scraped: busy and total
slots, and the jobs arq finished, failed and retried (arq counts them on each worker already, so
the hot path pays nothing for these)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from shared.metrics.scrape import queue_label


class CountsJobs(Protocol):
    """What arq's Worker keeps about its own jobs (`WakingWorker` is one)."""

    queue_name: str
    max_jobs: int
    job_counter: int
    jobs_complete: int
    jobs_failed: int
    jobs_retried: int


class WorkerSlots(Collector):
    def __init__(self, workers: Sequence[CountsJobs]) -> None:
        self._workers = workers

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        slots = GaugeMetricFamily("ainfera_worker_slots", "Worker slots of this process by queue: busy and total.",
                                  labels=("queue", "state"))
        jobs = CounterMetricFamily("ainfera_queue_jobs", "Queue jobs finished by arq, by outcome.",
                                   labels=("queue", "outcome"))
        retries = CounterMetricFamily("ainfera_queue_job_retries", "Queue jobs sent back to run again.",
                                      labels=("queue",))
        for w in self._workers:
            q = queue_label(w.queue_name)
            slots.add_metric((q, "busy"), w.job_counter)
            slots.add_metric((q, "total"), w.max_jobs)
            jobs.add_metric((q, "complete"), w.jobs_complete)
            jobs.add_metric((q, "failed"), w.jobs_failed)
            retries.add_metric((q,), w.jobs_retried)
        yield slots
        yield jobs
        yield retries

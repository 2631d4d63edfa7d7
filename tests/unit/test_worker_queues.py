"""A killed worker's jobs come back after their own timeout, not after the slowest housekeeping job's."""

from __future__ import annotations

import asyncio

import pytest

from shared.jobs import JOB_TIMEOUT_MARGIN_S
from shared.queue.names import QueueName
from shared.settings import Settings
from worker.main import QUEUES, build_worker


@pytest.fixture
def settings() -> Settings:
    return Settings(upstream_deadline_s=7, fanout_probe_timeout_s=5, provider_keys={})


@pytest.mark.parametrize(("queue", "timeout"), [
    (QueueName.INTERACTIVE, 7 + JOB_TIMEOUT_MARGIN_S),
    (QueueName.BATCH, 7 + JOB_TIMEOUT_MARGIN_S),
    (QueueName.PROBE, 5 + JOB_TIMEOUT_MARGIN_S),
])
def test_dispatch_queues_hold_in_progress_locks_only_as_long_as_their_jobs(settings, queue, timeout):
    asyncio.set_event_loop(asyncio.new_event_loop())
    worker = build_worker(settings, queue, res=None)
    assert worker.in_progress_timeout_s == timeout + 10


def test_the_batch_process_also_serves_housekeeping():
    assert QUEUES["batch"] == (QueueName.BATCH, QueueName.CONTROL)
    asyncio.set_event_loop(asyncio.new_event_loop())
    control = build_worker(Settings(provider_keys={}), QueueName.CONTROL, res=None)
    assert {"cron:supervise_batches", "cron:fanout_tick", "finalize_batch", "decide_fanout"} <= set(control.functions)

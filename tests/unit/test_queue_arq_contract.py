"""What the queue layer assumes about arq 0.28.0: version, key layout and the code WakingWorker builds on.

When an arq upgrade fails here, re-read the named arq code against shared/queue/worker.py,
enqueue.py and claim.py, adapt them, then update the digests.
"""

from __future__ import annotations

import hashlib
import inspect
import zlib
from typing import Any

import arq
import arq.connections
import arq.constants
import arq.jobs
import arq.utils
import arq.worker
import pytest
from redis.crc import key_slot

from shared.queue.names import (
    QueueName,
    arq_id,
    completion_channel,
    health_key,
    running_key,
    slot_tag,
    wake_channel,
)
from shared.queue.serializer import deserialize, serialize
from shared.queue.worker import WakingWorker, create_worker

# sha256 (first 16 hex digits) of the source of the arq code we override, call or mirror.
ARQ_SOURCE_DIGESTS = {
    "Worker.__init__": "edfb0cd7e05e77cf",  # attributes we read: job_counter, tasks, in_progress_timeout_s...
    "Worker.main": "45ca1591c9717466",  # the loop we keep: poll(poll_delay_s) -> _poll_iteration -> burst check
    "Worker._poll_iteration": "f8d39d823a0a59f2",  # replaced
    "Worker.start_jobs": "b45797cfa40bed7f",  # replaced by the Lua claim: same key, value and TTL
    "Worker.run_job": "589a19059ff84ee7",  # called as is
    "Worker.finish_job": "903f09c92830d3fd",  # mirrored with the running set, without arq:abort
    "Worker.finish_failed_job": "3e16087f318a7acf",  # mirrored likewise
    "Worker.heart_beat": "2e9959bea66dc551",  # cron look-ahead window mirrored in _CRON_LOOKAHEAD_S
    "Worker.run_cron": "7d2d3784e6567fb2",
    "Worker._cancel_aborted_jobs": "54575eaf8682f95b",
    "Worker._wait_for_tasks_to_complete": "c186389a00b11500",  # graceful shutdown needs tasks reaped
    "Worker._sleep_until_tasks_complete": "0acab214e9c111cb",
    "Worker.handle_sig": "985ff7ba01aa8f04",
    "Worker.close": "5bcc9cb356680829",
    "ArqRedis.enqueue_job": "7da8706a747c1171",  # mirrored by the enqueue script
    "serialize_job": "1fc854cc50e16e5c",
    "utils.poll": "d8cc8542a1ab2bc3",  # must not sleep when poll_delay_s is 0
    "constants": "ee9c72492437fc8f",  # key prefixes and expiry
}


def _arq_objects() -> dict[str, Any]:
    worker = arq.worker.Worker
    objects: dict[str, Any] = {
        f"Worker.{name.split('.', 1)[1]}": getattr(worker, name.split(".", 1)[1])
        for name in ARQ_SOURCE_DIGESTS
        if name.startswith("Worker.")
    }
    objects["ArqRedis.enqueue_job"] = arq.connections.ArqRedis.enqueue_job
    objects["serialize_job"] = arq.jobs.serialize_job
    objects["utils.poll"] = arq.utils.poll
    objects["constants"] = arq.constants
    return objects


def test_arq_is_the_pinned_version() -> None:
    assert arq.VERSION == "0.28.0"


def test_arq_code_we_build_on_is_unchanged() -> None:
    changed = {
        name: hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]
        for name, obj in _arq_objects().items()
        if hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16] != ARQ_SOURCE_DIGESTS[name]
    }
    assert changed == {}, f"arq code changed, re-check shared/queue against it: {changed}"


def test_arq_key_layout_is_the_one_the_lua_scripts_use() -> None:
    assert arq.constants.job_key_prefix == "arq:job:"
    assert arq.constants.in_progress_key_prefix == "arq:in-progress:"
    assert arq.constants.result_key_prefix == "arq:result:"
    assert arq.constants.expires_extra_ms == 86_400_000


def test_waking_worker_overrides_only_the_documented_methods() -> None:
    overridden = {
        name for name, value in vars(WakingWorker).items() if callable(value) and hasattr(arq.worker.Worker, name)
    }
    assert overridden == {"__init__", "main", "_poll_iteration", "finish_job", "finish_failed_job"}


def test_queue_names_and_their_wake_channels() -> None:
    assert [q.value for q in QueueName] == [
        "ainfera:queue:interactive",
        "ainfera:queue:batch",
        "ainfera:queue:probe",
        "ainfera:queue:control",
    ]
    assert wake_channel(QueueName.BATCH, 0) == "{ainfera:queue:batch}:wake:0"
    assert wake_channel(QueueName.BATCH, 11) == "{ainfera:queue:batch}:wake:11"
    assert completion_channel("abc") == f"ainfera:done:{{done-{zlib.crc32(b'abc') % 16}}}:abc"
    tags = {slot_tag(completion_channel(f"gateway-{i}")) for i in range(1000)}
    assert len(tags) == 16  # however many gateways came and went: 16 slots


def test_everything_a_queue_touches_is_in_the_queue_s_slot() -> None:
    for queue in [*QueueName, "plain-test-queue", "ainfera:{tenant-1}:queue"]:
        slot = key_slot(str(queue).encode())
        queued = arq_id(queue, "job-1")
        names = [f"{prefix}{queued}" for prefix in ("arq:job:", "arq:result:", "arq:retry:")]
        names += [running_key(queue), health_key(queue), wake_channel(queue, 3)]
        assert {key_slot(name.encode()) for name in names} == {slot}, queue
    assert slot_tag("ainfera:{tenant-1}:queue") == "tenant-1"
    assert slot_tag("a:{}:b") == "a:{}:b"  # an empty tag does not count, as in Redis
    assert arq_id(QueueName.INTERACTIVE, "j") == "{ainfera:queue:interactive}j"


def test_a_worker_refuses_arq_aborts_whose_set_is_global() -> None:
    with pytest.raises(ValueError, match="aborts"):
        WakingWorker([], allow_abort_jobs=True, handle_signals=False)


async def test_create_worker_reads_worker_settings_and_defaults_to_json() -> None:
    async def job(ctx: dict[str, Any]) -> None:
        return None

    class Settings:
        functions = [job]
        queue_name = QueueName.BATCH
        max_jobs = 7
        job_timeout = 12
        keep_result = 0
        fallback_poll_s = 2.5
        unrelated = "ignored"

    worker = create_worker(Settings, handle_signals=False)
    assert isinstance(worker, WakingWorker)
    assert (worker.queue_name, worker.max_jobs, worker.job_timeout_s) == (QueueName.BATCH, 7, 12)
    assert worker.keep_result_s == 0
    assert worker.fallback_poll_s == 2.5
    assert worker.job_serializer is serialize
    assert worker.job_deserializer is deserialize
    assert worker.in_progress_timeout_s == 22  # arq's rule: longest timeout + 10 s


async def test_a_given_pool_without_a_serializer_is_made_to_speak_json() -> None:
    async def job(ctx: dict[str, Any]) -> None:
        return None

    pool = arq.connections.ArqRedis.from_url("redis://127.0.0.1:6379/11")  # no connection is made here
    worker = WakingWorker([job], redis_pool=pool, handle_signals=False)
    assert worker.pool.job_serializer is serialize
    assert worker.pool.job_deserializer is deserialize

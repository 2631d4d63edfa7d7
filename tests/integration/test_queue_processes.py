"""WakingWorker as a real process: killed mid-job, stopped gracefully, and idle."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from arq.connections import ArqRedis

from shared.queue.enqueue import enqueue
from shared.queue.names import QueueName, arq_id, health_key, running_key
from tests.integration.queue_jobs import EVENTS, RUNS, fresh_pool, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def pool() -> AsyncIterator[ArqRedis]:
    pool = await fresh_pool()
    yield pool
    await pool.aclose()


@contextmanager
def worker_process(settings: str, *args: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.queue_jobs", settings, *args],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


async def _exited(process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is not None


async def test_a_job_whose_worker_was_killed_runs_again_on_another_worker(pool: ArqRedis, tmp_path: Path) -> None:
    await enqueue(pool, QueueName.BATCH, "stuck_on_first_try", job_id="victim", kwargs={})

    with worker_process("KillableSettings", "1.5", log=tmp_path / "first.log") as first:
        await wait_until(lambda: _runs_of(pool, "victim", 1))
        first.send_signal(signal.SIGKILL)
        await wait_until(lambda: _exited(first))
    # Left behind by the killed worker: its claim, until the claim lapses.
    assert await pool.zscore(running_key(QueueName.BATCH), arq_id(QueueName.BATCH, "victim")) is not None

    with worker_process("KillableSettings", "1.5", log=tmp_path / "second.log"):
        await wait_until(lambda: _gone_from_queue(pool, "victim"), within_s=15)

    assert await pool.hget(RUNS, "victim") == b"2"
    assert int(await pool.get("arq:retry:" + arq_id(QueueName.BATCH, "victim")) or 0) == 0  # deleted at the end
    assert await pool.zcard(running_key(QueueName.BATCH)) == 0


async def _runs_of(pool: ArqRedis, job_id: str, n: int) -> bool:
    return int(await pool.hget(RUNS, job_id) or 0) >= n


async def _gone_from_queue(pool: ArqRedis, job_id: str) -> bool:
    return await pool.zscore(QueueName.BATCH, arq_id(QueueName.BATCH, job_id)) is None


async def test_sigterm_lets_the_running_job_finish_first(pool: ArqRedis, tmp_path: Path) -> None:
    await enqueue(pool, QueueName.BATCH, "slow_then_record", job_id="graceful", kwargs={"seconds": 1.0})
    with worker_process("GracefulSettings", log=tmp_path / "worker.log") as process:
        await wait_until(lambda: _events_include(pool, b"started"))
        process.send_signal(signal.SIGTERM)
        await wait_until(lambda: _exited(process), within_s=15)
        assert process.returncode == 0, (tmp_path / "worker.log").read_text()

    assert await pool.lrange(EVENTS, 0, -1) == [b"started", b"finished"]
    assert await pool.zcard(QueueName.BATCH) == 0
    assert not await pool.exists("arq:job:" + arq_id(QueueName.BATCH, "graceful"))


async def _events_include(pool: ArqRedis, event: bytes) -> bool:
    return event in await pool.lrange(EVENTS, 0, -1)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


async def test_an_idle_worker_uses_almost_no_cpu(pool: ArqRedis, tmp_path: Path) -> None:
    with worker_process("IdleSettings", log=tmp_path / "worker.log") as process:
        await wait_until(lambda: _health_check_written(pool))
        loop = asyncio.get_running_loop()
        cpu_before, wall_before = _cpu_seconds(process.pid), loop.time()
        await asyncio.sleep(4)  # the measurement window itself
        cpu_used, wall = _cpu_seconds(process.pid) - cpu_before, loop.time() - wall_before
    share = cpu_used / wall
    print(f"idle WakingWorker: {cpu_used * 1000:.0f} ms CPU over {wall:.1f} s = {share:.2%} of a core")
    assert share < 0.01


async def _health_check_written(pool: ArqRedis) -> bool:
    return bool(await pool.exists(health_key(QueueName.PROBE)))

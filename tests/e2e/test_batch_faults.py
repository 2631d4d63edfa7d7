"""A batch keeps its promises through infrastructure faults: Redis losing its data, a worker
killed mid-job, Postgres restarting. Gateway, workers and simulated provider run as processes
against a database of their own and Redis db 15.

Whatever the fault, the batch completes, every line is reported exactly once, every executed
line has exactly one receipt and one audit event, and the tenant's audit chain verifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from shared.queue.names import QueueName, running_key
from tests.e2e.batch_helpers import (
    Stack,
    batch_lines,
    check_batch_trail,
    open_lines_report,
    running_stack,
    submit_batch,
    wait_until_final,
    wait_until_under_way,
)
from tests.harness import PG_ADMIN_DSN

pytestmark = pytest.mark.e2e

LINES = 400  # 10 slots x 100 ms a line: about 4 s of work
UNDER_WAY = 80  # the fault strikes once this many lines have finished


@contextlib.contextmanager
def system(log_dir: Path, **env: str) -> Iterator[tuple[Stack, httpx.Client]]:
    with running_stack(log_dir, **env) as stack, httpx.Client(base_url=stack.base_url, timeout=10) as client:
        yield stack, client


def _start(stack: Stack, client: httpx.Client, name: str) -> tuple[str, dict[str, str], list[dict], set[str], str]:
    """A tenant of its own submits the batch; returns once it is well under way."""
    tenant_id, auth = stack.new_tenant(name)
    lines, failing = batch_lines(LINES)
    batch_id = submit_batch(client, auth, lines)
    wait_until_under_way(client, auth, batch_id, UNDER_WAY)
    return tenant_id, auth, lines, failing, batch_id


def test_a_batch_completes_once_after_redis_loses_everything(tmp_path: Path):
    """FLUSHDB on the system's Redis database mid-batch: the issue's FLUSHALL, restricted to our
    database (db 15) so that other databases on this Redis server are untouched.

    Queued lines lose their queue entries and the supervisor loses its epoch marker; its
    reconciler must queue the stored lines again, and lines that were running must not be
    charged twice.
    """
    with system(tmp_path) as (stack, client):
        tenant_id, auth, lines, failing, batch_id = _start(stack, client, "flushed")
        with stack.redis() as r, r.pipeline(transaction=True) as pipe:
            pipe.zrange(str(QueueName.BATCH), 0, -1)
            pipe.zrange(running_key(QueueName.BATCH), 0, -1)
            pipe.flushdb()
            queued, in_progress, _ = pipe.execute()
        waiting = {q.decode() for q in queued} - {k.decode() for k in in_progress}
        assert waiting, "the flush took no waiting queue entry with it"

        done = wait_until_final(client, auth, batch_id, 60, lambda: open_lines_report(stack, batch_id))
        check_batch_trail(stack, client, auth, tenant_id, done, lines, failing)


def test_a_batch_completes_once_after_a_worker_is_killed_mid_job(tmp_path: Path):
    """SIGKILL the only worker while it runs batch lines, then start a new one.

    The killed worker's lines stay `running` in Postgres with their claims in the queue's running set;
    arq runs them again once those keys expire (job timeout + 10 s; the job timeout is the
    upstream deadline + 30 s, so the deadline is lowered to 2 s here). Lines it had finished
    but not acknowledged to arq must not run again, and none may be charged twice.
    """
    with system(tmp_path, AINFERA_UPSTREAM_DEADLINE_S="2") as (stack, client):
        tenant_id, auth, lines, failing, batch_id = _start(stack, client, "killed")
        running = stack.db("SELECT count(*) AS n FROM jobs WHERE batch_id = $1 AND status = 'running'",
                           batch_id)[0]["n"]
        assert running > 0, "no line was running when the worker was due to be killed"
        stack.kill("worker-1")
        orphans = [j["id"] for j in stack.db(
            "SELECT id FROM jobs WHERE batch_id = $1 AND status = 'running'", batch_id)]
        assert orphans, "the killed worker left no line running"
        stack.start_worker()

        # A correct system needs at most the claim's lapse (42 s here) or the supervisor
        # lock the killed worker may have held (60 s), plus the rest of the batch.
        done = wait_until_final(client, auth, batch_id, 100, lambda: open_lines_report(stack, batch_id))
        check_batch_trail(stack, client, auth, tenant_id, done, lines, failing)


# --- Postgres restart ------------------------------------------------------------------------------


def _cluster() -> tuple[str, str] | None:
    """(version, name) of the local Postgres cluster the tests use, if this user can restart it."""
    if shutil.which("pg_ctlcluster") is None or not os.path.isdir("/etc/postgresql"):
        return None
    if os.geteuid() != 0 and getpass.getuser() != "postgres":
        return None
    versions = sorted(os.listdir("/etc/postgresql"))
    if not versions or "127.0.0.1:5432" not in PG_ADMIN_DSN:
        return None
    return versions[-1], "main"


def _pg_ctlcluster(action: str, cluster: tuple[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action],
                          capture_output=True, text=True, timeout=120, check=False)


def _accepts_connections() -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=2)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False
        try:
            return bool(await conn.fetchval("SELECT 1"))
        finally:
            await conn.close()

    return asyncio.run(probe())


def _wait_accepting(timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _accepts_connections():
            return True
        time.sleep(0.2)
    return False


def _ensure_postgres_back(cluster: tuple[str, str]) -> None:
    if not _wait_accepting(30):
        _pg_ctlcluster("start", cluster)
        assert _wait_accepting(60), "Postgres does not accept connections after the test restarted it"


def _restart_postgres(cluster: tuple[str, str]) -> None:
    """Restart the cluster (fast shutdown: every session is terminated) and wait until it is back."""
    try:
        restart = _pg_ctlcluster("restart", cluster)
        assert restart.returncode == 0, restart.stderr
    finally:
        _ensure_postgres_back(cluster)


@pytest.fixture
def postgres_cluster() -> Iterator[tuple[str, str]]:
    """The cluster to restart; whatever happens in the test, Postgres accepts connections afterwards."""
    cluster = _cluster()
    if cluster is None:
        pytest.skip("needs the local Postgres cluster, pg_ctlcluster, and root or the postgres user")
    try:
        yield cluster
    finally:
        _ensure_postgres_back(cluster)


def test_a_batch_completes_once_after_postgres_restarts(tmp_path: Path, postgres_cluster: tuple[str, str]):
    """Restart Postgres mid-batch: every connection of the gateway and the workers breaks,
    running lines fail to record their outcome and are retried, the supervisor's ticks fail
    until the database is back.
    """
    with system(tmp_path) as (stack, client):
        tenant_id, auth, lines, failing, batch_id = _start(stack, client, "restarted")
        _restart_postgres(postgres_cluster)

        done = wait_until_final(client, auth, batch_id, 60, lambda: open_lines_report(stack, batch_id))
        check_batch_trail(stack, client, auth, tenant_id, done, lines, failing)


def test_a_stream_whose_worker_is_killed_ends_with_one_receipt(tmp_path: Path):
    """SIGKILL the worker in the middle of a streamed job. The caller's stream ends with an error
    event once nothing comes (the idle timeout); arq delivers the job again after its claim
    lapses, and the new attempt, finding nobody listening, stops at its first chunk: one
    receipt and one audit event for the job, `cancelled`, and no second full upstream call."""
    env = {"AINFERA_UPSTREAM_DEADLINE_S": "2", "AINFERA_STREAM_IDLE_TIMEOUT_S": "2"}
    with system(tmp_path, **env) as (stack, client):
        _, auth = stack.new_tenant("streamer")
        body = {"model": "deepseek-v4-flash@deepinfra", "stream": True,
                "messages": [{"role": "user", "content": "A long story please. [sim:chunk-ms=300]"}]}
        events: list[str] = []
        with client.stream("POST", "/v1/chat/completions", json=body, headers=auth) as response:
            assert response.status_code == 200
            job_id = response.headers["x-ainfera-job-id"]
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(line)
                    if len(events) == 2:
                        stack.kill("worker-1")
                        stack.start_worker()
        assert '"stream_interrupted"' in events[-1] and "[DONE]" not in events[-1]
        deadline = time.monotonic() + 90  # the claim lapses after the job timeout + 10 s
        while not stack.db("SELECT 1 FROM receipts WHERE job_id = $1", job_id) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1)  # a second receipt, if there were one, would be written by now
        receipts = stack.db("SELECT status, error_code FROM receipts WHERE job_id = $1", job_id)
        assert [(r["status"], r["error_code"]) for r in receipts] == [("cancelled", "client_disconnected")]
        assert len(stack.db("SELECT 1 FROM audit_events WHERE job_id = $1", job_id)) == 1
        assert stack.db("SELECT status FROM jobs WHERE id = $1", job_id)[0]["status"] == "cancelled"

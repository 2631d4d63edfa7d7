"""The whole system as processes for batch fault tests, and the checks of what a batch left behind.

`running_stack` runs the simulated provider, the gateway and a worker against a database of its
own and Redis db 15, and the `Stack` it yields can SIGKILL and start workers. `check_batch_trail`
reads a finished batch's output and error files, jobs, receipts and audit chain and asserts that
every line was reported once, charged once and audited once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import orjson
from arq.constants import job_key_prefix
from redis import Redis

from shared.audit.chain import verify_events
from shared.queue.names import QueueName, arq_id, running_key
from tests.e2e.conftest import base_env, wait_http
from tests.harness import REDIS_BASE, create_template, drop_database, dsn_for, free_port

REDIS_DB = 15
MODEL = "gpt-oss-20b@groq"
UNKNOWN_MODEL = "gpt-9@nowhere"
FINAL = ("completed", "failed", "expired", "cancelled")
# A shallow queue and few batch slots: a batch of a few hundred 100 ms lines takes seconds, and at
# any moment some of its lines are running, some are queued in Redis and some are not yet fed.
THROTTLED = {
    "AINFERA_BATCH_WORKER_MAX_JOBS": "10",
    "AINFERA_BATCH_QUEUE_WATERMARK": "50",
    "AINFERA_BATCH_FEED_CHUNK": "25",
    "AINFERA_WORKER_POLL_FALLBACK_S": "0.5",
    "AINFERA_WORKER_JOB_COMPLETION_WAIT_S": "2",
    "AINFERA_SIM_LATENCY_MS": "5",
}

T = TypeVar("T")


# --- the system as processes -------------------------------------------------------------------


@dataclass
class Stack:
    base_url: str
    database_url: str
    env: dict[str, str]
    log_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    workers_started: int = 0

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.log_dir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "shared.cli.main", *args], env=self.env,
                                    stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def start_worker(self) -> str:
        self.workers_started += 1
        name = f"worker-{self.workers_started}"
        self.start(name, "worker")
        return name

    def kill(self, name: str) -> None:
        """SIGKILL: no handler runs, no running job finishes, nothing is cleaned up in Redis."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        running = [p for p in self.procs.values() if p.poll() is None]
        for p in running:
            p.send_signal(signal.SIGTERM)
        for p in running:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

    def new_tenant(self, name: str) -> tuple[str, dict[str, str]]:
        """A fresh tenant (its audit chain then holds only this test's events) and its auth header."""
        out = subprocess.run([sys.executable, "-m", "shared.cli.main", "tenant", "create", "--name", name],
                             env=self.env, capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        created = orjson.loads(out.stdout)
        return created["tenant_id"], {"Authorization": f"Bearer {created['api_key']}"}

    def redis(self) -> Redis:
        return Redis.from_url(self.env["AINFERA_REDIS_URL"])

    def db(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """Run one query on a connection of its own (so it works across a Postgres restart)."""

        async def run() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.database_url)
            try:
                return list(await conn.fetch(query, *args))
            finally:
                await conn.close()

        return asyncio.run(run())


def flush_our_redis() -> None:
    with Redis.from_url(f"{REDIS_BASE}/{REDIS_DB}") as r:
        r.flushdb()


@contextlib.contextmanager
def running_stack(log_dir: Path, **env: str) -> Iterator[Stack]:
    """A fresh migrated and seeded database, Redis db 15 flushed, and sim, gateway and one worker."""
    name = f"ainfera_faults_{uuid.uuid4().hex[:10]}"
    asyncio.run(create_template(name))
    flush_our_redis()
    gw_port, sim_port = free_port(), free_port()
    stack_env = base_env(dsn_for(name), REDIS_DB)
    stack_env.update({
        "AINFERA_GATEWAY_PORT": str(gw_port),
        "AINFERA_SIM_PORT": str(sim_port),
        "AINFERA_UPSTREAM_OVERRIDE": f"http://127.0.0.1:{sim_port}",
        **THROTTLED,
        **env,
    })
    stack = Stack(f"http://127.0.0.1:{gw_port}", dsn_for(name), stack_env, log_dir)
    try:
        sim = stack.start("sim-provider", "sim-provider")
        stack.start_worker()
        gateway = stack.start("gateway", "gateway")
        wait_http(f"http://127.0.0.1:{sim_port}/healthz", sim)
        wait_http(f"{stack.base_url}/readyz", gateway)
        yield stack
    finally:
        stack.stop()
        flush_our_redis()
        asyncio.run(drop_database(name))


# --- a batch through the API -------------------------------------------------------------------


def batch_lines(n: int, *, fail_every: int = 40) -> tuple[list[dict[str, Any]], set[str]]:
    """n request lines of about 100 ms each, and the custom_ids of those that are meant to fail.

    Every `fail_every`-th line is refused by the provider (HTTP 400, never retried) and the last
    one names a model that does not exist, so the error file has lines too.
    """
    lines: list[dict[str, Any]] = []
    failing: set[str] = set()
    for i in range(1, n + 1):
        custom_id = f"line-{i:04d}"
        text = f"question {i} [sim:latency=100]"
        model = MODEL
        if i % fail_every == 0:
            text += " [sim:fail=400]"
            failing.add(custom_id)
        if i == n:
            model = UNKNOWN_MODEL
            failing.add(custom_id)
        lines.append({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
                      "body": {"model": model, "messages": [{"role": "user", "content": text}]}})
    return lines, failing


def submit_batch(client: httpx.Client, auth: dict[str, str], lines: list[dict[str, Any]]) -> str:
    content = b"".join(orjson.dumps(ln) + b"\n" for ln in lines)
    up = client.post("/v1/files", headers=auth, data={"purpose": "batch"},
                     files={"file": ("requests.jsonl", content, "application/jsonl")})
    assert up.status_code == 200, up.text
    created = client.post("/v1/batches", headers=auth, json={
        "input_file_id": up.json()["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"})
    assert created.status_code == 200, created.text
    batch_id: str = created.json()["id"]
    return batch_id


def get_batch(client: httpx.Client, auth: dict[str, str], batch_id: str) -> dict[str, Any] | None:
    """The batch object, or None while the gateway cannot answer (the fault may be in progress)."""
    try:
        r = client.get(f"/v1/batches/{batch_id}", headers=auth)
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    batch: dict[str, Any] = r.json()
    return batch


def wait_for(probe: Callable[[], T | None], timeout_s: float, what: Callable[[], str]) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what()}")
        time.sleep(0.05)


def wait_until_under_way(client: httpx.Client, auth: dict[str, str], batch_id: str, done: int) -> dict[str, Any]:
    """Wait until at least `done` lines finished; the batch must still be in progress then."""

    def probe() -> dict[str, Any] | None:
        b = get_batch(client, auth, batch_id)
        if b is None or b["request_counts"]["completed"] + b["request_counts"]["failed"] < done:
            return None
        return b

    b = wait_for(probe, 30, lambda: f"{done} finished lines of {batch_id}")
    counts = b["request_counts"]
    assert b["status"] == "in_progress" and counts["completed"] + counts["failed"] < counts["total"], (
        "the batch was not under way any more when the fault was due; make it longer", b)
    return b


def wait_until_final(client: httpx.Client, auth: dict[str, str], batch_id: str, timeout_s: float,
                     diagnose: Callable[[], str]) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        b = get_batch(client, auth, batch_id)
        return b if b is not None and b["status"] in FINAL else None

    return wait_for(probe, timeout_s, lambda: f"batch {batch_id} to finish; {diagnose()}")


def file_lines(client: httpx.Client, auth: dict[str, str], file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    r = client.get(f"/v1/files/{file_id}/content", headers=auth)
    assert r.status_code == 200, r.text
    return [orjson.loads(x) for x in r.content.splitlines() if x.strip()]


# --- what a finished batch left behind ---------------------------------------------------------


def open_lines_report(stack: Stack, batch_id: str) -> str:
    """Where a stuck batch's unfinished lines are: their status and their arq keys in Redis."""
    by_status = stack.db("SELECT status, count(*) AS n FROM jobs WHERE batch_id = $1 GROUP BY status", batch_id)
    batch = stack.db("SELECT status, total, fed_through, completed, failed FROM batches WHERE id = $1", batch_id)
    open_jobs = stack.db("SELECT id, status, started_at FROM jobs WHERE batch_id = $1 "
                         "AND status IN ('queued', 'running') ORDER BY line_no LIMIT 3", batch_id)
    with stack.redis() as r:
        queue = QueueName.BATCH
        keys = [
            {"job": j["id"], "status": j["status"],
             "job_key": bool(r.exists(job_key_prefix + arq_id(queue, j["id"]))),
             "claim_lapses_at_ms": r.zscore(running_key(queue), arq_id(queue, j["id"]))}
            for j in open_jobs
        ]
    return (f"batch row {[dict(b) for b in batch]}, jobs by status {[dict(s) for s in by_status]}, "
            f"first open lines in Redis {keys}; process logs in {stack.log_dir}")


@dataclass(frozen=True)
class Trail:
    jobs: list[asyncpg.Record]
    receipts: list[asyncpg.Record]
    events: list[asyncpg.Record]


def read_trail(stack: Stack, tenant_id: str, batch_id: str) -> Trail:
    tenant = uuid.UUID(tenant_id)
    return Trail(
        jobs=stack.db("SELECT id, line_no, custom_id, status, receipt_id FROM jobs WHERE batch_id = $1", batch_id),
        receipts=stack.db("SELECT id, job_id, status FROM receipts WHERE tenant_id = $1", tenant),
        events=stack.db("SELECT seq, event_type, job_id, payload, previous_hash, event_hash FROM audit_events "
                        "WHERE tenant_id = $1 ORDER BY seq", tenant),
    )


def check_batch_trail(stack: Stack, client: httpx.Client, auth: dict[str, str], tenant_id: str,
                      batch: dict[str, Any], lines: list[dict[str, Any]], failing: set[str]) -> None:
    """Every line reported exactly once, one receipt and one audit event per job, a valid chain.

    The tenant ran nothing but this batch, so its receipts and audit events are the batch's.
    """
    assert batch["status"] == "completed", batch
    output = file_lines(client, auth, batch["output_file_id"])
    errors = file_lines(client, auth, batch["error_file_id"])
    expected = [ln["custom_id"] for ln in lines]

    # The files: each input custom_id exactly once, in one of them; failures are the planned ones.
    reported = Counter(o["custom_id"] for o in output) + Counter(e["custom_id"] for e in errors)
    assert sorted(c for c, n in reported.items() if n > 1) == [], "custom_ids reported more than once"
    assert sorted(set(expected) - set(reported)) == [], "custom_ids missing from both files"
    assert sorted(set(reported) - set(expected)) == [], "custom_ids that were never submitted"
    assert {e["custom_id"] for e in errors} == failing
    assert batch["request_counts"] == {"total": len(lines), "completed": len(output), "failed": len(errors)}

    trail = read_trail(stack, tenant_id, batch["id"])
    jobs = {j["id"]: j for j in trail.jobs}
    assert len(jobs) == len(lines) and {j["custom_id"] for j in trail.jobs} == set(expected)
    assert Counter(j["status"] for j in trail.jobs) == {"succeeded": len(output), "failed": len(errors)}

    # Receipts: exactly one per executed line, none for anything else, the one the job points at.
    per_job = Counter(r["job_id"] for r in trail.receipts)
    assert sorted(j for j, n in per_job.items() if n > 1) == [], "jobs with more than one receipt"
    assert set(per_job) == set(jobs), "receipts and executed lines differ"
    receipt_of = {r["job_id"]: r for r in trail.receipts}
    for job_id, job in jobs.items():
        assert job["receipt_id"] == receipt_of[job_id]["id"], job_id
        assert receipt_of[job_id]["status"] == job["status"], job_id

    # The output file's lines are the jobs that succeeded; the error file's ran and failed.
    for o in output:
        job_id = o["response"]["request_id"]
        assert jobs[job_id]["custom_id"] == o["custom_id"]
        assert receipt_of[job_id]["status"] == "succeeded", o["custom_id"]
        assert o["response"]["status_code"] == 200 and o["error"] is None
    for e in errors:
        assert e["response"] is not None, e  # it ran: nothing was left over as expired
        assert receipt_of[e["response"]["request_id"]]["status"] == "failed", e["custom_id"]

    # Audit: one event per finished job, of the matching type, and the tenant's chain verifies.
    events_per_job = Counter(ev["job_id"] for ev in trail.events)
    assert sorted(j for j, n in events_per_job.items() if n > 1) == [], "jobs with more than one audit event"
    assert set(events_per_job) == set(jobs), "audit events and finished jobs differ"
    for ev in trail.events:
        wanted = "inference.routed" if jobs[ev["job_id"]]["status"] == "succeeded" else "inference.failed"
        assert ev["event_type"] == wanted, dict(ev)
    checked, broken = verify_events([dict(ev) for ev in trail.events])
    assert broken is None, broken
    assert checked == len(trail.events) == len(lines)

"""Start the whole system (simulated provider, worker, gateway) as processes for a benchmark.

A fresh database is created, migrated and seeded, and dropped afterwards; Redis uses
its own db number. Nothing here is imported by the product.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from shared.catalog.seed import seed_catalog
from shared.db.migrate import drop_database as drop_dsn
from shared.db.migrate import ensure_database, migrate
from shared.db.pool import connect

PG_ADMIN = os.environ.get("AINFERA_BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("AINFERA_BENCH_REDIS", "redis://127.0.0.1:6379")


def _signing_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    gateway_url: str
    sim_url: str
    api_key: str
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]]  # simulator, workers..., gateway

    @property
    def gateway_pid(self) -> int:
        return self.procs[-1].pid

    @property
    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.procs[1:-1]]


def dsn_of(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


async def create_database(name: str) -> str:
    """A fresh, migrated, seeded database; its DSN."""
    dsn = dsn_of(name)
    await ensure_database(dsn)
    await migrate(dsn)
    conn = await connect(dsn)
    try:
        await seed_catalog(conn)
    finally:
        await conn.close()
    return dsn


async def drop_database(name: str) -> None:
    await drop_dsn(dsn_of(name))


def _wait(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(url)


@contextlib.contextmanager
def running_stack(*, sim_latency_ms: float = 50, redis_db: int = 14, workers: int = 1,
                  worker_queues: list[list[str]] | None = None,
                  extra_env: dict[str, str] | None = None, pgbouncer_port: int | None = None) -> Iterator[Stack]:
    """`workers` processes serving every queue, or one process per entry of `worker_queues`;
    with `pgbouncer_port`, their pools go through that PgBouncer (transaction mode)."""
    name = f"ainfera_bench_{uuid.uuid4().hex[:8]}"
    dsn = asyncio.run(create_database(name))
    gw, sim = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("AINFERA_")}
    env.update({
        "AINFERA_DATABASE_URL": dsn,
        "AINFERA_REDIS_URL": f"{REDIS}/{redis_db}",
        "AINFERA_GATEWAY_PORT": str(gw),
        "AINFERA_SIM_PORT": str(sim),
        "AINFERA_SIM_LATENCY_MS": str(sim_latency_ms),
        "AINFERA_UPSTREAM_OVERRIDE": f"http://127.0.0.1:{sim}",
        "AINFERA_LOG_LEVEL": "WARNING",
        "AINFERA_LOG_FORMAT": "json",
        "AINFERA_SIGNING_KEY": _signing_key(),
        **(extra_env or {}),
    })
    if pgbouncer_port is not None:
        env.update({"AINFERA_DATABASE_URL": dsn.replace(":5432/", f":{pgbouncer_port}/"),
                    "AINFERA_DATABASE_DIRECT_URL": dsn, "AINFERA_DATABASE_POOLER": "pgbouncer"})
    subprocess.run(["redis-cli", "-u", f"{REDIS}/{redis_db}", "flushdb"], check=False, capture_output=True)
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(*args: str) -> None:
        procs.append(subprocess.Popen([sys.executable, "-m", "shared.cli.main", *args], env=env))

    try:
        spawn("sim-provider")
        for queues in worker_queues or [[] for _ in range(workers)]:
            spawn("worker", *[arg for q in queues for arg in ("--queue", q)])
        spawn("gateway")
        _wait(f"http://127.0.0.1:{sim}/healthz")
        _wait(f"http://127.0.0.1:{gw}/readyz")
        out = subprocess.run([sys.executable, "-m", "shared.cli.main", "tenant", "create", "--name", "bench"],
                             env=env, capture_output=True, text=True, check=True)
        key = json.loads(out.stdout)["api_key"]
        yield Stack(f"http://127.0.0.1:{gw}", f"http://127.0.0.1:{sim}", key, env, procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        asyncio.run(drop_database(name))
        subprocess.run(["redis-cli", "-u", f"{REDIS}/{redis_db}", "flushdb"], check=False, capture_output=True)

"""End-to-end fixtures: gateway, worker and simulated provider as separate processes,
started with the `ainfera-dispatch` console script against a fresh database and Redis db 10."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import anthropic
import openai
import pytest
from redis import Redis

from tests.harness import REDIS_BASE, SIGNING_KEY_PEM, create_template, drop_database, dsn_for, free_port

REDIS_DB = 10
ADMIN_KEY = "e2e-admin-key-0123456789"


@dataclass
class System:
    base_url: str
    sim_url: str
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "shared.cli.main", *args], env=self.env, capture_output=True,
                              text=True, timeout=60, check=False)

    def openai_client(self, api_key: str) -> openai.OpenAI:
        """The official SDK pointed at the gateway, as its docs configure a base URL (no retries)."""
        return openai.OpenAI(base_url=f"{self.base_url}/v1", api_key=api_key, max_retries=0)

    def anthropic_client(self, api_key: str) -> anthropic.Anthropic:
        """The official `anthropic` SDK pointed at the gateway as its docs show (it appends /v1/messages)."""
        return anthropic.Anthropic(base_url=self.base_url, api_key=api_key, max_retries=0)

    def new_tenant(self, name: str = "e2e") -> dict[str, str]:
        out = self.cli("tenant", "create", "--name", name)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)


def base_env(database_url: str, redis_db: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("AINFERA_")}
    env.update({
        "AINFERA_DATABASE_URL": database_url,
        "AINFERA_REDIS_URL": f"{REDIS_BASE}/{redis_db}",
        "AINFERA_ADMIN_API_KEY": ADMIN_KEY,
        "AINFERA_SIGNING_KEY": SIGNING_KEY_PEM,
        "AINFERA_LOG_FORMAT": "json",
        "AINFERA_LOG_LEVEL": "WARNING",
    })
    return env


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(url)


def stop(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.fixture(scope="session")
def e2e_database() -> Iterator[str]:
    name = f"ainfera_e2e_{uuid.uuid4().hex[:10]}"
    asyncio.run(create_template(name))
    yield dsn_for(name)
    asyncio.run(drop_database(name))


@pytest.fixture(scope="session")
def system(e2e_database: str) -> Iterator[System]:
    Redis.from_url(f"{REDIS_BASE}/{REDIS_DB}").flushdb()
    gw_port, sim_port = free_port(), free_port()
    env = base_env(e2e_database, REDIS_DB)
    env.update({
        "AINFERA_GATEWAY_PORT": str(gw_port),
        "AINFERA_SIM_PORT": str(sim_port),
        "AINFERA_SIM_LATENCY_MS": "5",
        "AINFERA_UPSTREAM_OVERRIDE": f"http://127.0.0.1:{sim_port}",
    })
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in ("sim-provider", "worker", "gateway"):
            procs[name] = subprocess.Popen([sys.executable, "-m", "shared.cli.main", name], env=env)
        wait_http(f"http://127.0.0.1:{sim_port}/healthz", procs["sim-provider"])
        wait_http(f"http://127.0.0.1:{gw_port}/readyz", procs["gateway"])
        yield System(f"http://127.0.0.1:{gw_port}", f"http://127.0.0.1:{sim_port}", env, procs)
    finally:
        stop(procs)
        Redis.from_url(f"{REDIS_BASE}/{REDIS_DB}").flushdb()

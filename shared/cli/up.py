"""`ainfera-dispatch up`: the whole system on one machine, in the foreground.

Migrates, seeds the catalog, issues a demo API key (printed once; only its hash is
kept), then runs the simulated provider (when no provider keys are set), the worker
and the gateway as child processes sharing this terminal. Ctrl-C stops all of them;
if one dies, the others are stopped too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

from shared.settings import Settings

DEMO_TENANT = "demo"


def ensure_signing_key(settings: Settings) -> None:
    """First run on this machine: create the key that signs receipts (kept out of git in .local/)."""
    from pathlib import Path

    from shared.signing import generate_key_file

    if settings.signing_key is None and not Path(settings.signing_key_file).exists():
        generate_key_file(Path(settings.signing_key_file))
        print(f"created a signing key in {settings.signing_key_file} (back it up; never commit it)", file=sys.stderr)


async def _prepare(settings: Settings) -> dict[str, str]:
    from shared.auth.keys import hash_key, new_api_key, shown_prefix
    from shared.catalog.seed import seed_catalog
    from shared.db.migrate import ensure_database, migrate
    from shared.db.pool import connect_session
    from shared.db.tenants import create_api_key, create_tenant, tenant_by_name

    await ensure_database(settings.session_database_url)
    await migrate(settings.session_database_url)
    conn = await connect_session(settings)
    try:
        await seed_catalog(conn)
        async with conn.transaction():
            tenant = await tenant_by_name(conn, DEMO_TENANT) or await create_tenant(conn, DEMO_TENANT)
            key = new_api_key()
            await create_api_key(conn, tenant.id, hash_key(key), shown_prefix(key))
    finally:
        await conn.close()
    return {"tenant_id": str(tenant.id), "api_key": key}


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "shared.cli.main", *args], env=env)  # noqa: S603


def _wait_ready(url: str, procs: list[subprocess.Popen[bytes]], timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 (our own local URL)
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _simulated_world(settings: Settings) -> str:
    """How the simulated provider keeps time, said once so nobody mistakes demo latencies for real ones."""
    if settings.sim_latency_ms is not None:
        return f"the simulated provider, every model answering in a fixed {settings.sim_latency_ms:g} ms"
    return (f"the simulated provider, each model answering in its catalog latency profile x "
            f"{settings.sim_time_scale:g} (AINFERA_SIM_TIME_SCALE; a 195-s reasoning call takes "
            f"{195 * settings.sim_time_scale:g} s)")


def run_up(settings: Settings, *, simulate: str = "auto") -> int:
    ensure_signing_key(settings)
    demo = asyncio.run(_prepare(settings))
    use_sim = simulate == "always" or (simulate == "auto" and not settings.provider_keys)
    env: dict[str, Any] = dict(os.environ)
    env.setdefault("AINFERA_LOG_FORMAT", "console")
    if use_sim:
        env["AINFERA_UPSTREAM_OVERRIDE"] = f"http://{settings.sim_host}:{settings.sim_port}"

    procs: list[subprocess.Popen[bytes]] = []
    if use_sim:
        procs.append(_spawn(["sim-provider"], env))
    # Synchronous callers get a worker of their own; bulk work runs at a lower CPU priority.
    procs.append(_spawn(["worker", "--queue", "interactive"], env))
    # Each worker process serves its own metrics: the bulk one on the port after the interactive one's.
    bulk_env = env if not settings.worker_metrics_port else {
        **env, "AINFERA_WORKER_METRICS_PORT": str(settings.worker_metrics_port + 1)}
    procs.append(_spawn(["worker", "--queue", "batch", "--queue", "probe"], bulk_env))
    procs.append(_spawn(["gateway"], env))

    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    if _wait_ready(f"{settings.gateway_url}/readyz", procs):
        upstream = _simulated_world(settings) if use_sim else "the real providers (keys from the environment)"
        print(
            "\n"
            f"  ainfera-dispatch is up at {settings.gateway_url} (upstream: {upstream})\n"
            f"  demo tenant {demo['tenant_id']}\n"
            f"  demo API key (shown once, only its hash is stored): {demo['api_key']}\n\n"
            f"  curl {settings.gateway_url}/v1/chat/completions \\\n"
            f"       -H 'Authorization: Bearer {demo['api_key']}' \\\n"
            "       -H 'Content-Type: application/json' \\\n"
            "       -d '{\"model\": \"ainfera-auto\",\n"
            "            \"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}]}'\n\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
    else:
        print("the system did not become ready; stopping", file=sys.stderr)
        stopping = True

    code = 0
    while not stopping:
        for p in procs:
            if p.poll() is not None:
                print(f"a process exited with code {p.returncode}; stopping the others", file=sys.stderr)
                code = p.returncode or 1
                stopping = True
        time.sleep(0.2)
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 40
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
    return code

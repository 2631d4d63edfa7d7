"""The audit chain under load and as an outsider checks it: four worker processes appending for one
tenant, the public `ainfera` SDK walking and verifying it over HTTP, and both of our verifiers
finding an edit made with database superuser rights."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import asyncpg
import httpx
import orjson
import pytest
from ainfera._internal.http import HttpClient
from ainfera.audit import AuditChain

from tests.e2e.conftest import System

pytestmark = pytest.mark.e2e
LINES = 2000


def run_cli(system: System, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shared.cli.main", *args], env={**system.env, **env},
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def loaded(system: System):
    """One tenant, 2,000 calls as a batch, run by four more worker processes on the bulk queue."""
    tenant = system.new_tenant("chain")
    auth = {"Authorization": f"Bearer {tenant['api_key']}"}
    workers = [subprocess.Popen([sys.executable, "-m", "shared.cli.main", "worker", "--queue", "batch"],
                                env=system.env) for _ in range(4)]
    try:
        lines = b"".join(orjson.dumps({"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions",
                                       "body": {"model": "gpt-oss-20b@groq",
                                                "messages": [{"role": "user", "content": f"n{i}"}]}}) + b"\n"
                         for i in range(LINES))
        with httpx.Client(base_url=system.base_url, headers=auth, timeout=60) as client:
            f = client.post("/v1/files", data={"purpose": "batch"}, files={"file": ("c.jsonl", lines)}).json()
            b = client.post("/v1/batches", json={"input_file_id": f["id"], "endpoint": "/v1/chat/completions",
                                                 "completion_window": "24h"}).json()
            deadline = time.monotonic() + 240
            while b["status"] != "completed":
                assert time.monotonic() < deadline, b
                time.sleep(0.3)
                b = client.get(f"/v1/batches/{b['id']}").json()
        assert b["request_counts"]["completed"] == LINES
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=30)
    return tenant


def test_four_workers_never_fork_or_gap_the_chain(system, loaded):
    sdk = AuditChain(agent_id=loaded["tenant_id"])
    sdk._http = HttpClient(system.base_url, loaded["api_key"], 60)
    events = list(sdk.events())
    assert len(events) == LINES
    assert [e.seq for e in events] == list(range(1, LINES + 1))
    assert sdk.verify() is True  # the public SDK's own verifier, over our API
    remote = sdk.verify_remote()
    assert remote.valid is True and remote.event_count == LINES


def test_our_verifiers_agree_the_chain_and_receipts_are_intact(system, loaded):
    local = run_cli(system, "audit", "verify", "--tenant", loaded["tenant_id"])
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout)["event_count"] == LINES
    remote = run_cli(system, "audit", "verify-remote", "--base-url", system.base_url,
                     AINFERA_API_KEY=loaded["api_key"])
    assert remote.returncode == 0, remote.stdout + remote.stderr
    report = json.loads(remote.stdout)
    assert report["valid"] and report["checkpoint_valid"] and report["receipts_checked"] == LINES


def test_an_edited_past_event_is_found_at_its_seq_by_both_verifiers(system, loaded):
    tenant_id = loaded["tenant_id"]

    async def edit() -> None:
        conn = await asyncpg.connect(system.env["AINFERA_DATABASE_URL"])
        try:
            async with conn.transaction():
                await conn.execute("SET LOCAL session_replication_role = replica")  # superuser: triggers off
                await conn.execute(
                    "UPDATE audit_events SET payload = replace(payload, '\"status\":\"succeeded\"', "
                    "'\"status\":\"failed\"') WHERE tenant_id = $1::uuid AND seq = 777", tenant_id)
        finally:
            await conn.close()

    import asyncio

    asyncio.run(edit())
    local = run_cli(system, "audit", "verify", "--tenant", tenant_id)
    remote = run_cli(system, "audit", "verify-remote", "--base-url", system.base_url,
                     AINFERA_API_KEY=loaded["api_key"])
    assert local.returncode == remote.returncode == 1
    assert json.loads(local.stdout)["failure_seq"] == 777
    assert json.loads(remote.stdout)["failure_seq"] == 777

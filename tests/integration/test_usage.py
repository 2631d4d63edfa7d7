"""`GET /v1/usage` and `ainfera-dispatch spend report`: a tenant's own spend, summed from the
receipts that calls through the gateway, worker and simulated provider wrote."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import asyncpg
import httpx
import pytest

from shared.settings import Settings
from tests.harness import new_tenant, running_gateway, running_worker

pytestmark = pytest.mark.integration

LLAMA, OSS = "llama-3.3-70b@groq", "gpt-oss-20b@groq"


def chat(model: str, text: str = "Say hello in five words.") -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


async def receipts_of(settings: Settings, tenant_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.session_database_url)
    try:
        return await conn.fetch("SELECT * FROM receipts WHERE tenant_id = $1", tenant_id)
    finally:
        await conn.close()


@pytest.fixture
async def spent(settings: Settings, sim: httpx.AsyncClient):
    """Tenant A: three calls to llama, one to gpt-oss, one llama call that fails; tenant B: one
    gpt-oss call. Yields (client, A's headers, B's headers, A's id, B's id)."""
    a, key_a = await new_tenant(settings)
    b, key_b = await new_tenant(settings)
    auth_a, auth_b = {"Authorization": f"Bearer {key_a}"}, {"Authorization": f"Bearer {key_b}"}
    async with running_worker(settings), running_gateway(settings) as client:
        for i in range(3):
            assert (await client.post("/v1/chat/completions", json=chat(LLAMA, f"Hello {i}"), headers=auth_a)
                    ).status_code == 200
        assert (await client.post("/v1/chat/completions", json=chat(OSS), headers=auth_a)).status_code == 200
        assert (await client.post("/v1/chat/completions", json=chat(OSS, "b " * 500), headers=auth_b)
                ).status_code == 200
        await sim.post("/_sim/faults", json={"model": "llama-3.3-70b-versatile", "fault": "fail=500", "times": 20})
        failed = await client.post("/v1/chat/completions", json=chat(LLAMA, "This one fails."), headers=auth_a)
        assert failed.status_code >= 500
        await sim.delete("/_sim/faults")
        yield client, auth_a, auth_b, a, b


async def test_usage_by_key_names_the_key_that_submitted_each_call(spent, settings):
    client, auth_a, _, a, _ = spent
    conn = await asyncpg.connect(settings.session_database_url)
    try:
        [key_id] = [r["id"] for r in await conn.fetch("SELECT id FROM api_keys WHERE tenant_id = $1", UUID(a))]
    finally:
        await conn.close()
    r = await client.get("/v1/usage", params={"group_by": "key"}, headers=auth_a)
    assert r.status_code == 200, r.text
    [group] = r.json()["data"]
    assert group["key"] == str(key_id) and group["requests"] == 5 and group["failed"] == 1


async def test_usage_by_model_sums_the_tenants_own_receipts(spent, settings):
    client, auth_a, _, a, _ = spent
    r = await client.get("/v1/usage", params={"group_by": "model"}, headers=auth_a)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and body["group_by"] == "model"
    by_model = {g["model"]: g for g in body["data"]}
    assert set(by_model) == {LLAMA, OSS}
    receipts = await receipts_of(settings, a)
    for slug, group in by_model.items():
        mine = [x for x in receipts if x["model_slug"] == slug]
        assert group["object"] == "usage.group"
        assert group["requests"] == len(mine)
        assert group["input_tokens"] == sum(x["input_tokens"] for x in mine)
        assert group["output_tokens"] == sum(x["output_tokens"] for x in mine)
        assert group["cached_input_tokens"] == sum(x["cached_input_tokens"] for x in mine)
        assert Decimal(group["cost_usd"]) == sum(x["cost_usd"] for x in mine)
    assert (by_model[LLAMA]["succeeded"], by_model[LLAMA]["failed"], by_model[LLAMA]["cancelled"]) == (3, 1, 0)
    assert (by_model[OSS]["requests"], by_model[OSS]["succeeded"]) == (1, 1)
    assert Decimal(by_model[OSS]["cost_usd"]) > 0 and isinstance(by_model[OSS]["cost_usd"], str)


async def test_usage_by_day_defaults_to_the_last_30_days_and_never_shows_another_tenant(spent, settings):
    client, auth_a, auth_b, a, b = spent
    body = (await client.get("/v1/usage", headers=auth_a)).json()
    assert body["group_by"] == "day"
    start, end = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])
    assert end - start == timedelta(days=30) and abs(datetime.now(UTC) - end) < timedelta(minutes=1)
    [today] = body["data"]
    assert today["date"] == datetime.now(UTC).date().isoformat()
    receipts_a = await receipts_of(settings, a)
    assert today["requests"] == len(receipts_a) == 5
    assert Decimal(today["cost_usd"]) == sum(x["cost_usd"] for x in receipts_a)

    [b_today] = (await client.get("/v1/usage", headers=auth_b)).json()["data"]
    [receipt_b] = await receipts_of(settings, b)
    assert b_today["requests"] == 1 and b_today["input_tokens"] == receipt_b["input_tokens"]
    assert Decimal(b_today["cost_usd"]) == receipt_b["cost_usd"]
    by_model_b = (await client.get("/v1/usage?group_by=model", headers=auth_b)).json()["data"]
    assert [g["model"] for g in by_model_b] == [OSS]


async def test_usage_ranges_take_dates_and_rfc3339_times(spent):
    client, auth_a, _, _, _ = spent
    today = datetime.now(UTC).date()
    whole_day = (await client.get("/v1/usage", params={"from": today.isoformat(), "to": today.isoformat()},
                                  headers=auth_a)).json()
    assert whole_day["from"] == f"{today.isoformat()}T00:00:00Z"
    assert whole_day["to"] == f"{(today + timedelta(days=1)).isoformat()}T00:00:00Z"
    assert sum(g["requests"] for g in whole_day["data"]) == 5
    past = await client.get("/v1/usage", params={"from": "2020-01-01T00:00:00+02:00", "to": "2020-02-01"},
                            headers=auth_a)
    assert past.status_code == 200 and past.json()["data"] == []
    assert past.json()["from"] == "2019-12-31T22:00:00Z"


@pytest.mark.parametrize(("params", "param", "code"), [
    ({"group_by": "week"}, "group_by", "invalid_value"),
    ({"from": "2025-13-01"}, "from", "invalid_value"),
    ({"from": "yesterday"}, "from", "invalid_value"),
    ({"to": "2025-01-01T00:00:00"}, "to", "invalid_value"),  # RFC 3339 needs an offset
    ({"from": "2025-02-01", "to": "2025-01-01"}, "from", "invalid_value"),
    ({"from": "2023-01-01", "to": "2025-01-01"}, "to", "invalid_value"),  # more than 366 days
    ({"from": "99999-01-01T00:00:00Z"}, "from", "invalid_value"),
])
async def test_bad_usage_params_are_a_400_naming_the_param(settings, params, param, code):
    _, key = await new_tenant(settings)
    async with running_gateway(settings) as client:
        r = await client.get("/v1/usage", params=params, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")


async def test_usage_needs_a_key(settings):
    async with running_gateway(settings) as client:
        assert (await client.get("/v1/usage")).status_code == 401


async def test_cli_spend_report_prints_the_same_totals(spent, settings):
    client, auth_a, _, a, _ = spent
    api = {g["model"]: g for g in (await client.get("/v1/usage?group_by=model", headers=auth_a)).json()["data"]}
    env = {"AINFERA_DATABASE_URL": settings.session_database_url, "PATH": "/usr/bin:/bin"}
    base = [sys.executable, "-m", "shared.cli.main", "spend", "report", "--tenant", a]
    out = subprocess.run([*base, "--group-by", "model"], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    lines = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
             for line in out.stdout.splitlines() if line.count("│") > 2}
    for slug, group in api.items():
        assert lines[slug][0] == str(group["requests"]) and lines[slug][-1] == group["cost_usd"]
    assert lines["total"][0] == "5"
    by_day = subprocess.run([*base, "--from", "2020-01-01", "--to", "2020-01-31"], env=env, capture_output=True,
                            text=True, check=False)
    assert by_day.returncode == 0 and "date" in by_day.stdout
    bad = subprocess.run([*base, "--from", "soon"], env=env, capture_output=True, text=True, check=False)
    assert bad.returncode != 0 and "--from" in bad.stderr and "Traceback" not in bad.stderr

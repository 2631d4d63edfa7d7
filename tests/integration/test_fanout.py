"""Fanout on the seeded catalog with the simulated provider: probes, hysteresis, the outage guard,
the spend cap, audit events, and one decision per run however many workers try."""

from __future__ import annotations

import asyncio

import asyncpg
import orjson
import pytest

from shared.audit.chain import verify_events
from shared.db.fanout import get_run
from shared.fanout.decide import SYSTEM_TENANT, DecisionRules, decide_run
from shared.fanout.runs import start_run
from shared.queue.names import QueueName
from shared.resources import open_resources
from shared.settings import Settings
from tests.harness import ADMIN_KEY, free_port, running_gateway, running_worker

pytestmark = pytest.mark.integration
PROBE_ONLY = (QueueName.PROBE, QueueName.CONTROL)


async def sql(settings: Settings, query: str, *args):
    conn = await asyncpg.connect(settings.session_database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def fanout(settings: Settings, provider: str | None = None) -> dict:
    """Start a run and wait for its decisions (the probe worker must be running)."""
    async with open_resources(settings) as res:
        run_id = await start_run(res.db, res.redis, trigger="manual", provider=provider)
        for _ in range(600):
            async with res.db.acquire() as conn:
                run = await get_run(conn, run_id)
            if run["decided_at"] is not None and run["decisions"] is not None:
                return run
            await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish: {run}")


async def active_map(settings: Settings) -> dict[str, tuple[bool, str | None]]:
    rows = await sql(settings, "SELECT slug, active, deactivation_reason FROM models")
    return {r["slug"]: (r["active"], r["deactivation_reason"]) for r in rows}


async def test_a_clean_run_passes_every_row_and_bills_nobody(settings, sim, redis_flushed):
    async with running_worker(settings, PROBE_ONLY), running_gateway(settings) as client:
        run = await fanout(settings)
        assert run["planned"] == 130 and run["passed"] == 130 and run["failed"] == 0 and run["guard"] is None
        # rows the research marked retired answered, so the evidence switches them back on
        assert {d["action"] for d in run["decisions"]} == {"activated"}
        assert all(active for active, _ in (await active_map(settings)).values())
        models = (await client.get("/v1/models", headers={"Authorization": f"Bearer {await _key(settings)}"})).json()
        assert len(models["data"]) >= 40
    assert await sql(settings, "SELECT id FROM receipts") == []
    assert await sql(settings, "SELECT id FROM jobs") == []
    assert await redis_flushed.keys("ainfera:{stats}:ratios:*") == []
    assert await redis_flushed.keys("ainfera:{stats}:latencies:*") == []
    stats = (await sim.get("/_sim/stats")).json()
    assert stats["total"] == 130


async def _key(settings: Settings) -> str:
    from tests.harness import new_tenant

    return (await new_tenant(settings, "reader"))[1]


async def test_broken_rows_are_switched_off_after_two_runs_and_back_on_when_fixed(settings, sim):
    await sql(settings, "UPDATE models SET provider_model_name = 'llama-9-nope' WHERE slug = 'llama-3.3-70b@groq'")
    await sql(settings, "UPDATE providers SET base_url = 'https://api.x.ai/v1/v1' WHERE name = 'xai'")
    await sql(settings, "UPDATE providers SET chat_completions_path = '/chat/complete' WHERE name = 'typhoon'")
    broken = {"llama-3.3-70b@groq": "model_not_found", "grok-4.5@xai": "invalid_upstream_url",
              "grok-4.3@xai": "invalid_upstream_url", "typhoon-v2.5-30b-a3b@typhoon": "http_404_path",
              "typhoon-v2.1-12b@typhoon": "http_404_path"}
    async with running_worker(settings, PROBE_ONLY):
        first = await fanout(settings)
        assert first["failed"] == len(broken) and first["guard"] is None
        assert not [d for d in first["decisions"] if d["action"] == "deactivated"]  # one failed run is not enough
        second = await fanout(settings)
        deactivated = {d["model"]: d["reason"] for d in second["decisions"] if d["action"] == "deactivated"}
        assert deactivated == broken
        state = await active_map(settings)
        assert {s for s, (active, _) in state.items() if not active} == set(broken)
        assert all(state[s][1] == f"probe:{r}" for s, r in broken.items())

        await sql(settings, "UPDATE models SET provider_model_name = 'llama-3.3-70b-versatile' "
                            "WHERE slug = 'llama-3.3-70b@groq'")
        await sql(settings, "UPDATE providers SET base_url = 'https://api.x.ai/v1' WHERE name = 'xai'")
        await sql(settings, "UPDATE providers SET chat_completions_path = '/chat/completions' WHERE name = 'typhoon'")
        third = await fanout(settings)
        assert {d["model"] for d in third["decisions"] if d["action"] == "activated"} == set(broken)
        assert all(active for active, _ in (await active_map(settings)).values())

    events = await sql(settings, "SELECT seq, event_type, payload, previous_hash, event_hash FROM audit_events "
                                 "WHERE tenant_id = $1 ORDER BY seq", SYSTEM_TENANT)
    kinds = [e["event_type"] for e in events]
    assert kinds.count("model.deactivated") == len(broken)
    deactivation = orjson.loads(next(e["payload"] for e in events if e["event_type"] == "model.deactivated"))
    assert len(deactivation["evidence"]) == 2 and all(e["outcome"] == "failed" for e in deactivation["evidence"])
    assert deactivation["run_id"] == second["id"]
    assert verify_events([dict(e) for e in events]) == (len(events), None)


async def test_an_unreachable_simulator_deactivates_nothing_and_says_why(settings):
    dead = settings.model_copy(update={"upstream_override": f"http://127.0.0.1:{free_port()}",
                                       "upstream_connect_timeout_s": 0.5})
    async with running_worker(dead, PROBE_ONLY):
        for _ in range(2):
            run = await fanout(dead)
            assert run["passed"] == 0 and run["failed"] == run["planned"]
            assert run["guard"] is not None and "under the floor" in run["guard"]["reason"]
            assert [d for d in run["decisions"] if d["action"] == "deactivated"] == []
    before = await active_map(settings)
    assert sum(active for active, _ in before.values()) == 127  # the seed's three retired rows stay as they were


async def test_many_providers_failing_to_connect_look_like_our_side():
    from shared.fanout.decide import guard_reason

    probes = ([{"provider": f"p{i}", "outcome": "passed", "reason": None} for i in range(10)]
              + [{"provider": f"q{i}", "outcome": "failed", "reason": "unreachable"} for i in range(4)])
    assert "connection failure" in guard_reason(probes, DecisionRules())
    probes[-1]["reason"] = "model_not_found"
    assert guard_reason(probes, DecisionRules()) is None


async def test_a_provider_without_credentials_is_skipped_not_deactivated(settings):
    no_keys = settings.model_copy(update={"upstream_override": None})
    async with running_worker(no_keys, PROBE_ONLY):
        for _ in range(2):
            run = await fanout(no_keys, provider="groq")
            assert run["skipped"] == run["planned"] == 8 and run["failed"] == 0
            assert run["decisions"] == []
    rows = await sql(settings, "SELECT reason FROM model_probes")
    assert {r["reason"] for r in rows} == {"no_credentials"}


async def test_the_spend_cap_stops_issuing_probes_and_reports_what_it_left_out(settings, sim):
    capped = settings.model_copy(update={"fanout_spend_cap_usd": 0.0005})
    async with running_worker(capped, PROBE_ONLY):
        run = await fanout(capped)
    left_out = run["not_probed"]
    assert left_out and run["planned"] + len(left_out) == 130
    assert float(run["estimated_cost_usd"]) <= 0.0005
    assert (await sim.get("/_sim/stats")).json()["total"] == run["planned"]


async def test_two_workers_do_not_double_apply_a_decision(settings, sim):
    await sql(settings, "UPDATE models SET provider_model_name = 'nope' WHERE slug = 'gpt-4o@openai'")
    async with running_worker(settings, PROBE_ONLY):
        await fanout(settings)
        await fanout(settings)
    async with open_resources(settings) as res:
        # the same schedule slot started by two workers at once: one run
        ids = await asyncio.gather(*(start_run(res.db, res.redis, trigger="schedule", run_id="fanout_sched_42")
                                     for _ in range(2)))
        assert sorted(ids, key=str) == sorted([None, "fanout_sched_42"], key=str)
    runs = await sql(settings, "SELECT id FROM fanout_runs WHERE id = 'fanout_sched_42'")
    assert len(runs) == 1
    # deciding a finished run again, concurrently, changes nothing
    last = (await sql(settings, "SELECT id FROM fanout_runs WHERE decided_at IS NOT NULL "
                                "ORDER BY started_at DESC LIMIT 1"))[0]["id"]
    async with open_resources(settings) as res:
        again = await asyncio.gather(*(decide_run(res, last, DecisionRules()) for _ in range(3)))
    assert again == [None, None, None]
    events = await sql(settings, "SELECT event_type FROM audit_events WHERE tenant_id = $1", SYSTEM_TENANT)
    assert [e["event_type"] for e in events].count("model.deactivated") == 1


async def test_admin_api_starts_and_reports_runs(settings, sim):
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with running_worker(settings, PROBE_ONLY), running_gateway(settings) as client:
        denied = await client.post("/v1/admin/fanout/runs", json={})
        assert denied.status_code == 401
        bad = await client.post("/v1/admin/fanout/runs", json={"provider": "nosuch"}, headers=admin)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "provider"
        r = await client.post("/v1/admin/fanout/runs", json={"provider": "mistral"}, headers=admin)
        assert r.status_code == 202
        run_id = r.json()["id"]
        for _ in range(400):
            got = (await client.get(f"/v1/admin/fanout/runs/{run_id}", headers=admin)).json()
            if got["status"] == "completed" and got["decisions"] is not None:
                break
            await asyncio.sleep(0.05)
        assert got["providers"] == {"mistral": {"passed": 5, "failed": 0, "skipped": 0, "reasons": {}}}
        listed = (await client.get("/v1/admin/fanout/runs", headers=admin)).json()["data"]
        assert listed[0]["id"] == run_id

"""Budgets that cannot be overshot, on real Postgres and Redis: a call reserves its worst case
before any provider is called, its receipt settles the reservation, and concurrent calls on two
gateways and two workers never spend past the budget."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from uuid import UUID

import orjson
import pytest

from shared.chat.request import validate_chat_request
from shared.db.pool import connect
from shared.routing.plan import route_request
from shared.settings import Settings
from shared.spend.worst_case import worst_case_usd
from tests.harness import ADMIN_KEY, new_tenant, running_gateway, running_worker, seeded_catalog
from tests.harness import fetch_rows as rows

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
MODEL = "llama-3.3-70b@groq"


JOBS = "WHERE job_id NOT LIKE 'lease:%'"  # the jobs' own reservations, not the workers' leases


LEASED = ("SELECT coalesce(sum(amount_usd), 0) FROM budget_reservations "
          "WHERE job_id LIKE 'lease:%' AND settled_at IS NULL")


async def open_leases(settings: Settings) -> Decimal:
    """What the workers' budget leases hold now, all together."""
    [row] = await rows(settings, f"SELECT ({LEASED}) AS held")
    held: Decimal = row["held"]
    return held


def chat(model: str = MODEL, text: str = "Name three rivers.", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 200, **extra}


async def worst_case(settings: Settings, body: dict) -> float:
    catalog = await seeded_catalog(settings)
    request = validate_chat_request(body)
    value = worst_case_usd(catalog.models[body["model"]], route_request(request).input_tokens, request.output_cap)
    assert value is not None
    return value


@pytest.fixture
async def system(settings: Settings, sim):
    tenant_id, key = await new_tenant(settings)
    async with running_worker(settings), running_gateway(settings) as client:
        yield client, {"Authorization": f"Bearer {key}"}, tenant_id


async def set_policy(client, tenant_id: str, policy: dict) -> None:
    r = await client.put(f"/v1/admin/tenants/{tenant_id}/spend_policy", json=policy, headers=ADMIN)
    assert r.status_code == 200, r.text


async def test_a_pinned_call_over_the_per_call_cap_is_refused_before_any_provider_is_called(system, settings, sim):
    client, auth, tenant_id = system
    body = chat(max_tokens=4000)
    worst = await worst_case(settings, body)
    await set_policy(client, tenant_id, {"max_cost_per_call_usd": worst / 2})
    r = await client.post("/v1/chat/completions", json=body, headers=auth)
    assert r.status_code == 402, r.text
    error = r.json()["error"]
    assert error["code"] == "budget_exceeded" and "per-call cap" in error["message"]
    assert (await sim.get("/_sim/stats")).json()["total"] == 0
    [receipt] = await rows(settings, "SELECT status, error_code, cost_usd FROM receipts")
    assert (receipt["status"], receipt["error_code"], receipt["cost_usd"]) == ("failed", "budget_exceeded", 0)
    [event] = await rows(settings, "SELECT event_type, payload FROM audit_events WHERE tenant_id = $1", tenant_id)
    assert event["event_type"] == "inference.rejected"
    assert orjson.loads(event["payload"])["error"]["code"] == "budget_exceeded"
    # The same call with a max_tokens whose worst case fits is served.
    assert (await client.post("/v1/chat/completions", json=chat(max_tokens=50), headers=auth)).status_code == 200


async def test_a_caller_hint_cannot_raise_the_tenants_cap(system):
    client, auth, tenant_id = system
    await set_policy(client, tenant_id, {"max_cost_per_call_usd": 0.0001})
    body = {**chat("ainfera-auto", max_tokens=20), "routing_hint": {"max_cost_usd": 5}}
    plan = (await client.post("/v1/routing/explain", json=body, headers=auth)).json()
    assert plan["decision_log"]["max_cost_source"] == "spend_policy.max_cost_per_call_usd"


async def test_the_receipt_settles_the_reservation_to_the_actual_cost(system, settings):
    client, auth, tenant_id = system
    await set_policy(client, tenant_id, {"daily_budget_usd": 10})
    r = await client.post("/v1/chat/completions", json=chat(), headers=auth)
    assert r.status_code == 200, r.text
    cost = Decimal(r.headers["x-ainfera-cost-usd"])
    [reservation] = await rows(settings, f"SELECT amount_usd, settled_at, cost_usd FROM budget_reservations {JOBS}")
    assert reservation["settled_at"] is not None and reservation["cost_usd"] == cost
    assert reservation["amount_usd"] >= cost  # the worst case held the actual cost
    # What is still reserved is the lease the worker asked for after this first call (one snapshot).
    counters = await rows(settings, f"SELECT period, spent_usd, reserved_usd, ({LEASED}) AS leased "
                                    "FROM budget_counters WHERE scope = 'tenant'")
    assert {c["period"]: (c["spent_usd"], c["reserved_usd"]) for c in counters} == {
        "day": (cost, counters[0]["leased"]), "month": (cost, counters[0]["leased"])}


async def test_concurrent_calls_on_two_gateways_and_two_workers_never_overshoot_the_budget(settings, sim):
    tenant_id, key = await new_tenant(settings)
    auth = {"Authorization": f"Bearer {key}"}
    body = chat(text="Name three rivers. [sim:latency=400]")
    worst = await worst_case(settings, body)
    fits = 10
    budget = worst * (fits + 0.5)  # room for ten worst cases in flight, not eleven
    calls = 40
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            await stack.enter_async_context(running_worker(settings))
        gateways = [await stack.enter_async_context(running_gateway(settings)) for _ in range(2)]
        await set_policy(gateways[0], tenant_id, {"daily_budget_usd": budget})
        answers = await asyncio.gather(*(gateways[i % 2].post("/v1/chat/completions", json=body, headers=auth)
                                         for i in range(calls)))
    statuses = [r.status_code for r in answers]
    assert statuses.count(200) == fits and statuses.count(402) == calls - fits, statuses
    assert all(r.json()["error"]["code"] == "budget_exceeded" for r in answers if r.status_code == 402)
    spent = sum(Decimal(r.headers["x-ainfera-cost-usd"]) for r in answers if r.status_code == 200)
    assert spent <= Decimal(repr(budget))
    [counter] = await rows(settings, "SELECT spent_usd, reserved_usd FROM budget_counters "
                                     "WHERE scope = 'tenant' AND period = 'day'")
    assert counter["spent_usd"] == spent and counter["reserved_usd"] == 0
    receipts = await rows(settings, "SELECT status, error_code FROM receipts")
    assert len(receipts) == calls  # every refused call is accounted for
    assert sum(r["error_code"] == "budget_exceeded" for r in receipts) == calls - fits
    events = await rows(settings, "SELECT event_type FROM audit_events WHERE tenant_id = $1", tenant_id)
    assert sum(e["event_type"] == "inference.rejected" for e in events) == calls - fits
    assert await open_leases(settings) == 0  # no lease near the limit: every call held exactly
    assert (await rows(settings, "SELECT count(*) AS n FROM budget_reservations WHERE settled_at IS NULL"))[0]["n"] == 0


async def test_ainfera_auto_routes_to_what_the_budget_left_can_pay_for(system, settings):
    client, auth, tenant_id = system
    body = chat("ainfera-auto", max_tokens=2000)
    unlimited = (await client.post("/v1/routing/explain", json=body, headers=auth)).json()["model"]
    first_choice = await worst_case(settings, {**body, "model": unlimited})
    await set_policy(client, tenant_id, {"daily_budget_usd": first_choice / 3})
    r = await client.post("/v1/chat/completions", json=body, headers=auth)
    assert r.status_code == 200, r.text
    served = r.json()["model"]
    assert served != unlimited
    assert await worst_case(settings, {**body, "model": served}) <= first_choice / 3


async def test_a_budget_set_mid_period_counts_what_was_already_spent(system, settings):
    client, auth, tenant_id = system
    r = await client.post("/v1/chat/completions", json=chat(), headers=auth)
    spent = Decimal(r.headers["x-ainfera-cost-usd"])
    worst = await worst_case(settings, chat())
    await set_policy(client, tenant_id, {"daily_budget_usd": float(spent) + worst * 0.5})
    r = await client.post("/v1/chat/completions", json=chat(), headers=auth)
    assert r.status_code == 402 and "is left" in r.json()["error"]["message"]


async def test_the_reconciler_releases_a_reservation_whose_job_ended_without_a_receipt(settings):
    from shared.spend.budgets import Budget, Budgets, release_stale, reserve

    tenant_id, _ = await new_tenant(settings)
    conn = await connect(settings.session_database_url)
    try:
        budgets = Budgets(None, None, (Budget("tenant", "day", 1.0),))
        now = await conn.fetchval("SELECT now()")
        await reserve(conn, job_id="job_orphan", tenant_id=tenant_id, key_id=None, amount_usd=0.4, budgets=budgets,
                      now=now)
        assert await release_stale(conn, age_s=3600, orphan_age_s=3600) == 0  # too young: it may still run
        await conn.execute("UPDATE budget_reservations SET created_at = now() - interval '2 hours'")
        assert await release_stale(conn, age_s=60, orphan_age_s=3600) == 1
        counter = await conn.fetchrow("SELECT spent_usd, reserved_usd FROM budget_counters WHERE period = 'day'")
        assert (counter["spent_usd"], counter["reserved_usd"]) == (0, 0)
    finally:
        await conn.close()


async def test_a_budgeted_job_run_twice_is_settled_once(settings, sim):
    from datetime import UTC, datetime

    from shared.dispatch import run_dispatch
    from shared.ids import job_id
    from shared.jobs import DispatchJob, JobKind
    from shared.resources import open_resources

    tenant_id, _ = await new_tenant(settings, policy={"daily_budget_usd": 5.0})
    job = DispatchJob(job_id=job_id(), tenant_id=UUID(tenant_id), kind=JobKind.SYNC, submitted_at=datetime.now(UTC),
                      request=validate_chat_request(chat()))
    async with open_resources(settings) as res:
        first = await run_dispatch(res, job)
        again = await run_dispatch(res, job, attempt=2)  # arq delivered it twice
    assert first is not None and again is not None and first.body == again.body
    assert (await sim.get("/_sim/stats")).json()["total"] == 1
    [reservation] = await rows(settings, f"SELECT settled_at, cost_usd FROM budget_reservations {JOBS}")
    [counter] = await rows(settings, "SELECT spent_usd, reserved_usd FROM budget_counters "
                                     "WHERE scope = 'tenant' AND period = 'day'")
    assert reservation["settled_at"] is not None
    assert (counter["spent_usd"], counter["reserved_usd"]) == (reservation["cost_usd"], 0)
    assert len(await rows(settings, "SELECT 1 FROM receipts")) == 1


async def test_a_keys_budget_tightens_the_tenants(system, settings):
    client, auth, tenant_id = system
    await set_policy(client, tenant_id, {"daily_budget_usd": 100.0})
    worst = await worst_case(settings, chat())
    conn = await connect(settings.session_database_url)
    try:
        await conn.execute("UPDATE api_keys SET settings = $2 WHERE tenant_id = $1",
                           UUID(tenant_id), {"daily_budget_usd": worst * 0.9})
    finally:
        await conn.close()
    await asyncio.sleep(0.2)  # the change notice reaches the gateway's key cache
    r = await client.post("/v1/chat/completions", json=chat(), headers=auth)
    assert r.status_code == 402 and "key.daily_budget_usd" in r.json()["error"]["message"]
    # The tenant's own budget has room for it: a cheaper call fits the key's too.
    assert (await client.post("/v1/chat/completions", json=chat(max_tokens=20), headers=auth)).status_code == 200


async def test_calls_far_from_the_limit_hold_from_the_workers_lease_and_settle_exactly(settings, sim):
    _, key = await new_tenant(settings, policy={"daily_budget_usd": 100.0, "monthly_budget_usd": 1000.0})
    auth = {"Authorization": f"Bearer {key}"}
    async with running_worker(settings), running_gateway(settings) as client:
        answers = []
        for _ in range(20):
            answers.append(await client.post("/v1/chat/completions", json=chat(), headers=auth))
        assert await open_leases(settings) > 0
    assert [r.status_code for r in answers] == [200] * 20
    spent = sum(Decimal(r.headers["x-ainfera-cost-usd"]) for r in answers)
    jobs = await rows(settings, "SELECT created_at = settled_at AS from_lease, cost_usd "
                                f"FROM budget_reservations {JOBS}")
    assert len(jobs) == 20 and sum(j["cost_usd"] for j in jobs) == spent
    # A hold taken from a lease is moved to the job's reservation by its receipt's transaction.
    assert sum(j["from_lease"] for j in jobs) >= 15
    # The worker gave its lease back when it stopped: nothing is reserved, every cent is counted.
    counters = await rows(settings, "SELECT scope, period, spent_usd, reserved_usd FROM budget_counters")
    assert {(c["period"], c["spent_usd"], c["reserved_usd"]) for c in counters if c["scope"] == "tenant"} == {
        ("day", spent, 0), ("month", spent, 0)}
    assert await open_leases(settings) == 0


async def test_leases_and_exact_holds_on_two_workers_never_overshoot_a_budget_that_runs_out(settings, sim):
    tenant_id, key = await new_tenant(settings)
    auth = {"Authorization": f"Bearer {key}"}
    body = chat(max_tokens=5)  # the simulator then answers with all 5 tokens: each call costs about its worst case
    worst = await worst_case(settings, body)
    fits = 300
    budget = worst * fits  # leases while far from the limit (128 worst cases left), exact holds after
    calls, concurrency = 400, 20
    gate = asyncio.Semaphore(concurrency)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            await stack.enter_async_context(running_worker(settings))
        gateways = [await stack.enter_async_context(running_gateway(settings)) for _ in range(2)]
        await set_policy(gateways[0], tenant_id, {"daily_budget_usd": budget})

        async def one(i: int):
            async with gate:
                return await gateways[i % 2].post("/v1/chat/completions", json=body, headers=auth)

        answers = await asyncio.gather(*(one(i) for i in range(calls)))
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {200, 402}
    assert all(r.json()["error"]["code"] == "budget_exceeded" for r in answers if r.status_code == 402)
    spent = sum(Decimal(r.headers["x-ainfera-cost-usd"]) for r in answers if r.status_code == 200)
    assert spent <= Decimal(repr(budget))
    # The budget is used up, but for room another worker's lease held near the end (a lease is
    # at most 1/32 of what is left, so under 10 worst cases here) and one last call's worth.
    assert spent >= Decimal(repr(budget - (2 * 10 + 1) * worst)), (spent, statuses.count(200))
    jobs = await rows(settings, f"SELECT created_at = settled_at AS from_lease FROM budget_reservations {JOBS}")
    assert sum(j["from_lease"] for j in jobs) > 0  # leases were used
    [counter] = await rows(settings, "SELECT spent_usd, reserved_usd FROM budget_counters "
                                     "WHERE scope = 'tenant' AND period = 'day'")
    assert (counter["spent_usd"], counter["reserved_usd"]) == (spent, 0)
    assert len(await rows(settings, "SELECT 1 FROM receipts")) == calls  # every refused call is accounted for

"""Exactly once under faults and hostile input: every accepted job ends, once, with one receipt and
one audit event; a paid answer is never lost or bought twice; one tenant's poison never stalls
another. Real Postgres, Redis, workers and gateway; faults come from the simulated provider, a
TCP proxy that cuts the worker off its database, and stored rows an older version could have left."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from urllib.parse import urlsplit
from uuid import UUID

import orjson
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.chat.request import validate_chat_request
from shared.db.jobs import create_stored_job
from shared.dispatch import run_dispatch
from shared.ids import job_id as new_job_id
from shared.job_queue import enqueue_stored
from shared.jobs import DispatchJob, JobKind
from shared.resources import open_resources
from shared.settings import Settings
from tests.harness import fetch_rows, new_tenant, running_gateway, running_worker
from tests.integration.flaky_tcp import flaky_proxy
from tests.integration.test_batches import content, jsonl, line, upload, wait_for_batch
from tests.integration.trail import assert_trail, fetch
from tests.pgbouncer import through

pytestmark = pytest.mark.integration

MODEL = "gpt-oss-20b@groq"
UPSTREAM = "openai/gpt-oss-20b"  # what Groq calls it


def chat(text: str = "Name a river.", model: str = MODEL, **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def sync_job(tenant_id: str) -> DispatchJob:
    """A synchronous job as the gateway would hand it over, to run by hand with `run_dispatch`."""
    return DispatchJob(job_id=new_job_id(), tenant_id=UUID(tenant_id), kind=JobKind.SYNC,
                       request=validate_chat_request(chat()), submitted_at=datetime.now(UTC))


async def upstream_calls(sim) -> int:
    return int((await sim.get("/_sim/stats")).json()["total"])


async def until(check, timeout_s: float = 20.0, every_s: float = 0.05):
    """Poll `check()` until it returns something truthy (bounded); return that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        got = await check()
        if got:
            return got
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(every_s)


async def store_raw_job(settings: Settings, tenant_id: str, request: dict) -> str:
    """An async job as an older gateway (or a hand-made row) could have stored it, queued by id."""
    jid = new_job_id()
    async with open_resources(settings) as res:
        async with res.db.acquire() as conn:
            await create_stored_job(conn, job_id=jid, tenant_id=UUID(tenant_id), kind=JobKind.ASYNC,
                                    requested_model=str(request.get("model", "")), request=request,
                                    created_at=datetime.now(UTC))
        await enqueue_stored(res.redis, [jid])
    return jid


async def job_row(settings: Settings, jid: str):
    rows = await fetch(settings.session_database_url, "SELECT * FROM jobs WHERE id = $1", jid)
    return rows[0] if rows else None


# --- 1. a poisoned batch line --------------------------------------------------------------------


async def test_a_line_postgres_cannot_read_fails_alone_and_every_tenants_batch_is_fed(settings, sim):
    poisoned_tenant, poisoned_key = await new_tenant(settings, "poisoned")
    other_tenant, other_key = await new_tenant(settings, "other")
    a = {"Authorization": f"Bearer {poisoned_key}"}
    b = {"Authorization": f"Bearer {other_key}"}
    async with running_worker(settings), running_gateway(settings) as client:
        fa = (await upload(client, a, jsonl(*(line(f"a-{i}", text=f"poison-me {i}") for i in range(3))))).json()
        fb = (await upload(client, b, jsonl(*(line(f"b-{i}", text=f"fine {i}") for i in range(3))))).json()
        # What an upload accepted before NUL was refused at the edge: the escape is valid text, not jsonb.
        await fetch(settings.session_database_url, "UPDATE file_lines SET raw = replace(raw, 'poison-me 1', "
                                           "'poison\\u0000me 1') WHERE file_id = $1", fa["id"])
        spec = {"endpoint": "/v1/chat/completions", "completion_window": "24h"}
        ba = (await client.post("/v1/batches", headers=a, json={"input_file_id": fa["id"], **spec})).json()
        bb = (await client.post("/v1/batches", headers=b, json={"input_file_id": fb["id"], **spec})).json()
        done_b = await wait_for_batch(client, b, bb["id"])
        done_a = await wait_for_batch(client, a, ba["id"])
        assert done_b["status"] == "completed" and done_b["request_counts"]["completed"] == 3
        assert done_a["status"] == "completed"
        assert (done_a["request_counts"]["completed"], done_a["request_counts"]["failed"]) == (2, 1)
        errors = await content(client, a, done_a["error_file_id"])
        assert [e["custom_id"] for e in errors] == ["a-1"]
        assert errors[0]["response"]["body"]["error"]["code"] == "unreadable_request"
        answered = [o["custom_id"] for o in await content(client, a, done_a["output_file_id"])]
        assert sorted([*answered, "a-1"]) == ["a-0", "a-1", "a-2"]  # every custom_id answered exactly once
    await assert_trail(settings.session_database_url, poisoned_tenant, jobs=3)
    await assert_trail(settings.session_database_url, other_tenant, jobs=3)
    assert await upstream_calls(sim) == 5


# --- 2. our own code raising ---------------------------------------------------------------------


async def test_a_stored_job_whose_request_no_longer_validates_ends_failed_once(settings, sim):
    # A row an older version (or a hand) stored, which today's validation refuses: once, it reached
    # the token estimate and raised, and the job re-ran forever.
    tenant_id, _ = await new_tenant(settings)
    bad = chat(messages=[{"role": "assistant", "content": "x", "tool_calls": 1},
                         {"role": "user", "content": "go on"}])
    async with running_worker(settings):
        jid = await store_raw_job(settings, tenant_id, bad)
        row = await until(lambda: _finished(settings, jid))
    assert row["status"] == "failed" and row["http_status"] == 400
    assert orjson.loads(row["response"])["error"]["code"] == "unreadable_request"
    rows = await assert_trail(settings.session_database_url, tenant_id, jobs=1)
    assert rows[0]["attempt"] == 1  # ran once: never re-enqueued
    events = await fetch(settings.session_database_url, "SELECT event_type FROM audit_events WHERE job_id = $1", jid)
    assert [e["event_type"] for e in events] == ["inference.failed"]
    assert await upstream_calls(sim) == 0


async def test_a_bug_in_our_code_ends_a_job_as_a_clean_500_with_one_receipt(settings, sim, monkeypatch):
    import shared.dispatch as dispatch

    def broken_plan(*_a, **_k):
        raise TypeError("a bug in our own code")

    monkeypatch.setattr(dispatch, "plan_request", broken_plan)
    tenant_id, _ = await new_tenant(settings)
    job = sync_job(tenant_id)
    async with open_resources(settings) as res:
        outcome = await run_dispatch(res, job)
    assert outcome is not None and outcome.http_status == 500
    assert outcome.body["error"] == {"message": "The server had an error while processing your request.",
                                     "type": "server_error", "code": "internal_error", "param": None}
    await assert_trail(settings.session_database_url, tenant_id, jobs=1)
    assert await upstream_calls(sim) == 0


async def test_a_job_attempted_too_often_fails_for_good_without_calling_the_provider(settings, sim):
    tenant_id, _ = await new_tenant(settings)
    async with running_worker(settings):
        jid = await store_raw_job(settings, tenant_id, chat())
        await until(lambda: _finished(settings, jid))
        # the same job, taken over again and again by workers that died (every claim counts)
        jid2 = new_job_id()
        async with open_resources(settings) as res:
            async with res.db.acquire() as conn:
                await create_stored_job(conn, job_id=jid2, tenant_id=UUID(tenant_id), kind=JobKind.ASYNC,
                                        requested_model=MODEL, request=chat(), created_at=datetime.now(UTC))
                await conn.execute("UPDATE jobs SET status = 'running', attempt = $2 WHERE id = $1", jid2,
                                   settings.job_max_attempts)
            await enqueue_stored(res.redis, [jid2])
        row = await until(lambda: _finished(settings, jid2))
    assert row["status"] == "failed" and orjson.loads(row["response"])["error"]["code"] == "internal_error"
    assert "attempted" in orjson.loads(row["response"])["error"]["message"]
    await assert_trail(settings.session_database_url, tenant_id, jobs=2)
    assert await upstream_calls(sim) == 1  # the first job only


async def _finished(settings: Settings, jid: str):
    row = await job_row(settings, jid)
    return row if row is not None and row["status"] in ("succeeded", "failed") else None


# --- 3. idempotency keys stay bound to their work ------------------------------------------------


async def test_a_sync_timeout_keeps_the_key_bound_to_the_job_that_still_runs(settings, sim):
    quick_wait = settings.model_copy(update={"sync_wait_timeout_s": 0.3})
    tenant_id, key = await new_tenant(settings)
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "k-timeout"}
    body = chat("Slow one [sim:latency=1200]")
    async with running_worker(quick_wait), running_gateway(quick_wait) as client:
        first = await client.post("/v1/chat/completions", json=body, headers=headers)
        assert first.status_code == 504
        again = await client.post("/v1/chat/completions", json=body, headers=headers)
        assert again.status_code == 409 and again.json()["error"]["code"] == "idempotency_request_in_progress"

        async def replayed():
            r = await client.post("/v1/chat/completions", json=body, headers=headers)
            return r if r.status_code == 200 else None

        final = await until(replayed)
        assert final.headers["idempotent-replayed"] == "true"
    await assert_trail(settings.session_database_url, tenant_id, jobs=1)
    assert await upstream_calls(sim) == 1


async def test_a_key_whose_lock_expires_while_its_job_runs_never_starts_a_second_job(settings, sim):
    short_lock = settings.model_copy(update={"idempotency_lock_s": 0.1})
    tenant_id, key = await new_tenant(settings)
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "k-lock"}
    body = chat("Slow one [sim:latency=1000]")
    async with running_worker(short_lock), running_gateway(short_lock) as client:
        first = asyncio.create_task(client.post("/v1/chat/completions", json=body, headers=headers))
        await asyncio.sleep(0.4)  # the first request's lock has expired; its job still runs
        second = await client.post("/v1/chat/completions", json=body, headers=headers)
        assert second.status_code == 409
        assert (await first).status_code == 200
    await assert_trail(settings.session_database_url, tenant_id, jobs=1)
    assert await upstream_calls(sim) == 1


async def test_an_async_job_stored_when_the_queue_fails_is_accepted_and_runs_once(settings, sim, monkeypatch):
    import shared.job_queue as stored_jobs

    real = stored_jobs.enqueue_stored

    async def queue_down(*_a, **_k):
        raise RedisConnectionError("Redis went away")

    tenant_id, key = await new_tenant(settings)
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "k-async", "Prefer": "respond-async"}
    async with running_gateway(settings) as client:
        monkeypatch.setattr(stored_jobs, "enqueue_stored", queue_down)
        first = await client.post("/v1/chat/completions", json=chat(), headers=headers)
        monkeypatch.setattr(stored_jobs, "enqueue_stored", real)
        assert first.status_code == 202, first.text  # stored: accepted, whatever the queue did
        again = await client.post("/v1/chat/completions", json=chat(), headers=headers)
        assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
        assert (await job_row(settings, first.json()["id"]))["status"] == "queued"
        async with running_worker(settings):  # its supervisor tick finds the job without a queue entry
            await until(lambda: _finished(settings, first.json()["id"]))
    await assert_trail(settings.session_database_url, tenant_id, jobs=1)
    assert await upstream_calls(sim) == 1


async def test_a_batch_committed_before_a_failure_is_replayed_not_created_again(settings, sim, monkeypatch):
    import gateway.routes.batches as batches_route

    async def broken_nudge(*_a, **_k):
        raise RuntimeError("a bug after the batch was committed")

    tenant_id, key = await new_tenant(settings)
    auth = {"Authorization": f"Bearer {key}"}
    async with running_gateway(settings) as client:
        f = (await upload(client, auth, jsonl(line("x-1")))).json()
        spec = {"input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
        headers = {**auth, "Idempotency-Key": "k-batch"}
        monkeypatch.setattr(batches_route, "nudge_supervisor", broken_nudge)
        with pytest.raises(RuntimeError):  # a caller gets a 500; the in-process transport re-raises it
            await client.post("/v1/batches", json=spec, headers=headers)
        monkeypatch.undo()
        again = await client.post("/v1/batches", json=spec, headers=headers)
        assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    batches = await fetch(settings.session_database_url, "SELECT id FROM batches WHERE tenant_id = $1", UUID(tenant_id))
    assert [r["id"] for r in batches] == [again.json()["id"]]


# --- 4. a NUL in a paid answer ---------------------------------------------------------------------


async def test_an_answer_carrying_a_nul_is_stored_and_returned_byte_for_byte(settings, sim):
    tenant_id, key = await new_tenant(settings)
    auth = {"Authorization": f"Bearer {key}"}
    async with running_worker(settings), running_gateway(settings) as client:
        sync = await client.post("/v1/chat/completions", json=chat("Say it [sim:nul]"),
                                 headers={**auth, "Idempotency-Key": "k-nul"})
        assert sync.status_code == 200, sync.text
        text = sync.json()["choices"][0]["message"]["content"]
        assert "\x00" in text
        replay = await client.post("/v1/chat/completions", json=chat("Say it [sim:nul]"),
                                   headers={**auth, "Idempotency-Key": "k-nul"})
        assert replay.json()["choices"][0]["message"]["content"] == text
        job = (await client.get(f"/v1/jobs/{sync.headers['x-ainfera-job-id']}", headers=auth)).json()
        assert job["response"]["choices"][0]["message"]["content"] == text

        accepted = await client.post("/v1/chat/completions", json=chat("Again [sim:nul]"),
                                     headers={**auth, "Prefer": "respond-async"})
        done = (await client.get(f"/v1/jobs/{accepted.json()['id']}?wait=20", headers=auth)).json()
        assert done["status"] == "succeeded" and "\x00" in done["response"]["choices"][0]["message"]["content"]

        f = (await upload(client, auth, jsonl(line("nul-1", text="Batch [sim:nul]")))).json()
        created = (await client.post("/v1/batches", headers=auth, json={
            "input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"})).json()
        b = await wait_for_batch(client, auth, created["id"])
        out = await content(client, auth, b["output_file_id"])
        assert "\x00" in out[0]["response"]["body"]["choices"][0]["message"]["content"]
    await assert_trail(settings.session_database_url, tenant_id, jobs=3)
    assert await upstream_calls(sim) == 3


# --- 5. the database going away at commit time -------------------------------------------------------


def _via(settings: Settings, port: int) -> Settings:
    """The worker's pool through the flaky proxy (in front of Postgres, or of PgBouncer in that leg)."""
    return settings.model_copy(update={"database_url": through(settings.database_url, port)})


async def _through_a_database_outage(settings: Settings, *, outage_s: float, commit_retry_s: float,
                                     policy: dict[str, float] | None = None) -> int:
    """A sync call whose answer arrives while the worker is cut off Postgres for `outage_s`
    (with `policy`, after a first call, so that it holds its worst case from the worker's lease)."""
    tenant_id, key = await new_tenant(settings, policy=policy)
    async with flaky_proxy("127.0.0.1", urlsplit(settings.database_url).port or 5432) as proxy:
        worker_settings = _via(settings, proxy.port).model_copy(update={"commit_retry_s": commit_retry_s})
        async with running_worker(worker_settings), running_gateway(settings) as client:
            if policy:
                first = await client.post("/v1/chat/completions", json=chat("First"),
                                          headers={"Authorization": f"Bearer {key}"})
                assert first.status_code == 200, first.text
                await asyncio.sleep(0.3)  # the worker's lease is granted
            call = asyncio.create_task(client.post("/v1/chat/completions", json=chat("Hold on [sim:latency=600]"),
                                                   headers={"Authorization": f"Bearer {key}"}))
            await asyncio.sleep(0.2)
            proxy.cut()
            await asyncio.sleep(outage_s)
            proxy.restore()
            r = await call
    assert r.status_code == 200, r.text
    rows = await assert_trail(settings.session_database_url, tenant_id, jobs=2 if policy else 1)
    return int(rows[-1]["attempt"])  # the attempt that committed


async def test_a_commit_the_database_refuses_is_retried_without_calling_the_provider_again(settings, sim):
    assert await _through_a_database_outage(settings, outage_s=1.5, commit_retry_s=20) == 1  # retried in memory
    assert await upstream_calls(sim) == 1


async def test_a_commit_held_through_a_long_outage_is_written_by_the_next_attempt(settings, sim):
    # Longer than the worker keeps retrying: it holds the answer in Redis and gives up its turn.
    assert await _through_a_database_outage(settings, outage_s=2.5, commit_retry_s=0.3) > 1  # a later attempt
    assert await upstream_calls(sim) == 1


async def test_a_budgeted_commit_held_through_an_outage_is_settled_once_from_its_lease(settings, sim):
    assert await _through_a_database_outage(settings, outage_s=2.5, commit_retry_s=0.3,
                                            policy={"daily_budget_usd": 50.0}) > 1
    assert await upstream_calls(sim) == 2
    reservations = await fetch_rows(settings, "SELECT job_id, created_at = settled_at AS moved, cost_usd "
                                              "FROM budget_reservations WHERE job_id NOT LIKE 'lease:%'")
    receipts = await fetch_rows(settings, "SELECT job_id, cost_usd FROM receipts")
    assert {r["job_id"]: r["cost_usd"] for r in reservations} == {r["job_id"]: r["cost_usd"] for r in receipts}
    assert any(r["moved"] for r in reservations)  # the held commit carried its lease hold
    [counter] = await fetch_rows(settings, "SELECT spent_usd, reserved_usd FROM budget_counters "
                                           "WHERE scope = 'tenant' AND period = 'day'")
    assert (counter["spent_usd"], counter["reserved_usd"]) == (sum(r["cost_usd"] for r in receipts), 0)


# --- 5. a stalled worker's late result -----------------------------------------------------------------


async def test_a_stalled_attempt_cannot_replace_a_later_attempts_answer_with_a_failure(settings, sim):
    tenant_id, _ = await new_tenant(settings)
    await sim.post("/_sim/faults", json={"model": UPSTREAM, "fault": "latency=1500", "times": 1})  # attempt 1
    await sim.post("/_sim/faults", json={"model": UPSTREAM, "fault": "latency=600", "times": 1})  # attempt 2
    job = sync_job(tenant_id)
    stalled = settings.model_copy(update={"upstream_deadline_s": 0.8})
    async with open_resources(stalled) as res_a, open_resources(settings) as res_b:
        a = asyncio.create_task(run_dispatch(res_a, job, attempt=1))  # its deadline passes mid-call
        await asyncio.sleep(0.2)
        b = asyncio.create_task(run_dispatch(res_b, job, attempt=2))  # the re-delivery takes the lease
        first, second = await a, await b
    # The stale attempt wrote nothing: it answers no one, or (when the later attempt had already
    # finished by the time its own deadline passed) it replays that answer, never its failure.
    assert first is None or (first.replayed and first.http_status == 200), first
    assert second is not None and second.http_status == 200
    rows = await assert_trail(settings.session_database_url, tenant_id, jobs=1)
    assert rows[0]["status"] == "succeeded"


async def test_a_stalled_attempts_paid_answer_is_kept_when_it_arrives_first(settings, sim):
    tenant_id, _ = await new_tenant(settings)
    await sim.post("/_sim/faults", json={"model": UPSTREAM, "fault": "latency=300", "times": 1})  # attempt 1
    await sim.post("/_sim/faults", json={"model": UPSTREAM, "fault": "latency=1200", "times": 1})  # attempt 2
    job = sync_job(tenant_id)
    async with open_resources(settings) as res:
        a = asyncio.create_task(run_dispatch(res, job, attempt=1))
        await asyncio.sleep(0.1)
        b = asyncio.create_task(run_dispatch(res, job, attempt=2))
        first, second = await a, await b
    assert first is not None and second is not None
    assert second.replayed and second.body == first.body  # one answer, one receipt, both callers see it
    rows = await assert_trail(settings.session_database_url, tenant_id, jobs=1)
    assert rows[0]["status"] == "succeeded"

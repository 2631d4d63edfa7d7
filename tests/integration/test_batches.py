"""Batches and files through the real gateway, workers, Redis and Postgres, with the simulated provider."""

from __future__ import annotations

import asyncio

import asyncpg
import orjson
import pytest

from shared.settings import Settings
from tests.harness import new_tenant, running_gateway, running_worker

pytestmark = pytest.mark.integration


def line(custom_id: str, model: str = "gpt-oss-20b@groq", text: str = "hello", **body) -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": text}], **body}}


def jsonl(*lines: dict | str) -> bytes:
    return b"".join((ln if isinstance(ln, str) else orjson.dumps(ln).decode()).encode() + b"\n" for ln in lines)


@pytest.fixture
async def system(settings: Settings, sim):
    tenant_id, key = await new_tenant(settings)
    async with running_worker(settings), running_gateway(settings) as client:
        yield client, {"Authorization": f"Bearer {key}"}, tenant_id


async def upload(client, auth, content: bytes, purpose: str = "batch", **headers):
    return await client.post("/v1/files", headers={**auth, **headers}, data={"purpose": purpose},
                             files={"file": ("requests.jsonl", content, "application/jsonl")})


async def wait_for_batch(client, auth, batch_id: str, timeout_s: float = 30) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        b = (await client.get(f"/v1/batches/{batch_id}", headers=auth)).json()
        if b["status"] in ("completed", "failed", "expired", "cancelled"):
            return b
        assert loop.time() < deadline, b
        await asyncio.sleep(0.1)


async def content(client, auth, file_id: str) -> list[dict]:
    r = await client.get(f"/v1/files/{file_id}/content", headers=auth)
    assert r.status_code == 200
    return [orjson.loads(x) for x in r.content.splitlines() if x.strip()]


async def test_a_batch_runs_every_line_and_reports_results(system, settings):
    client, auth, _ = system
    lines = [line(f"req-{i}", text=f"question {i}") for i in range(20)]
    lines.append(line("unknown-model", model="gpt-9@nowhere"))
    up = await upload(client, auth, jsonl(*lines))
    assert up.status_code == 200, up.text
    f = up.json()
    assert f["object"] == "file" and f["purpose"] == "batch" and f["status"] == "processed"
    assert f["bytes"] == len(jsonl(*lines))
    created = await client.post("/v1/batches", headers=auth, json={
        "input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h",
        "metadata": {"project": "demo"}})
    assert created.status_code == 200, created.text
    assert created.json()["status"] in ("validating", "in_progress")
    b = await wait_for_batch(client, auth, created.json()["id"])
    assert b["status"] == "completed"
    assert b["request_counts"] == {"total": 21, "completed": 20, "failed": 1}
    assert b["metadata"] == {"project": "demo"}
    out = await content(client, auth, b["output_file_id"])
    err = await content(client, auth, b["error_file_id"])
    assert [o["custom_id"] for o in out] == [f"req-{i}" for i in range(20)]
    assert all(o["response"]["status_code"] == 200 and o["error"] is None for o in out)
    assert out[0]["response"]["body"]["model"] == "gpt-oss-20b@groq"
    assert [e["custom_id"] for e in err] == ["unknown-model"]
    assert err[0]["response"]["status_code"] == 404
    assert err[0]["response"]["body"]["error"]["code"] == "model_not_found"
    files = (await client.get(f"/v1/files/{b['output_file_id']}", headers=auth)).json()
    assert files["purpose"] == "batch_output" and files["bytes"] == sum(
        len(x) for x in (await client.get(f"/v1/files/{b['output_file_id']}/content", headers=auth)).content
        .splitlines(keepends=True))
    conn = await asyncpg.connect(settings.session_database_url)
    try:
        receipts = await conn.fetch("SELECT r.job_id, r.status FROM receipts r JOIN jobs j ON j.id = r.job_id "
                                    "WHERE j.batch_id = $1", b["id"])
        events = await conn.fetchval("SELECT count(*) FROM audit_events WHERE job_id IN "
                                     "(SELECT id FROM jobs WHERE batch_id = $1)", b["id"])
    finally:
        await conn.close()
    assert len(receipts) == 21 and len({r["job_id"] for r in receipts}) == 21 and events == 21
    original = await client.get(f"/v1/files/{f['id']}/content", headers=auth)
    assert original.content == jsonl(*lines)


async def test_listing_and_paging_batches(system):
    client, auth, _ = system
    f = (await upload(client, auth, jsonl(line("a")))).json()
    ids = []
    for _ in range(3):
        r = await client.post("/v1/batches", headers=auth, json={
            "input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"})
        ids.append(r.json()["id"])
    page1 = (await client.get("/v1/batches?limit=2", headers=auth)).json()
    assert [b["id"] for b in page1["data"]] == ids[::-1][:2] and page1["has_more"] is True
    page2 = (await client.get(f"/v1/batches?limit=2&after={page1['last_id']}", headers=auth)).json()
    assert [b["id"] for b in page2["data"]] == [ids[0]] and page2["has_more"] is False


async def test_async_call_answers_202_and_the_job_can_be_awaited(system):
    client, auth, _ = system
    r = await client.post("/v1/chat/completions", headers={**auth, "Prefer": "respond-async"},
                          json={"model": "gpt-oss-20b@groq", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["object"] == "job" and job["status"] in ("queued", "running", "succeeded")
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    done = (await client.get(f"/v1/jobs/{job['id']}?wait=20", headers=auth)).json()
    assert done["status"] == "succeeded"
    assert done["response"]["object"] == "chat.completion" and done["response"]["model"] == "gpt-oss-20b@groq"
    assert done["response"]["ainfera"]["job_id"] == job["id"]


async def test_long_poll_returns_early_when_the_job_finishes(system):
    client, auth, _ = system
    r = await client.post("/v1/chat/completions", headers={**auth, "Prefer": "respond-async"},
                          json={"model": "gpt-oss-20b@groq",
                                "messages": [{"role": "user", "content": "hi [sim:latency=300]"}]})
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    done = (await client.get(f"/v1/jobs/{r.json()['id']}?wait=30", headers=auth)).json()
    assert done["status"] == "succeeded"
    assert loop.time() - t0 < 10  # woken by the completion notice, not by the 30 s timeout


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "line_no", "param"),
    [
        (['{"custom_id": "a", "method": "POST"', ], 1, "line 1"),
        ([line("a"), '{"method": "POST", "url": "/v1/chat/completions", "body": {}}'], 2, "custom_id"),
        ([line("a"), line("b"), line("a")], 3, "custom_id"),
        ([{**line("a"), "method": "GET"}], 1, "method"),
        ([line("a"), {**line("b"), "url": "/v1/embeddings"}], 2, "url"),
        ([line("a"), line("b", max_tokens=-3)], 2, "body.max_tokens"),
        ([{**line("a"), "body": {"model": "x", "messages": []}}], 1, "body.messages"),
        ([line("a"), '["not", "an", "object"]'], 2, "line 2"),
        ([{**line("a"), "extra": 1}], 1, "line 1"),
    ],
)
async def test_a_bad_line_rejects_the_upload_naming_the_line(system, lines, line_no, param):
    client, auth, _ = system
    r = await upload(client, auth, jsonl(*lines))
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["message"].startswith(f"Line {line_no}:") and err["param"] == param
    assert (await client.get("/v1/files", headers=auth)).json()["data"] == []  # nothing kept


async def test_a_duplicate_custom_id_far_apart_is_found_across_chunks(system):
    client, auth, _ = system
    lines = [line(f"r{i}") for i in range(7000)]
    lines.append(line("r10"))
    r = await upload(client, auth, jsonl(*lines))
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("Line 7001: duplicate custom_id 'r10' (first used on line 11)")


async def test_empty_file_wrong_purpose_missing_parts_and_size_limit(system, settings):
    client, auth, _ = system
    empty = await upload(client, auth, b"\n\n")
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "empty_file"
    wrong = await upload(client, auth, jsonl(line("a")), purpose="fine-tune")
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "purpose"
    no_file = await client.post("/v1/files", headers=auth, data={"purpose": "batch"},
                                files={"other": ("x", b"y")})
    assert no_file.status_code == 400
    not_multipart = await client.post("/v1/files", headers=auth, json={"purpose": "batch"})
    assert not_multipart.status_code == 415
    assert (await client.get("/v1/files", headers=auth)).json()["data"] == []


async def test_a_file_over_the_size_limit_is_413(settings, sim):
    small = settings.model_copy(update={"max_upload_bytes": 10_000})
    _, key = await new_tenant(small)
    auth = {"Authorization": f"Bearer {key}"}
    async with running_gateway(small) as client:
        r = await upload(client, auth, jsonl(*[line(f"r{i}") for i in range(200)]))
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
        assert (await client.get("/v1/files", headers=auth)).json()["data"] == []


async def test_batch_creation_checks_its_fields(system):
    client, auth, _ = system
    f = (await upload(client, auth, jsonl(line("a")))).json()
    base = {"input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    for change, param in (({"endpoint": "/v1/embeddings"}, "endpoint"),
                          ({"completion_window": "1h"}, "completion_window"),
                          ({"metadata": {"k": 5}}, "metadata.k"),
                          ({"colour": "red"}, "colour")):
        r = await client.post("/v1/batches", headers=auth, json={**base, **change})
        assert r.status_code == 400 and r.json()["error"]["param"] == param, (change, r.text)
    missing = await client.post("/v1/batches", headers=auth, json={**base, "input_file_id": "file-nope"})
    assert missing.status_code == 404


async def test_another_tenants_files_and_batches_are_indistinguishable_from_missing(system, settings):
    client, auth, _ = system
    _, other_key = await new_tenant(settings, "other")
    other = {"Authorization": f"Bearer {other_key}"}
    f = (await upload(client, auth, jsonl(line("a")))).json()
    b = (await client.post("/v1/batches", headers=auth, json={
        "input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"})).json()
    for method, url, body in (("GET", f"/v1/files/{f['id']}", None), ("GET", f"/v1/files/{f['id']}/content", None),
                              ("GET", f"/v1/batches/{b['id']}", None), ("POST", f"/v1/batches/{b['id']}/cancel", None),
                              ("POST", "/v1/batches", {"input_file_id": f["id"], "endpoint": "/v1/chat/completions",
                                                       "completion_window": "24h"})):
        theirs = await client.request(method, url, headers=other, json=body)
        missing = await client.request(method, url.replace(f["id"], "file-nope").replace(b["id"], "batch_nope"),
                                       headers=other, json=body and {**body, "input_file_id": "file-nope"})
        assert theirs.status_code == missing.status_code == 404, url
        assert theirs.json()["error"]["code"] == missing.json()["error"]["code"]
    assert (await client.get("/v1/batches", headers=other)).json()["data"] == []


async def test_cancelling_a_finished_batch_is_400(system):
    client, auth, _ = system
    f = (await upload(client, auth, jsonl(line("a")))).json()
    b = (await client.post("/v1/batches", headers=auth, json={
        "input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"})).json()
    await wait_for_batch(client, auth, b["id"])
    r = await client.post(f"/v1/batches/{b['id']}/cancel", headers=auth)
    assert r.status_code == 400 and r.json()["error"]["code"] == "batch_not_cancellable"


# --- cancel and expiry ---------------------------------------------------------------------------


async def batch_with_some_lines_done(client, auth, file_id: str, done: int) -> dict:
    """Create a batch and return once `done` of its lines have succeeded."""
    b = (await client.post("/v1/batches", headers=auth, json={
        "input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"})).json()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while (await client.get(f"/v1/batches/{b['id']}", headers=auth)).json()["request_counts"]["completed"] < done:
        assert loop.time() < deadline
        await asyncio.sleep(0.05)
    return b


def every_custom_id_once(out: list[dict], err: list[dict], expected: list[str]) -> None:
    seen = [x["custom_id"] for x in out] + [x["custom_id"] for x in err]
    assert sorted(seen) == sorted(expected)


@pytest.fixture
async def throttled(settings: Settings, sim):
    """Few batch slots and a shallow queue: a batch takes seconds, long enough to cancel or expire."""
    slow = settings.model_copy(update={"batch_queue_watermark": 20, "batch_feed_chunk": 10,
                                       "batch_worker_max_jobs": 10})
    _, key = await new_tenant(slow)
    async with running_worker(slow), running_gateway(slow) as client:
        yield client, {"Authorization": f"Bearer {key}"}, slow


async def test_cancel_keeps_finished_lines_and_reports_the_rest(throttled):
    client, auth, settings = throttled
    ids = [f"c{i}" for i in range(300)]
    f = (await upload(client, auth, jsonl(*[line(c, text="slow [sim:latency=200]") for c in ids]))).json()
    b = await batch_with_some_lines_done(client, auth, f["id"], 5)
    r = await client.post(f"/v1/batches/{b['id']}/cancel", headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "cancelling"
    done = await wait_for_batch(client, auth, b["id"])
    assert done["status"] == "cancelled" and done["cancelled_at"] is not None
    out = await content(client, auth, done["output_file_id"])
    err = await content(client, auth, done["error_file_id"])
    every_custom_id_once(out, err, ids)
    assert {e["error"]["code"] for e in err} == {"batch_cancelled"}
    assert 5 <= len(out) < 300
    conn = await asyncpg.connect(settings.session_database_url)
    try:
        receipts = await conn.fetchval("SELECT count(*) FROM receipts r JOIN jobs j ON j.id = r.job_id "
                                       "WHERE j.batch_id = $1", b["id"])
    finally:
        await conn.close()
    assert receipts == len(out)


async def test_an_expired_batch_keeps_finished_lines_and_reports_the_rest_as_expired(throttled):
    client, auth, settings = throttled
    ids = [f"e{i}" for i in range(300)]
    f = (await upload(client, auth, jsonl(*[line(c, text="slow [sim:latency=200]") for c in ids]))).json()
    b = await batch_with_some_lines_done(client, auth, f["id"], 5)
    conn = await asyncpg.connect(settings.session_database_url)
    try:
        await conn.execute("UPDATE batches SET expires_at = now() WHERE id = $1", b["id"])  # 24 h pass
    finally:
        await conn.close()
    done = await wait_for_batch(client, auth, b["id"])
    assert done["status"] == "expired" and done["expired_at"] is not None
    out = await content(client, auth, done["output_file_id"])
    err = await content(client, auth, done["error_file_id"])
    every_custom_id_once(out, err, ids)
    assert {e["error"]["code"] for e in err} == {"batch_expired"}


# --- idempotency ---------------------------------------------------------------------------------


async def count(settings: Settings, sql: str) -> int:
    conn = await asyncpg.connect(settings.session_database_url)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def test_idempotency_key_replays_without_new_work_or_charge(system, settings):
    client, auth, _ = system
    body = {"model": "gpt-oss-20b@groq", "messages": [{"role": "user", "content": "once"}]}
    first = await client.post("/v1/chat/completions", headers={**auth, "Idempotency-Key": "k-1"}, json=body)
    again = await client.post("/v1/chat/completions", headers={**auth, "Idempotency-Key": "k-1"},
                              content=orjson.dumps(body, option=orjson.OPT_INDENT_2))  # same JSON, other bytes
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert again.headers["x-ainfera-receipt-id"] == first.headers["x-ainfera-receipt-id"]
    assert await count(settings, "SELECT count(*) FROM receipts") == 1
    other = await client.post("/v1/chat/completions", headers={**auth, "Idempotency-Key": "k-1"},
                              json={**body, "temperature": 0.5})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"


async def test_a_duplicate_while_the_first_is_in_flight_gets_409(system, settings):
    client, auth, _ = system
    body = {"model": "gpt-oss-20b@groq", "messages": [{"role": "user", "content": "slow [sim:latency=1500]"}]}
    hdrs = {**auth, "Idempotency-Key": "k-slow"}
    first = asyncio.create_task(client.post("/v1/chat/completions", headers=hdrs, json=body))
    for _ in range(200):
        if await count(settings, "SELECT count(*) FROM idempotency_keys") == 1:
            break
        await asyncio.sleep(0.01)
    dup = await client.post("/v1/chat/completions", headers=hdrs, json=body)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "idempotency_request_in_progress"
    assert (await first).status_code == 200
    assert await count(settings, "SELECT count(*) FROM receipts") == 1


async def test_idempotency_keys_are_scoped_per_tenant(system, settings):
    client, auth, _ = system
    _, other_key = await new_tenant(settings, "other")
    body = {"model": "gpt-oss-20b@groq", "messages": [{"role": "user", "content": "mine"}]}
    a = await client.post("/v1/chat/completions", headers={**auth, "Idempotency-Key": "shared"}, json=body)
    b = await client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {other_key}",
                                                           "Idempotency-Key": "shared"}, json=body)
    assert a.status_code == b.status_code == 200 and "idempotent-replayed" not in b.headers
    assert await count(settings, "SELECT count(*) FROM receipts") == 2


async def test_idempotent_async_calls_batches_and_uploads(system, settings):
    client, auth, _ = system
    body = {"model": "gpt-oss-20b@groq", "messages": [{"role": "user", "content": "async once"}]}
    hdrs = {**auth, "Prefer": "respond-async", "Idempotency-Key": "a-1"}
    j1 = await client.post("/v1/chat/completions", headers=hdrs, json=body)
    j2 = await client.post("/v1/chat/completions", headers=hdrs, json=body)
    assert j1.status_code == j2.status_code == 202 and j1.json()["id"] == j2.json()["id"]

    data = jsonl(line("x"), line("y"))
    f1 = await upload(client, auth, data, **{"Idempotency-Key": "f-1"})
    f2 = await upload(client, auth, data, **{"Idempotency-Key": "f-1"})
    assert f1.status_code == f2.status_code == 200 and f1.json()["id"] == f2.json()["id"]
    f3 = await upload(client, auth, jsonl(line("z")), **{"Idempotency-Key": "f-1"})
    assert f3.status_code == 422
    assert len((await client.get("/v1/files", headers=auth)).json()["data"]) == 1

    req = {"input_file_id": f1.json()["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    b1 = await client.post("/v1/batches", headers={**auth, "Idempotency-Key": "b-1"}, json=req)
    b2 = await client.post("/v1/batches", headers={**auth, "Idempotency-Key": "b-1"}, json=req)
    assert b1.json()["id"] == b2.json()["id"]
    assert len((await client.get("/v1/batches", headers=auth)).json()["data"]) == 1
    await client.get(f"/v1/jobs/{j1.json()['id']}?wait=20", headers=auth)
    assert await count(settings, "SELECT count(*) FROM jobs WHERE kind = 'async'") == 1


# --- isolation -----------------------------------------------------------------------------------


async def test_one_tenants_big_batch_does_not_starve_anothers(settings, sim):
    fair = settings.model_copy(update={"batch_queue_watermark": 40, "batch_feed_chunk": 20,
                                       "batch_worker_max_jobs": 10})
    _, key_a = await new_tenant(fair, "big")
    _, key_b = await new_tenant(fair, "small")
    a, b = {"Authorization": f"Bearer {key_a}"}, {"Authorization": f"Bearer {key_b}"}
    async with running_worker(fair), running_gateway(fair) as client:
        big = (await upload(client, a, jsonl(*[line(f"a{i}", text="x [sim:latency=20]") for i in range(600)]))).json()
        small = (await upload(client, b, jsonl(*[line(f"b{i}", text="x [sim:latency=20]") for i in range(20)]))).json()
        req = {"endpoint": "/v1/chat/completions", "completion_window": "24h"}
        big_batch = (await client.post("/v1/batches", headers=a, json={**req, "input_file_id": big["id"]})).json()
        await asyncio.sleep(0.3)  # the big batch gets going first
        small_batch = (await client.post("/v1/batches", headers=b, json={**req, "input_file_id": small["id"]})).json()
        done_small = await wait_for_batch(client, b, small_batch["id"], timeout_s=60)
        progress_big = (await client.get(f"/v1/batches/{big_batch['id']}", headers=a)).json()
        assert done_small["status"] == "completed"
        assert progress_big["status"] == "in_progress", "the small batch finished while the big one was still running"
        await wait_for_batch(client, a, big_batch["id"], timeout_s=120)


async def test_synchronous_calls_are_not_queued_behind_a_batch(system):
    client, auth, _ = system
    f = (await upload(client, auth, jsonl(*[line(f"q{i}", text="x [sim:latency=100]") for i in range(400)]))).json()
    b = (await client.post("/v1/batches", headers=auth, json={
        "input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"})).json()
    await asyncio.sleep(0.5)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    r = await client.post("/v1/chat/completions", headers=auth,
                          json={"model": "gpt-oss-20b@groq", "messages": [{"role": "user", "content": "now"}]})
    assert r.status_code == 200 and loop.time() - t0 < 5
    assert (await client.get(f"/v1/batches/{b['id']}", headers=auth)).json()["status"] == "in_progress"
    await client.post(f"/v1/batches/{b['id']}/cancel", headers=auth)
    await wait_for_batch(client, auth, b["id"], timeout_s=60)

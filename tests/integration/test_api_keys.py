"""API keys a tenant's admin manages: create with a name, an expiry and settings, list (never the
key or its hash), change, revoke; what the gateway does with them (expiry, allowed models); a
revocation holding on every gateway within a second; the command line."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from shared.auth.directory import TenantDirectory
from shared.db.pool import create_pool
from shared.settings import Settings
from tests.harness import ADMIN_KEY, new_tenant, running_gateway, running_worker

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
ALLOWED = "gpt-oss-20b@groq"
OTHER = "claude-haiku-4.5@anthropic"
DEEP: Any = 1
for _ in range(70):
    DEEP = [DEEP]


def chat(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def in_future(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


@pytest.fixture
async def gateway(settings: Settings, sim):
    tenant_id, _ = await new_tenant(settings)
    async with running_worker(settings), running_gateway(settings) as client:
        yield client, tenant_id


async def create_key(client, tenant_id: str, body: dict[str, Any] | None = None):
    return await client.post(f"/v1/admin/tenants/{tenant_id}/keys", json=body, headers=ADMIN) if body is not None \
        else await client.post(f"/v1/admin/tenants/{tenant_id}/keys", headers=ADMIN)


async def refused_within(client, headers: dict[str, str], seconds: float) -> float:
    """Poll until the key is refused; returns how long it took (fails past `seconds`)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        r = await client.get("/v1/models", headers=headers)
        if r.status_code == 401:
            return loop.time() - start
        assert r.status_code == 200, r.text
        assert loop.time() - start < seconds, "the key was still accepted"
        await asyncio.sleep(0.02)


async def test_admin_creates_a_key_with_settings_and_lists_it_without_the_secret(gateway, database_url):
    client, tenant_id = gateway
    expires = in_future(days=30)
    settings = {"allowed_models": [ALLOWED, "ainfera-inference"], "daily_budget_usd": 5.0,
                "rate_limits": {"requests_per_minute": 60}}
    r = await create_key(client, tenant_id, {"name": "ci bot", "expires_at": expires, "settings": settings})
    assert r.status_code == 201, r.text
    made = r.json()
    secret = made["api_key"]
    assert secret.startswith("sk-ainf-") and made["prefix"] == secret[:12] and made["key_id"] == made["id"]
    assert made["name"] == "ci bot" and made["status"] == "active" and made["revoked_at"] is None
    assert datetime.fromisoformat(made["expires_at"]) == datetime.fromisoformat(expires)
    assert made["settings"] == {"allowed_models": ["ainfera-auto", ALLOWED], "daily_budget_usd": 5.0,
                                "rate_limits": {"requests_per_minute": 60}}
    plain = await create_key(client, tenant_id)  # no body: as before
    assert plain.status_code == 201 and plain.json()["name"] is None and plain.json()["settings"] == {}

    listed = await client.get(f"/v1/admin/tenants/{tenant_id}/keys", headers=ADMIN)
    assert listed.status_code == 200
    page = listed.json()
    assert page["object"] == "list" and page["has_more"] is False
    assert [k["id"] for k in page["data"]][:2] == [plain.json()["id"], made["id"]]  # newest first
    assert len(page["data"]) == 3  # and the tenant's first key
    conn = await asyncpg.connect(database_url)
    try:
        key_hash = await conn.fetchval("SELECT key_hash FROM api_keys WHERE id = $1::uuid", made["id"])
    finally:
        await conn.close()
    for leaked in (secret, secret[12:], plain.json()["api_key"], key_hash.hex(), "key_hash", '"api_key":'):
        assert leaked not in listed.text
    one = next(k for k in page["data"] if k["id"] == made["id"])
    assert set(one) == {"object", "id", "tenant_id", "prefix", "name", "created_at", "expires_at", "revoked_at",
                        "settings", "status"}

    first = await client.get(f"/v1/admin/tenants/{tenant_id}/keys?limit=1", headers=ADMIN)
    nxt = await client.get(f"/v1/admin/tenants/{tenant_id}/keys?limit=2&after={first.json()['last_id']}",
                           headers=ADMIN)
    assert first.json()["has_more"] is True and nxt.json()["data"][0]["id"] == made["id"]
    assert (await client.get(f"/v1/admin/tenants/{tenant_id}/keys", headers=bearer(secret))).status_code == 401


async def test_admin_changes_and_revokes_a_key(gateway, settings: Settings):
    client, tenant_id = gateway
    made = (await create_key(client, tenant_id, {"name": "old"})).json()
    url = f"/v1/admin/tenants/{tenant_id}/keys/{made['id']}"
    r = await client.patch(url, json={"name": "new", "settings": {"allowed_models": [ALLOWED]}}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "new" and r.json()["settings"] == {"allowed_models": [ALLOWED]}
    r = await client.patch(url, json={"expires_at": in_future(hours=1)}, headers=ADMIN)
    assert r.json()["name"] == "new" and r.json()["expires_at"] is not None  # the others kept
    bad = await client.patch(url, json={"settings": {"monthly_budget_usd": -1}}, headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "settings.monthly_budget_usd"
    cleared = await client.patch(url, json={"name": None, "expires_at": None, "settings": None}, headers=ADMIN)
    assert cleared.json()["name"] is None and cleared.json()["expires_at"] is None and cleared.json()["settings"] == {}

    assert (await client.get("/v1/models", headers=bearer(made["api_key"]))).status_code == 200
    revoked = await client.delete(url, headers=ADMIN)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    again = await client.delete(url, headers=ADMIN)
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]
    await refused_within(client, bearer(made["api_key"]), 1.0)
    listed = (await client.get(f"/v1/admin/tenants/{tenant_id}/keys", headers=ADMIN)).json()
    assert next(k for k in listed["data"] if k["id"] == made["id"])["status"] == "revoked"

    other_tenant, _ = await new_tenant(settings, "other")
    for wrong in (f"/v1/admin/tenants/{other_tenant}/keys/{made['id']}",
                  f"/v1/admin/tenants/{tenant_id}/keys/00000000-0000-0000-0000-00000000abcd",
                  f"/v1/admin/tenants/{tenant_id}/keys/not-a-uuid"):
        assert (await client.delete(wrong, headers=ADMIN)).status_code == 404
        assert (await client.patch(wrong, json={"name": "x"}, headers=ADMIN)).status_code == 404
    assert (await client.get("/v1/admin/tenants/00000000-0000-0000-0000-00000000abcd/keys",
                             headers=ADMIN)).status_code == 404


@pytest.mark.parametrize(("body", "param", "code"), [
    ({"name": "a\u0000b"}, "name", "invalid_character"),
    ({"name": "tab\there"}, "name", "invalid_value"),
    ({"name": ""}, "name", "invalid_value"),
    ({"name": "x" * 201}, "name", "invalid_value"),
    ({"name": 7}, "name", "invalid_value"),
    ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at", "invalid_value"),
    ({"expires_at": "next tuesday"}, "expires_at", "invalid_value"),
    ({"expires_at": "2999-01-01T00:00:00"}, "expires_at", "invalid_value"),  # no offset
    ({"expires_at": 4102444800}, "expires_at", "invalid_value"),
    ({"settings": {"daily_budget_usd": 0}}, "settings.daily_budget_usd", "invalid_value"),
    ({"settings": {"daily_budget_usd": "5"}}, "settings.daily_budget_usd", "invalid_value"),
    ({"settings": {"rate_limits": {"requests_per_minute": 1.5}}}, "settings.rate_limits.requests_per_minute",
     "invalid_value"),
    ({"settings": {"budget": 5}}, "settings.budget", "invalid_value"),
    ({"settings": {"allowed_models": [ALLOWED, "gpt-9@nowhere"]}}, "settings.allowed_models.1", "unknown_model"),
    ({"settings": {"allowed_models": []}}, "settings.allowed_models", "invalid_value"),
    ({"settings": {"allowed_models": ["m"] * 501}}, "settings.allowed_models", "invalid_value"),
    ({"settings": [1]}, "settings", "invalid_value"),
    ({"settings": {"rate_limits": {"x": DEEP}}}, "settings", "nesting_too_deep"),
    ({"nmae": "typo"}, "nmae", "unknown_parameter"),
])
async def test_bad_key_fields_are_a_400_naming_the_field(gateway, body, param, code):
    client, tenant_id = gateway
    r = await create_key(client, tenant_id, body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["code"] == code, error
    made = (await create_key(client, tenant_id)).json()
    patched = await client.patch(f"/v1/admin/tenants/{tenant_id}/keys/{made['id']}", json=body, headers=ADMIN)
    assert patched.status_code == 400 and patched.json()["error"]["param"] == param


async def test_hostile_key_bodies_are_4xx_never_500(gateway):
    client, tenant_id = gateway
    url = f"/v1/admin/tenants/{tenant_id}/keys"
    huge = {"settings": {"allowed_models": ["x" * 200] * 400}}
    assert (await client.post(url, content=orjson.dumps(huge), headers=ADMIN)).status_code == 413
    deep = b'{"settings": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert (await client.post(url, content=deep, headers=ADMIN)).status_code == 400
    for raw in (b"[]", b'"name"', b"{", b'{"name": "\\u0000"}', b"null"):
        r = await client.post(url, content=raw, headers=ADMIN)
        assert r.status_code in (201, 400), (raw, r.text)  # `null` is an empty body's equal
        assert r.status_code == 201 or r.json()["error"]["type"] == "invalid_request_error"


async def test_an_expired_key_is_refused_though_its_owner_is_cached(gateway):
    client, tenant_id = gateway
    expires = datetime.now(UTC) + timedelta(seconds=1)
    made = (await create_key(client, tenant_id, {"expires_at": expires.isoformat()})).json()
    auth = bearer(made["api_key"])
    assert (await client.get("/v1/models", headers=auth)).status_code == 200  # now cached, for 30 s
    await refused_within(client, auth, 5.0)
    assert datetime.now(UTC) >= expires
    r = await client.post("/v1/chat/completions", json=chat(ALLOWED), headers=auth)
    assert r.status_code == 401 and r.json()["error"] == {
        "message": "The API key provided has expired.", "type": "authentication_error", "code": "invalid_api_key",
        "param": None}
    m = await client.post("/v1/messages", json=chat(OTHER), headers={"x-api-key": made["api_key"],
                                                                       "anthropic-version": "2023-06-01"})
    assert m.status_code == 401 and "expired" in m.json()["error"]["message"]
    listed = (await client.get(f"/v1/admin/tenants/{tenant_id}/keys", headers=ADMIN)).json()
    assert next(k for k in listed["data"] if k["id"] == made["id"])["status"] == "expired"


async def test_allowed_models_refuse_other_models_on_every_endpoint(gateway):
    client, tenant_id = gateway
    made = (await create_key(client, tenant_id, {"settings": {"allowed_models": [ALLOWED]}})).json()
    auth = bearer(made["api_key"])
    ok = await client.post("/v1/chat/completions", json=chat(ALLOWED), headers=auth)
    assert ok.status_code == 200, ok.text
    for model in (OTHER, "ainfera-auto", "gpt-9@nowhere"):
        for path in ("/v1/chat/completions", "/v1/routing/explain"):
            r = await client.post(path, json=chat(model), headers=auth)
            assert r.status_code == 403, (path, model, r.text)
            assert r.json()["error"]["code"] == "model_not_allowed_for_key" and r.json()["error"]["param"] == "model"
    assert (await client.post("/v1/routing/explain", json=chat(ALLOWED), headers=auth)).status_code == 200
    m = await client.post("/v1/messages", json=chat(OTHER),
                          headers={"x-api-key": made["api_key"], "anthropic-version": "2023-06-01"})
    assert m.status_code == 403 and m.json()["error"]["type"] == "permission_error", m.text
    assert ALLOWED in m.json()["error"]["message"]

    auto = (await create_key(client, tenant_id, {"settings": {"allowed_models": ["ainfera-auto"]}})).json()
    for model in ("ainfera-auto", "ainfera-inference"):
        r = await client.post("/v1/routing/explain", json=chat(model), headers=bearer(auto["api_key"]))
        assert r.status_code == 200, r.text
    pinned = await client.post("/v1/routing/explain", json=chat(ALLOWED), headers=bearer(auto["api_key"]))
    assert pinned.status_code == 403


async def test_a_batch_naming_a_model_the_key_may_not_use_is_refused(gateway):
    client, tenant_id = gateway
    made = (await create_key(client, tenant_id, {"settings": {"allowed_models": [ALLOWED]}})).json()
    auth = bearer(made["api_key"])
    lines = [{"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": chat(model)}
             for i, model in enumerate([ALLOWED, ALLOWED, OTHER, ALLOWED], start=1)]
    content = b"\n".join(orjson.dumps(line) for line in lines) + b"\n"
    f = await client.post("/v1/files", headers=auth, data={"purpose": "batch"},
                          files={"file": ("requests.jsonl", content, "application/jsonl")})
    assert f.status_code == 200, f.text
    body = {"input_file_id": f.json()["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    r = await client.post("/v1/batches", json=body, headers=auth)
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == "model_not_allowed_for_key" and error["param"] == "input_file_id"
    assert error["message"].startswith("Line 3 ") and OTHER in error["message"]
    assert (await client.get("/v1/batches", headers=auth)).json()["data"] == []

    only_allowed = b"\n".join(orjson.dumps(line) for line in lines if line["body"]["model"] == ALLOWED)
    g = await client.post("/v1/files", headers=auth, data={"purpose": "batch"},
                          files={"file": ("ok.jsonl", only_allowed, "application/jsonl")})
    ok = await client.post("/v1/batches", json={**body, "input_file_id": g.json()["id"]}, headers=auth)
    assert ok.status_code == 200, ok.text


async def test_a_revocation_on_one_gateway_holds_on_another_within_a_second(settings: Settings, sim):
    tenant_id, _ = await new_tenant(settings)
    async with running_gateway(settings) as a, running_gateway(settings) as b:
        made = (await create_key(a, tenant_id, {"name": "shared"})).json()
        auth = bearer(made["api_key"])
        assert (await b.get("/v1/models", headers=auth)).status_code == 200  # b has the owner cached
        assert (await a.delete(f"/v1/admin/tenants/{tenant_id}/keys/{made['id']}", headers=ADMIN)).status_code == 200
        await refused_within(b, auth, 1.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_process_that_missed_the_notice_drops_a_revoked_key_within_a_second(settings: Settings,
                                                                                     redis_flushed):
    """No listener at all here: only the key version on Redis tells this directory of the revocation."""
    tenant_id, _ = await new_tenant(settings)
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    clock = FakeClock()
    try:
        directory = TenantDirectory(pool, ttl_s=30.0, clock=clock, redis=redis_flushed)
        async with running_gateway(settings) as admin:
            made = (await create_key(admin, tenant_id)).json()
            assert await directory.owner_of(made["api_key"]) is not None
            await admin.delete(f"/v1/admin/tenants/{tenant_id}/keys/{made['id']}", headers=ADMIN)
        clock.now += 0.5
        assert await directory.owner_of(made["api_key"]) is not None  # cached, and Redis not asked yet
        clock.now += 0.6
        assert await directory.owner_of(made["api_key"]) is None
    finally:
        await pool.close()


def cli(settings: Settings, *args: str, command: str = "keys") -> subprocess.CompletedProcess[str]:
    env = {"AINFERA_DATABASE_URL": settings.session_database_url, "AINFERA_REDIS_URL": settings.redis_url,
           "AINFERA_REDIS_CLUSTER": str(settings.redis_cluster).lower(), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "shared.cli.main", command, *args], env=env, capture_output=True,
                          text=True, check=False)


async def test_cli_creates_lists_and_revokes_keys(settings: Settings, redis_flushed):
    tenant_id, _ = await new_tenant(settings)
    made = cli(settings, "create", "--tenant", tenant_id, "--name", "deploy", "--expires-at", in_future(days=1),
               "--settings", json.dumps({"allowed_models": [ALLOWED], "max_cost_per_call_usd": 0.01}))
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    assert key["api_key"].startswith("sk-ainf-") and key["name"] == "deploy"
    assert key["settings"] == {"allowed_models": [ALLOWED], "max_cost_per_call_usd": 0.01}

    listed = cli(settings, "list", "--tenant", tenant_id)
    assert listed.returncode == 0, listed.stderr
    assert key["api_key"] not in listed.stdout and key["api_key"][12:] not in listed.stdout
    assert json.loads(listed.stdout)["data"][0]["id"] == key["id"]

    version = await redis_flushed.get("ainfera:api-keys:version")
    revoked = cli(settings, "revoke", "--tenant", tenant_id, key["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["status"] == "revoked" and '"api_key":' not in revoked.stdout
    assert await redis_flushed.get("ainfera:api-keys:version") != version

    older = cli(settings, "create", "--tenant", tenant_id, "--name", "old spelling", command="key")
    assert older.returncode == 0 and json.loads(older.stdout)["name"] == "old spelling", older.stderr
    unreachable = subprocess.run(
        [sys.executable, "-m", "shared.cli.main", "keys", "revoke", "--tenant", tenant_id,
         json.loads(older.stdout)["id"]], capture_output=True, text=True, check=False,
        env={"AINFERA_DATABASE_URL": settings.session_database_url, "AINFERA_REDIS_URL": "redis://127.0.0.1:1/0",
             "PATH": "/usr/bin:/bin"})
    assert unreachable.returncode == 0 and "warning: could not reach Redis" in unreachable.stderr
    assert json.loads(unreachable.stdout)["status"] == "revoked"

    for args, says in ((("create", "--tenant", tenant_id, "--settings", '{"allowed_models": ["nope"]}'),
                        "Unknown model 'nope'"),
                       (("create", "--tenant", tenant_id, "--settings", "{"), "not valid JSON"),
                       (("create", "--tenant", tenant_id, "--expires-at", "2001-01-01T00:00:00Z"), "not in the future"),
                       (("revoke", "--tenant", tenant_id, "00000000-0000-0000-0000-00000000abcd"), "no API key"),
                       (("list", "--tenant", "not-a-uuid"), "must be a tenant id")):
        bad = cli(settings, *args)
        assert bad.returncode != 0 and says in bad.stderr, (args, bad.stderr)


async def _batch_of(client, auth: dict[str, str], models: list[str]) -> str:
    lines = [{"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": chat(model)}
             for i, model in enumerate(models, start=1)]
    content = b"\n".join(orjson.dumps(line) for line in lines) + b"\n"
    f = await client.post("/v1/files", headers=auth, data={"purpose": "batch"},
                          files={"file": ("requests.jsonl", content, "application/jsonl")})
    assert f.status_code == 200, f.text
    r = await client.post("/v1/batches", headers=auth, json={
        "input_file_id": f.json()["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def _finished(client, auth: dict[str, str], batch_id: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The finished batch, and each line's outcome by custom_id: "ok" or its error code."""
    for _ in range(300):
        b = (await client.get(f"/v1/batches/{batch_id}", headers=auth)).json()
        if b["status"] == "completed":
            break
        await asyncio.sleep(0.1)
    assert b["status"] == "completed", b
    outcomes: dict[str, str] = {}
    for file_id in (b["output_file_id"], b["error_file_id"]):
        if file_id is None:
            continue
        for raw in (await client.get(f"/v1/files/{file_id}/content", headers=auth)).content.splitlines():
            item = orjson.loads(raw)
            body = item["response"]["body"] if item.get("response") else {}
            outcomes[item["custom_id"]] = "ok" if item["response"]["status_code"] == 200 else body["error"]["code"]
    return b, outcomes


@pytest.mark.parametrize("change", ["narrow", "revoke", "budget"])
async def test_a_batch_line_answers_to_its_key_as_the_key_is_when_the_line_runs(settings: Settings, sim, change):
    tenant_id, other_key = await new_tenant(settings)
    reader = bearer(other_key)  # the tenant's other key reads the batch
    async with running_gateway(settings) as client:  # no worker yet: the batch waits
        made = (await create_key(client, tenant_id, {"settings": {"allowed_models": [ALLOWED, OTHER]}})).json()
        batch_id = await _batch_of(client, bearer(made["api_key"]), [ALLOWED, OTHER])
        url = f"/v1/admin/tenants/{tenant_id}/keys/{made['id']}"
        if change == "narrow":
            r = await client.patch(url, json={"settings": {"allowed_models": [ALLOWED]}}, headers=ADMIN)
        elif change == "revoke":
            r = await client.delete(url, headers=ADMIN)
        else:
            r = await client.patch(url, json={"settings": {"daily_budget_usd": 1e-9}}, headers=ADMIN)
        assert r.status_code == 200, r.text
        async with running_worker(settings):
            batch, outcomes = await _finished(client, reader, batch_id)
    expected = {"narrow": {"r1": "ok", "r2": "model_not_allowed_for_key"},
                "revoke": {"r1": "api_key_revoked", "r2": "api_key_revoked"},
                "budget": {"r1": "budget_exceeded", "r2": "budget_exceeded"}}[change]
    assert outcomes == expected
    assert batch["request_counts"]["failed"] == sum(v != "ok" for v in expected.values())
    conn = await asyncpg.connect(settings.session_database_url)
    try:
        keys = {r["key_id"] for r in await conn.fetch("SELECT key_id FROM jobs WHERE batch_id = $1", batch_id)}
    finally:
        await conn.close()
    assert {str(k) for k in keys} == {made["id"]}  # its lines carry the key (spend by key counts them)

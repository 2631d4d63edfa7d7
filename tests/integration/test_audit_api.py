"""The audit chain and receipts as a customer sees them: read API, verification, signatures, rotation."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from ainfera.audit import AuditEvent
from ainfera.verify import verify_chain

from shared.settings import Settings
from shared.signing import generate_key_file, public_keys, verify
from tests.harness import new_tenant, running_gateway, running_worker

pytestmark = pytest.mark.integration


def chat(text: str, model: str = "gpt-oss-20b@groq") -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


@pytest.fixture
async def system(settings: Settings, sim):
    tenant_id, key = await new_tenant(settings)
    async with running_worker(settings), running_gateway(settings) as client:
        yield client, {"Authorization": f"Bearer {key}"}, tenant_id


async def calls(client, auth, n: int, model: str = "gpt-oss-20b@groq") -> list[dict]:
    out = []
    for i in range(n):
        r = await client.post("/v1/chat/completions", json=chat(f"call {i}", model), headers=auth)
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


async def tamper(settings: Settings, sql: str, *args) -> None:
    """What someone with database superuser rights could do: switch the triggers off and edit."""
    conn = await asyncpg.connect(settings.session_database_url)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(sql, *args)
    finally:
        await conn.close()


async def test_events_are_listed_in_seq_order_and_the_public_sdk_verifies_them(system):
    client, auth, tenant_id = system
    await calls(client, auth, 5)
    body = (await client.get(f"/v1/audit/{tenant_id}", headers=auth)).json()
    events = body["events"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5] and events[0]["previous_hash"] is None
    assert all(e["agent_id"] == tenant_id and e["event_type"] == "inference.routed" for e in events)
    assert {"seq", "event_type", "tenant_id", "time", "job_id", "receipt_id"} <= set(events[0]["payload"])
    parsed = [AuditEvent.model_validate(e) for e in events]
    assert verify_chain(parsed) is True
    page = (await client.get(f"/v1/audit/{tenant_id}?since_seq=2&limit=2", headers=auth)).json()
    assert [e["seq"] for e in page["events"]] == [3, 4] and page["has_more"] is True
    capped = await client.get(f"/v1/audit/{tenant_id}?limit=10000", headers=auth)
    assert capped.status_code == 200 and len(capped.json()["events"]) == 5


@pytest.mark.parametrize("query", ["since_seq=abc", "since_seq=-1", "limit=0", "limit=ten", "since_seq=1.5"])
async def test_malformed_paging_is_400(system, query):
    client, auth, tenant_id = system
    r = await client.get(f"/v1/audit/{tenant_id}?{query}", headers=auth)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


async def test_another_tenants_chain_and_receipts_are_404(system, settings):
    client, auth, tenant_id = system
    done = await calls(client, auth, 1)
    other_id, other_key = await new_tenant(settings, "other")
    other = {"Authorization": f"Bearer {other_key}"}
    for path in (f"/v1/audit/{tenant_id}", f"/v1/audit/{tenant_id}/verify", f"/v1/audit/{tenant_id}/checkpoint",
                 f"/v1/receipts/{done[0]['ainfera']['receipt_id']}", "/v1/audit/not-a-uuid",
                 "/v1/receipts/rcpt_unknown"):
        r = await client.get(path, headers=other)
        assert r.status_code == 404, path
    assert (await client.get("/v1/receipts", headers=other)).json()["data"] == []
    assert (await client.get(f"/v1/audit/{other_id}", headers=other)).json()["events"] == []


async def test_verify_reports_the_first_edited_event(system, settings):
    client, auth, tenant_id = system
    await calls(client, auth, 4)
    ok = (await client.get(f"/v1/audit/{tenant_id}/verify", headers=auth)).json()
    assert ok == {"agent_id": tenant_id, "tenant_id": tenant_id, "event_count": 4, "valid": True,
                  "failure_seq": None, "failure_reason": None}
    await tamper(settings, "UPDATE audit_events SET payload = replace(payload, '\"cost_usd\":\"', "
                           "'\"cost_usd\":\"0') WHERE seq = 3 AND tenant_id = $1::uuid", tenant_id)
    bad = (await client.get(f"/v1/audit/{tenant_id}/verify", headers=auth)).json()
    assert bad["valid"] is False and bad["failure_seq"] == 3 and bad["event_count"] == 2


async def test_receipts_and_checkpoints_are_signed_with_a_published_key(system, settings):
    client, auth, tenant_id = system
    done = await calls(client, auth, 3)
    keys = public_keys((await client.get("/.well-known/jwks.json")).json())
    assert len(keys) == 1
    receipt = (await client.get(f"/v1/receipts/{done[0]['ainfera']['receipt_id']}", headers=auth)).json()
    assert receipt["signature"]["alg"] == "EdDSA" and verify(receipt, keys) is None
    forged = {**receipt, "cost_usd": "0"}
    assert verify(forged, keys) == "signature does not match"
    await tamper(settings, "UPDATE receipts SET cost_usd = 0 WHERE id = $1", receipt["id"])
    edited = (await client.get(f"/v1/receipts/{receipt['id']}", headers=auth)).json()
    assert verify(edited, keys) == "signature does not match"
    checkpoint = (await client.get(f"/v1/audit/{tenant_id}/checkpoint", headers=auth)).json()
    assert checkpoint["seq"] == 3 and verify(checkpoint, keys) is None
    events = (await client.get(f"/v1/audit/{tenant_id}", headers=auth)).json()["events"]
    assert checkpoint["event_hash"] == events[-1]["event_hash"]


async def test_receipts_list_pages_and_filters(system):
    client, auth, _ = system
    await calls(client, auth, 3)
    await calls(client, auth, 2, model="llama-3.1-8b@groq")
    page = (await client.get("/v1/receipts?limit=2", headers=auth)).json()
    assert len(page["data"]) == 2 and page["has_more"] is True
    rest = (await client.get(f"/v1/receipts?limit=10&after={page['last_id']}", headers=auth)).json()
    assert len(rest["data"]) == 3 and rest["has_more"] is False
    only = (await client.get("/v1/receipts?model=llama-3.1-8b@groq", headers=auth)).json()["data"]
    assert len(only) == 2 and {r["model"] for r in only} == {"llama-3.1-8b@groq"}
    future = int(datetime.now(UTC).timestamp()) + 3600
    assert (await client.get(f"/v1/receipts?created_after={future}", headers=auth)).json()["data"] == []
    assert len((await client.get(f"/v1/receipts?created_before={future}", headers=auth)).json()["data"]) == 5


async def test_key_rotation_keeps_old_signatures_verifiable(settings, sim, tmp_path):
    _, key = await new_tenant(settings)
    auth = {"Authorization": f"Bearer {key}"}
    old_file = tmp_path / "old.pem"
    generate_key_file(old_file)
    first = settings.model_copy(update={"signing_key": None, "signing_key_file": str(old_file)})
    async with running_worker(first), running_gateway(first) as client:
        old_receipt_id = (await calls(client, auth, 1))[0]["ainfera"]["receipt_id"]
    new_file = tmp_path / "new.pem"
    generate_key_file(new_file)
    rotated = settings.model_copy(update={"signing_key": None, "signing_key_file": str(new_file),
                                          "retired_signing_key_files": str(old_file)})
    async with running_worker(rotated), running_gateway(rotated) as client:
        new_receipt_id = (await calls(client, auth, 1))[0]["ainfera"]["receipt_id"]
        keys = public_keys((await client.get("/.well-known/jwks.json")).json())
        old = (await client.get(f"/v1/receipts/{old_receipt_id}", headers=auth)).json()
        new = (await client.get(f"/v1/receipts/{new_receipt_id}", headers=auth)).json()
    assert len(keys) == 2 and old["signature"]["kid"] != new["signature"]["kid"]
    assert verify(old, keys) is None and verify(new, keys) is None


async def test_a_process_without_a_signing_key_refuses_to_start(settings):
    from shared.resources import open_resources
    from shared.signing import SigningKeyMissing

    keyless = settings.model_copy(update={"signing_key": None, "signing_key_file": "/nonexistent/key.pem"})
    with pytest.raises(SigningKeyMissing, match="AINFERA_SIGNING_KEY"):
        async with open_resources(keyless):
            pass

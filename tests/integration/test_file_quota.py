"""The per-tenant quota on stored input files, through the real gateway and Postgres: checked while
an upload streams in, and held when one tenant uploads several files at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import UUID

import asyncpg
import orjson
import pytest

from shared.db.files import create_file, reserve_input_bytes
from shared.db.pool import create_pool
from shared.settings import Settings
from tests.harness import new_tenant, running_gateway

pytestmark = pytest.mark.integration

BOUNDARY = "quota-test-boundary"


def jsonl(n: int, tag: str) -> bytes:
    return b"".join(orjson.dumps({
        "custom_id": f"{tag}-{i}", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "gpt-oss-20b@groq", "messages": [{"role": "user", "content": f"question {i}"}]},
    }) + b"\n" for i in range(n))


SIZE = len(jsonl(200, "a"))  # each test file is about this big


async def upload(client, auth, content: bytes):
    return await client.post("/v1/files", headers=auth, data={"purpose": "batch"},
                             files={"file": ("requests.jsonl", content, "application/jsonl")})


async def stored(settings: Settings, tenant_id: str) -> list[tuple[str, int]]:
    """(status, bytes) of every file row the tenant has, whatever its state."""
    conn = await asyncpg.connect(settings.session_database_url)
    try:
        rows = await conn.fetch("SELECT status, bytes FROM files WHERE tenant_id = $1 ORDER BY created_at",
                                UUID(tenant_id))
    finally:
        await conn.close()
    return [(r["status"], r["bytes"]) for r in rows]


def assert_quota_refusal(r, limit: int) -> None:
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert error["code"] == "storage_quota_exceeded" and error["type"] == "invalid_request_error"
    assert error["param"] == "file" and str(limit) in error["message"]


async def test_an_upload_that_would_exceed_the_tenants_quota_is_refused(settings: Settings):
    limit = int(SIZE * 2.5)
    quota = settings.model_copy(update={"max_tenant_file_bytes": limit})
    tenant_id, key = await new_tenant(quota)
    _, other_key = await new_tenant(quota, name="globex")
    auth = {"Authorization": f"Bearer {key}"}
    async with running_gateway(quota) as client:
        for tag in ("a", "b"):
            assert (await upload(client, auth, jsonl(200, tag))).status_code == 200
        assert_quota_refusal(await upload(client, auth, jsonl(200, "c")), limit)
        assert [s for s, _ in await stored(quota, tenant_id)] == ["processed", "processed"]
        # The refused upload held nothing afterwards: what is left still fits ...
        assert (await upload(client, auth, jsonl(60, "d"))).status_code == 200
        # ... and the quota is the tenant's own.
        assert (await upload(client, {"Authorization": f"Bearer {other_key}"}, jsonl(200, "e"))).status_code == 200
    assert sum(b for _, b in await stored(quota, tenant_id)) <= limit


async def test_two_uploads_that_each_fit_cannot_together_exceed_the_quota(settings: Settings):
    limit = int(SIZE * 1.5)
    quota = settings.model_copy(update={"max_tenant_file_bytes": limit})
    tenant_id, key = await new_tenant(quota)
    auth = {"Authorization": f"Bearer {key}"}
    first = jsonl(200, "a")
    split = int(len(first) * 0.8)
    read_first_part, finish = asyncio.Event(), asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
               f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n'
               f"Content-Type: application/jsonl\r\n\r\n").encode()
        yield first[:split]
        read_first_part.set()  # the gateway asks for more only once it has taken in what came before
        await finish.wait()
        yield first[split:] + f"\r\n--{BOUNDARY}--\r\n".encode()

    async with running_gateway(quota) as client:
        slow = asyncio.create_task(client.post(
            "/v1/files", content=slow_body(),
            headers={**auth, "content-type": f"multipart/form-data; boundary={BOUNDARY}"}))
        await asyncio.wait_for(read_first_part.wait(), timeout=10)
        # 80% of one file is in; a whole second one would take the tenant over 150%.
        assert_quota_refusal(await upload(client, auth, jsonl(200, "b")), limit)
        finish.set()
        r = await slow
        assert r.status_code == 200, r.text
        assert r.json()["bytes"] == len(first)
    assert await stored(quota, tenant_id) == [("processed", len(first))]


async def test_concurrent_reservations_never_overbook_a_tenant(settings: Settings):
    tenant_id, _ = await new_tenant(settings)
    pool = await create_pool(settings.database_url, min_size=20, max_size=20)
    try:
        async with pool.acquire() as conn:
            for i in range(20):
                await create_file(conn, file_id=f"file-q{i}", tenant_id=UUID(tenant_id), purpose="batch",
                                  kind="input", filename="x.jsonl", status="uploading")

        async def reserve(i: int) -> bool:
            async with pool.acquire() as conn:
                return await reserve_input_bytes(conn, f"file-q{i}", UUID(tenant_id), 100, limit=750)

        granted = await asyncio.gather(*(reserve(i) for i in range(20)))
    finally:
        await pool.close()
    assert sum(granted) == 7
    assert sum(b for _, b in await stored(settings, tenant_id)) == 700

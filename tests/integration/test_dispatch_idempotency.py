"""A job delivered twice (arq is at-least-once) leaves one receipt, one audit event, one charge."""

from __future__ import annotations

import asyncio
import itertools
from uuid import UUID

import asyncpg
import pytest

from shared.audit.chain import verify_events
from shared.chat.request import validate_chat_request
from shared.dispatch import run_dispatch
from shared.ids import job_id
from shared.jobs import DispatchJob, JobKind
from shared.resources import open_resources
from tests.harness import new_tenant

pytestmark = pytest.mark.integration


def job(tenant_id: str, jid: str | None = None, text: str = "hello there") -> DispatchJob:
    from datetime import UTC, datetime

    return DispatchJob(
        job_id=jid or job_id(),
        tenant_id=UUID(tenant_id),
        kind=JobKind.SYNC,
        request=validate_chat_request({"model": "gpt-oss-120b@groq", "messages": [{"role": "user", "content": text}]}),
        submitted_at=datetime.now(UTC),
    )


async def counts(dsn: str) -> tuple[int, int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return (
            await conn.fetchval("SELECT count(*) FROM jobs"),
            await conn.fetchval("SELECT count(*) FROM receipts"),
            await conn.fetchval("SELECT count(*) FROM audit_events WHERE job_id IS NOT NULL"),
        )
    finally:
        await conn.close()


async def test_a_second_run_of_a_finished_job_replays_without_writing(settings, sim):
    tenant_id, _ = await new_tenant(settings)
    j = job(tenant_id)
    async with open_resources(settings) as res:
        first = await run_dispatch(res, j, attempt=1)
        second = await run_dispatch(res, j, attempt=2)
    assert not first.replayed and second.replayed
    assert second.body == first.body
    assert await counts(settings.session_database_url) == (1, 1, 1)
    # job_try > 1 looks first, so the provider was not called again
    assert (await sim.get("/_sim/stats")).json()["total"] == 1


async def test_concurrent_runs_of_one_job_write_once(settings, sim):
    tenant_id, _ = await new_tenant(settings)
    j = job(tenant_id)
    async with open_resources(settings) as res:
        outcomes = await asyncio.gather(*(run_dispatch(res, j, attempt=1) for _ in range(4)))
    receipts = {o.body["ainfera"]["receipt_id"] for o in outcomes}
    assert len(receipts) == 1, "every caller sees the one receipt that was written"
    assert sum(not o.replayed for o in outcomes) == 1
    assert await counts(settings.session_database_url) == (1, 1, 1)


async def test_concurrent_jobs_of_one_tenant_never_fork_the_chain(settings, sim):
    tenant_id, _ = await new_tenant(settings)
    async with open_resources(settings) as res:
        await asyncio.gather(*(run_dispatch(res, job(tenant_id, text=f"n{i}")) for i in range(40)))
    conn = await asyncpg.connect(settings.session_database_url)
    try:
        events = await conn.fetch(
            "SELECT seq, payload, previous_hash, event_hash FROM audit_events WHERE tenant_id = $1 ORDER BY seq",
            UUID(tenant_id))
    finally:
        await conn.close()
    assert [e["seq"] for e in events] == list(range(1, 41))
    for prev, cur in itertools.pairwise(events):
        assert cur["previous_hash"] == prev["event_hash"]
    # the database computed the hashes; the project's own rule (and so the SDK's) agrees
    assert verify_events([dict(e) for e in events]) == (40, None)


async def test_audit_rows_cannot_be_changed_or_removed(settings, sim):
    tenant_id, _ = await new_tenant(settings)
    async with open_resources(settings) as res:
        await run_dispatch(res, job(tenant_id))
    conn = await asyncpg.connect(settings.session_database_url)
    try:
        for sql in ("UPDATE audit_events SET event_type = 'x'", "DELETE FROM audit_events",
                    "TRUNCATE audit_events CASCADE"):
            with pytest.raises(asyncpg.PostgresError, match="append-only"):
                await conn.execute(sql)
        # a forged link is refused by the database
        with pytest.raises(asyncpg.PostgresError, match="link broken"):
            await conn.execute(
                "INSERT INTO audit_events (tenant_id, seq, event_type, payload, previous_hash, event_hash, created_at)"
                " VALUES ($1, 2, 'x', '{}', $2, $2, now())", UUID(tenant_id), "0" * 64)
    finally:
        await conn.close()

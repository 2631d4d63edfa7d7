"""The migration runner (lock, checksums, forward-only) and every named query against the schema."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest

from shared.db.migrate import MIGRATIONS_DIR, MigrationError, discover, ensure_database, migrate
from shared.db.queries import all_queries
from tests.harness import drop_database, dsn_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def empty_db():
    import uuid

    name = f"ainfera_mig_{uuid.uuid4().hex[:10]}"
    dsn = dsn_for(name)
    assert await ensure_database(dsn) is True
    assert await ensure_database(dsn) is False
    yield dsn
    await drop_database(name)


async def test_migrations_apply_once_and_record_checksums(empty_db):
    applied = await migrate(empty_db)
    assert [m.version for m in applied] == [m.version for m in discover()]
    assert await migrate(empty_db) == []
    conn = await asyncpg.connect(empty_db)
    try:
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    assert [(r["version"], r["checksum"]) for r in rows] == [(m.version, m.checksum) for m in discover()]


async def test_concurrent_migrators_take_turns(empty_db):
    results = await asyncio.gather(*(migrate(empty_db) for _ in range(3)))
    assert sorted(len(r) for r in results) == [0, 0, len(discover())]


async def test_an_edited_applied_migration_is_refused(empty_db, tmp_path: Path):
    for f in MIGRATIONS_DIR.glob("*.sql"):
        shutil.copy(f, tmp_path / f.name)
    await migrate(empty_db, tmp_path)
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="forward-only"):
        await migrate(empty_db, tmp_path)


async def test_badly_named_migration_files_are_refused(tmp_path: Path):
    (tmp_path / "1_init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_description"):
        discover(tmp_path)


async def test_every_named_query_prepares_against_the_schema(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        queries = all_queries()
        assert len(queries) > 10
        for name, text in queries.items():
            try:
                await conn.prepare(text)
            except asyncpg.PostgresError as e:  # pragma: no cover - the message names the query
                pytest.fail(f"{name}: {e}")
    finally:
        await conn.close()


async def test_the_readable_schema_is_the_one_the_migrations_build(empty_db):
    from shared.db.schema_dump import SCHEMA_FILE, dump_schema

    await migrate(empty_db)
    assert dump_schema(empty_db) == SCHEMA_FILE.read_text(), "migrations/schema.sql is stale: run `make schema`"


async def test_finished_jobs_and_receipts_are_written_by_their_column_names(empty_db):
    # finish_dispatch reads both with jsonb_populate_record, where a misspelt key is a silent NULL.
    import dataclasses

    from shared.jobs import FinishedJob
    from shared.receipts.types import Receipt

    await migrate(empty_db)
    conn = await asyncpg.connect(empty_db)
    try:
        rows = await conn.fetch("SELECT table_name, column_name FROM information_schema.columns "
                                "WHERE table_name IN ('jobs', 'receipts')")
    finally:
        await conn.close()
    columns = {t: {r["column_name"] for r in rows if r["table_name"] == t} for t in ("jobs", "receipts")}
    assert {f.name for f in dataclasses.fields(FinishedJob)} <= columns["jobs"]
    assert set(FinishedJob.row(_a_finished_job())) == {f.name for f in dataclasses.fields(FinishedJob)}
    assert {f.name for f in dataclasses.fields(Receipt)} == columns["receipts"]


def _a_finished_job():
    from datetime import UTC, datetime
    from uuid import uuid4

    from shared.jobs import FinishedJob, JobKind, JobStatus

    now = datetime.now(UTC)
    return FinishedJob(id="job_x", tenant_id=uuid4(), kind=JobKind.SYNC, status=JobStatus.SUCCEEDED,
                       requested_model="m", response="{}", http_status=200, receipt_id="rcpt_x", created_at=now,
                       finished_at=now, attempt=1)

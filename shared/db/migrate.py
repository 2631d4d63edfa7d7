"""The migration runner: applies `migrations/NNNN_description.sql` in order, once each.

It holds an advisory lock while it works (two deploys migrating at once take turns),
records a SHA-256 checksum of every applied file and refuses to run when an applied
file was edited afterwards: migrations are forward-only.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
READABLE_SCHEMA = "schema.sql"
_LOCK_KEY = 0x61696E66  # "ainf": one lock id for every migrator of this project


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        if path.name == READABLE_SCHEMA:
            continue  # the schema the migrations build, for reading (shared/db/schema_dump.py)
        m = _FILE.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files are named NNNN_description.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a number")
    return found


async def ensure_database(dsn: str) -> bool:
    """Create the target database if it does not exist. Returns True when it was created."""
    parts = urlsplit(dsn)
    dbname = parts.path.lstrip("/")
    if not dbname:
        return False
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
        try:
            # Identifiers cannot be bound as parameters; quote_ident does the escaping.
            quoted = await admin.fetchval("SELECT quote_ident($1)", dbname)
            await admin.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:
            return False
        finally:
            await admin.close()
        return True
    await conn.close()
    return False


async def drop_database(dsn: str) -> None:
    """Drop the target database if it exists (scratch databases only: `make schema` uses one)."""
    parts = urlsplit(dsn)
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        quoted = await admin.fetchval("SELECT quote_ident($1)", parts.path.lstrip("/"))
        await admin.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await admin.close()


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply pending migrations. Returns those applied by this call."""
    migrations = discover(directory)
    conn: Any = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version    integer PRIMARY KEY,
                       name       text NOT NULL,
                       checksum   text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
            applied = {r["version"]: r for r in rows}
            done: list[Migration] = []
            for mig in migrations:
                row = applied.get(mig.version)
                if row is not None:
                    if row["checksum"] != mig.checksum:
                        raise MigrationError(
                            f"migration {mig.version:04d}_{mig.name} was edited after it was applied; "
                            "migrations are forward-only: add a new file instead"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(mig.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        mig.version,
                        mig.name,
                        mig.checksum,
                    )
                done.append(mig)
            return done
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()

"""The current schema as one readable file (`migrations/schema.sql`), beside the migrations that
build it: what a reader opens instead of replaying three rewrites of a function in their head.

It is `pg_dump --schema-only` of a freshly migrated database, normalised (comments, session
settings and pg_dump's per-run restrict keys dropped) so it only changes when the schema does.
`make schema` rewrites it; a test fails when it is stale.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from urllib.parse import urlsplit, urlunsplit

from shared.db.migrate import MIGRATIONS_DIR, READABLE_SCHEMA, drop_database, ensure_database, migrate

SCHEMA_FILE = MIGRATIONS_DIR / READABLE_SCHEMA
HEADER = ("-- The schema the migrations build, for reading (never applied). Regenerate with `make schema`;\n"
          "-- a test fails when this file is stale.\n")


def dump_schema(dsn: str) -> str:
    """The normalised schema of the database at `dsn`."""
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise RuntimeError("pg_dump is not installed (Debian: postgresql-client)")
    out = subprocess.run([pg_dump, "--schema-only", "--no-owner", "--no-privileges", "--no-comments", dsn],  # noqa: S603
                         capture_output=True, text=True, check=True).stdout
    kept: list[str] = []
    for line in out.splitlines():
        if line.startswith(("--", "SET ", "SELECT pg_catalog.set_config", "\\restrict", "\\unrestrict")):
            continue
        if not line.strip() and (not kept or not kept[-1].strip()):
            continue  # one blank line between statements
        kept.append(line.rstrip())
    return HEADER + "\n" + "\n".join(kept).strip() + "\n"


async def write_schema_file(server_dsn: str) -> str:
    """Migrate a scratch database on the server of `server_dsn`, dump it into `SCHEMA_FILE`."""
    scratch = urlunsplit(urlsplit(server_dsn)._replace(path=f"/ainfera_schema_{uuid.uuid4().hex[:10]}"))
    await ensure_database(scratch)
    try:
        await migrate(scratch)
        text = dump_schema(scratch)
    finally:
        await drop_database(scratch)
    SCHEMA_FILE.write_text(text)
    return str(SCHEMA_FILE)

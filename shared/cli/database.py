"""The command line's database operations: migrate, seed, write the readable schema, create
tenants (and their first key), set spend policies. Each opens its own connection and closes it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from shared.settings import Settings


@contextmanager
def _refusals_exit() -> Iterator[None]:
    """Our errors (bad input) end the command with their message, as `error: ...`."""
    from shared.errors import AinferaError

    try:
        yield
    except AinferaError as e:
        raise SystemExit(f"error: {e.message}") from None


async def migrate_database(settings: Settings) -> None:
    from shared.db.migrate import ensure_database, migrate

    if await ensure_database(settings.session_database_url):
        print("created database", file=sys.stderr)
    done = await migrate(settings.session_database_url)
    print(f"applied {len(done)} migration(s)" + (": " + ", ".join(f"{m.version:04d}_{m.name}" for m in done)
                                                 if done else ""), file=sys.stderr)


async def write_schema(settings: Settings) -> str:
    from shared.db.schema_dump import write_schema_file

    return await write_schema_file(settings.session_database_url)


async def seed(settings: Settings) -> None:
    from shared.catalog.seed import seed_catalog
    from shared.db.pool import connect_session

    conn = await connect_session(settings)
    try:
        providers, models = await seed_catalog(conn)
    finally:
        await conn.close()
    print(f"seeded {providers} providers and {models} models", file=sys.stderr)


async def tenant_create(settings: Settings, name: str) -> dict[str, Any]:
    from shared.auth.keys import hash_key, new_api_key, shown_prefix
    from shared.db.pool import connect_session
    from shared.db.tenants import create_api_key, create_tenant
    from shared.storable import check_storable

    with _refusals_exit():
        check_storable(name, param="--name")
    conn = await connect_session(settings)
    try:
        key = new_api_key()
        async with conn.transaction():
            tenant = await create_tenant(conn, name)
            key_id = await create_api_key(conn, tenant.id, hash_key(key), shown_prefix(key))
    finally:
        await conn.close()
    return {"tenant_id": str(tenant.id), "name": tenant.name, "api_key": key, "key_id": str(key_id)}


async def set_policy(settings: Settings, tenant: str, policy_text: str) -> dict[str, Any]:
    from shared.db.catalog import load_catalog
    from shared.db.pool import connect_session
    from shared.db.tenants import set_spend_policy
    from shared.routing.policy import validate_policy
    from shared.storable import check_storable

    try:
        tid = UUID(tenant)
    except ValueError:
        raise SystemExit(f"error: --tenant must be a tenant id (UUID), got {tenant!r}") from None
    try:
        document = json.loads(policy_text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise SystemExit(f"error: --policy is not valid JSON: {e}") from None
    with _refusals_exit():
        check_storable(document, param="--policy")
    conn = await connect_session(settings)
    try:
        with _refusals_exit():
            policy = validate_policy(document, await load_catalog(conn))
        if not await set_spend_policy(conn, tid, policy):
            raise SystemExit(f"error: no tenant {tenant}")
    finally:
        await conn.close()
    return {"tenant_id": tenant, "spend_policy": policy}

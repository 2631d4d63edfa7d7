"""`ainfera-dispatch audit verify|verify-remote`: check a tenant's chain from the database, or as a
customer through the API (chain, signed checkpoint, receipt signatures). Exit 0 when all is
well, 1 at the first problem, with a JSON report on stdout."""

from __future__ import annotations

import json
from dataclasses import asdict
from uuid import UUID

from shared.audit.remote import verify_remote
from shared.audit.verify import verify_tenant_chain
from shared.db.pool import open_pool
from shared.settings import Settings


async def verify_local(settings: Settings, tenant: str) -> int:
    try:
        tenant_id = UUID(tenant)
    except ValueError:
        raise SystemExit(f"error: --tenant must be a tenant id (UUID), got {tenant!r}") from None
    pool = await open_pool(settings, min_size=1, max_size=2)
    try:
        report = await verify_tenant_chain(pool, tenant_id)
    finally:
        await pool.close()
    print(json.dumps({"tenant_id": tenant, **asdict(report)}, indent=2))
    return 0 if report.valid else 1


def verify_from_api(base_url: str, api_key: str, tenant: str | None) -> int:
    try:
        report = verify_remote(base_url, api_key, tenant)
    except (RuntimeError, OSError) as e:
        raise SystemExit(f"error: {e}") from None
    print(json.dumps(report.as_dict(), indent=2))
    return 0 if report.ok else 1

"""Reading a tenant's spend from its receipts (the `receipts_tenant_created_idx` range)."""

from __future__ import annotations

from uuid import UUID

from shared.db.queries import q
from shared.db.types import Connection
from shared.usage import GroupBy, UsageGroup, UsageQuery

_QUERIES = {GroupBy.DAY: "usage_by_day", GroupBy.MODEL: "usage_by_model", GroupBy.KEY: "usage_by_key"}


async def tenant_usage(conn: Connection, tenant_id: UUID, query: UsageQuery) -> list[UsageGroup]:
    rows = await conn.fetch(q("usage", _QUERIES[query.group_by]), tenant_id, query.start, query.end)
    return [UsageGroup(key=r["key"], requests=r["requests"], succeeded=r["succeeded"], failed=r["failed"],
                       cancelled=r["cancelled"], input_tokens=r["input_tokens"], output_tokens=r["output_tokens"],
                       cached_input_tokens=r["cached_input_tokens"], cost_usd=r["cost_usd"]) for r in rows]

"""`ainfera-dispatch spend report`: a tenant's spend from its receipts, as `GET /v1/usage`
computes it, printed as a table (read from the database, like the other operator commands)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from uuid import UUID

from shared.db.tenants import get_tenant
from shared.db.usage import tenant_usage
from shared.errors import InvalidRequest
from shared.receipts.types import money
from shared.settings import Settings
from shared.usage import GroupBy, UsageGroup, UsageQuery

_COUNTS = ("requests", "succeeded", "failed", "cancelled", "input_tokens", "output_tokens", "cached_input_tokens")


async def report(settings: Settings, tenant: str, group_by: str | None, start: str | None, end: str | None) -> int:
    from shared.db.pool import connect_session

    try:
        tenant_id = UUID(tenant)
    except ValueError:
        raise SystemExit(f"error: --tenant must be a tenant id (UUID), got {tenant!r}") from None
    try:
        query = UsageQuery.parse(group_by, start, end, now=datetime.now(UTC))
    except InvalidRequest as e:
        raise SystemExit(f"error: --{(e.param or 'group_by').replace('_', '-')}: {e.message}") from None
    conn = await connect_session(settings)
    try:
        if await get_tenant(conn, tenant_id) is None:
            raise SystemExit(f"error: no tenant {tenant}")
        groups = await tenant_usage(conn, tenant_id, query)
    finally:
        await conn.close()
    print(render(tenant, query, groups), end="")
    return 0


def render(tenant: str, query: UsageQuery, groups: list[UsageGroup]) -> str:
    from rich.console import Console
    from rich.table import Table

    label = "date" if query.group_by == GroupBy.DAY else query.group_by.value
    span = f"{query.start:%Y-%m-%d %H:%M:%S} to {query.end:%Y-%m-%d %H:%M:%S} UTC"
    table = Table(title=f"spend of tenant {tenant}, {span}")
    table.add_column(label)
    for col in (*_COUNTS, "cost_usd"):
        table.add_column(col, justify="right")
    for g in groups:
        row = g.public(query.group_by)
        table.add_row(row[label] or "(none served)", *(str(row[c]) for c in _COUNTS), row["cost_usd"])
    table.add_section()
    table.add_row("total", *(str(sum(getattr(g, c) for g in groups)) for c in _COUNTS),
                  money(sum((g.cost_usd for g in groups), Decimal(0))))
    out = StringIO()
    Console(file=out, width=160, force_terminal=False).print(table)
    return out.getvalue()

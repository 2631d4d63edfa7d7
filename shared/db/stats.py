"""Reading the receipts the learned routing statistics are rebuilt from."""

from __future__ import annotations

from collections.abc import Sequence

from shared.db.queries import q
from shared.db.types import Connection


async def recent_ratios(conn: Connection, slugs: Sequence[str], window: int,
                        tenant_share: int) -> dict[str, list[tuple[str, int, int]]]:
    """Per slug, newest first: (tenant, input tokens, output tokens) of the receipts its window keeps
    (the newest `window`, at most `tenant_share` of them from one tenant)."""
    out: dict[str, list[tuple[str, int, int]]] = {}
    for r in await conn.fetch(q("stats", "recent_ratios"), list(slugs), window, tenant_share):
        out.setdefault(r["slug"], []).append((str(r["tenant_id"]), r["input_tokens"], r["output_tokens"]))
    return out


async def recent_latencies(conn: Connection, slugs: Sequence[str], window: int,
                           tenant_share: int) -> dict[tuple[str, str | None], list[tuple[str, int]]]:
    """Per (slug, reasoning effort sent), newest first: (tenant, upstream latency) of the receipts its window keeps."""
    out: dict[tuple[str, str | None], list[tuple[str, int]]] = {}
    for r in await conn.fetch(q("stats", "recent_latencies"), list(slugs), window, tenant_share):
        out.setdefault((r["slug"], r["reasoning_effort"]), []).append((str(r["tenant_id"]), r["upstream_latency_ms"]))
    return out

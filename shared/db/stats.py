"""Reading the receipts the learned routing statistics are rebuilt from."""

from __future__ import annotations

from collections.abc import Sequence

from shared.db.queries import q
from shared.db.types import Connection


async def recent_ratios(conn: Connection, slugs: Sequence[str], window: int) -> dict[str, list[tuple[int, int]]]:
    """Per slug, newest first: (input tokens, output tokens) of its last `window` receipts."""
    out: dict[str, list[tuple[int, int]]] = {}
    for r in await conn.fetch(q("stats", "recent_ratios"), list(slugs), window):
        out.setdefault(r["slug"], []).append((r["input_tokens"], r["output_tokens"]))
    return out


async def recent_latencies(conn: Connection, slugs: Sequence[str],
                           window: int) -> dict[tuple[str, str | None], list[int]]:
    """Per (slug, reasoning effort sent), newest first: the upstream latencies of its last `window` receipts."""
    out: dict[tuple[str, str | None], list[int]] = {}
    for r in await conn.fetch(q("stats", "recent_latencies"), list(slugs), window):
        out.setdefault((r["slug"], r["reasoning_effort"]), []).append(r["upstream_latency_ms"])
    return out

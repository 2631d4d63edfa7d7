"""Reading the receipts the learned routing statistics are rebuilt from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.db.queries import q


async def recent_samples(conn: Any, slugs: Sequence[str], window: int) -> dict[str, list[tuple[int, int, int | None]]]:
    """Per slug, newest first: (input tokens, output tokens, upstream latency ms) of its last `window` receipts."""
    out: dict[str, list[tuple[int, int, int | None]]] = {}
    for r in await conn.fetch(q("stats", "recent_samples"), list(slugs), window):
        out.setdefault(r["slug"], []).append((r["input_tokens"], r["output_tokens"], r["upstream_latency_ms"]))
    return out

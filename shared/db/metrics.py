"""What a metrics scrape reads from Postgres (`sql/metrics.sql`)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.db.queries import q
from shared.db.types import Connection


@dataclass(frozen=True, slots=True)
class ScrapeState:
    batch_lines: dict[str, int]  # state -> lines, for the batches open or created in the last day
    fanout_last_run: dict[str, int] | None  # passed / failed / skipped of the last completed run


async def scrape_state(conn: Connection) -> ScrapeState:
    r = await conn.fetchrow(q("metrics", "scrape_state"))
    assert r is not None  # a SELECT without FROM always has its row
    lines = {state: int(r[f"lines_{state}"]) for state in ("pending", "running", "completed", "failed")}
    run = None
    if r["fanout_passed"] is not None:
        run = {outcome: int(r[f"fanout_{outcome}"]) for outcome in ("passed", "failed", "skipped")}
    return ScrapeState(lines, run)

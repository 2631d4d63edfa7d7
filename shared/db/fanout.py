"""Fanout runs and probe results."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from shared.db.queries import q
from shared.db.types import Connection


async def create_run(conn: Connection, *, run_id: str, trigger: str, provider_filter: str | None) -> bool:
    """Record a run to be planned. False when a run with this id exists already (a schedule slot
    taken by another worker)."""
    return await conn.fetchval(q("fanout", "create_run"), run_id, trigger, provider_filter) is not None


async def store_run_plan(conn: Connection, run_id: str, *, plan: Sequence[str], not_probed: list[str],
                   estimated_cost_usd: Decimal) -> bool:
    """Store a run's plan; False when it was planned already (a planning job that ran twice)."""
    return await conn.fetchval(q("fanout", "store_run_plan"), run_id, list(plan), not_probed,
                               estimated_cost_usd) is not None


async def get_run(conn: Connection, run_id: str) -> dict[str, Any] | None:
    r = await conn.fetchrow(q("fanout", "get_run"), run_id)
    return dict(r) if r else None


async def latest_runs(conn: Connection, limit: int) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(q("fanout", "latest_runs"), limit)]


async def record_probe(conn: Connection, probe: dict[str, Any]) -> bool:
    """Store a probe result once; True when it was the run's last outstanding probe."""
    return bool(await conn.fetchval(q("fanout", "record_probe"), probe))


async def claim_decision(conn: Connection, run_id: str) -> dict[str, Any] | None:
    r = await conn.fetchrow(q("fanout", "claim_decision"), run_id)
    return dict(r) if r else None


async def store_decisions(conn: Connection, run_id: str, guard: dict[str, Any] | None, decisions: list[Any]) -> None:
    await conn.execute(q("fanout", "store_decisions"), run_id, guard, decisions)


async def run_probes(conn: Connection, run_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(q("fanout", "run_probes"), run_id)]


async def recent_outcomes(conn: Connection, slugs: Sequence[str], limit: int,
                          run_id: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in await conn.fetch(q("fanout", "recent_outcomes"), list(slugs), limit, run_id):
        row = dict(r)
        out.setdefault(row.pop("slug"), []).append(row)
    return out


async def stalled_runs(conn: Connection, older_than_s: float) -> list[tuple[str, str]]:
    """(run id, status) of runs still planning or running after `older_than_s`."""
    rows = await conn.fetch(q("fanout", "stalled_runs"), timedelta(seconds=older_than_s))
    return [(r["id"], r["status"]) for r in rows]


async def unrecorded_probes(conn: Connection, run_id: str) -> list[str]:
    return [r["slug"] for r in await conn.fetch(q("fanout", "unrecorded_probes"), run_id)]

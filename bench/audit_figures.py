"""Audit chain figures: appends per second for one tenant from 4 concurrent worker processes
(every event committed), and the time to verify a 100,000-event chain.

Each process appends through the same database function the dispatch path uses
(`audit_append`, one statement and one commit per event). Uses a fresh database.

    .venv/bin/python bench/audit_figures.py [--processes 4] [--seconds 10] [--verify-events 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stack import create_database, drop_database
from shared.audit.verify import verify_tenant_chain
from shared.audit.writer import append_event
from shared.db.pool import create_pool
from shared.db.tenants import create_tenant


def _worker(dsn: str, tenant: str, seconds: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def run() -> int:
        pool = await create_pool(dsn, min_size=8, max_size=8)
        n = 0
        stop = time.perf_counter() + seconds

        async def one_lane() -> None:
            nonlocal n
            while time.perf_counter() < stop:
                async with pool.acquire() as conn:
                    await append_event(conn, tenant_id=uuid.UUID(tenant), event_type="inference.routed",
                                       fields={"receipt_id": f"rcpt_{n}", "model": "bench@sim", "cost_usd": "0.0001"},
                                       now=datetime.now(UTC), job_id=None)
                n += 1

        await asyncio.gather(*(one_lane() for _ in range(8)))
        await pool.close()
        return n

    out.put(asyncio.run(run()))


async def _setup() -> tuple[str, str, str]:
    name = f"ainfera_bench_{uuid.uuid4().hex[:8]}"
    dsn = await create_database(name)
    pool = await create_pool(dsn, min_size=1, max_size=2)
    async with pool.acquire() as conn:
        tenant = await create_tenant(conn, "bench")
    await pool.close()
    return name, dsn, str(tenant.id)


async def _top_up(dsn: str, tenant: str, target: int) -> None:
    pool = await create_pool(dsn, min_size=4, max_size=4)
    async with pool.acquire() as conn:
        have = await conn.fetchval("SELECT count(*) FROM audit_events WHERE tenant_id = $1", uuid.UUID(tenant))
    async with pool.acquire() as conn:
        for i in range(max(0, target - have)):
            await append_event(conn, tenant_id=uuid.UUID(tenant), event_type="inference.routed",
                               fields={"receipt_id": f"top_{i}"}, now=datetime.now(UTC))
    await pool.close()


async def _verify(dsn: str, tenant: str) -> tuple[float, int, bool]:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    t0 = time.perf_counter()
    report = await verify_tenant_chain(pool, uuid.UUID(tenant))
    elapsed = time.perf_counter() - t0
    await pool.close()
    return elapsed, report.event_count, report.valid


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--verify-events", type=int, default=100_000)
    args = ap.parse_args()
    name, dsn, tenant = asyncio.run(_setup())
    try:
        out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        procs = [multiprocessing.Process(target=_worker, args=(dsn, tenant, args.seconds, out))
                 for _ in range(args.processes)]
        for p in procs:
            p.start()
        counts = [out.get() for _ in procs]
        for p in procs:
            p.join()
        total = sum(counts)
        print(f"appends, one tenant, {args.processes} processes x 8 connections, {args.seconds:g} s: "
              f"{total / args.seconds:,.0f} events/s committed ({total} events)", flush=True)
        asyncio.run(_top_up(dsn, tenant, args.verify_events))
        elapsed, count, valid = asyncio.run(_verify(dsn, tenant))
        print(f"verify from the database: {count:,} events in {elapsed:.2f} s "
              f"({count / elapsed:,.0f} events/s), valid={valid}", flush=True)
    finally:
        asyncio.run(drop_database(name))


if __name__ == "__main__":
    main()

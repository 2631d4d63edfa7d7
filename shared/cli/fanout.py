"""`ainfera-dispatch fanout run|report`: ask for a probe run and read what it found.

Runs against the database and Redis directly (like `tenant create`) and needs nothing else:
no provider keys, no simulator setting, no signing key. The workers serving the probe
queue plan the run (they know which providers they can call) and make the probes, so a
worker must be running for a run to finish.
"""

from __future__ import annotations

import asyncio
import sys
import time

from redis.asyncio import Redis

from shared.db.fanout import get_run, latest_runs, run_probes
from shared.db.pool import open_pool
from shared.db.types import Pool
from shared.errors import AinferaError
from shared.fanout.report import render_text, summarise
from shared.fanout.runs import start_run
from shared.queue.pool import open_redis
from shared.settings import Settings

TERMINAL = "completed"


async def run_fanout(settings: Settings, provider: str | None, wait: bool, timeout_s: float = 1800) -> int:
    db = await open_pool(settings, min_size=1, max_size=2)
    redis = open_redis(settings.redis_url, cluster=settings.redis_cluster)
    try:
        return await _run_and_follow(db, redis, provider, wait, timeout_s)
    finally:
        await redis.aclose()
        await db.close()


async def _run_and_follow(db: Pool, redis: Redis, provider: str | None, wait: bool, timeout_s: float) -> int:
    try:
        run_id = await start_run(db, redis, trigger="manual", provider=provider)
    except AinferaError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    assert run_id is not None
    print(run_id, flush=True)
    if not wait:
        return 0
    deadline = time.monotonic() + timeout_s
    while True:
        async with db.acquire() as conn:
            run = await get_run(conn, run_id)
        assert run is not None
        if run["status"] == TERMINAL and run["decided_at"] is not None:
            break
        if time.monotonic() > deadline:
            print(f"run {run_id} did not finish within {timeout_s:g} s (is a worker serving the probe queue?)",
                  file=sys.stderr)
            return 1
        progress = ("waiting for a probe worker to plan it" if run["status"] == "planning"
                    else f"probes recorded {run['recorded']}/{run['planned']}")
        print(f"\r{progress}", end="", file=sys.stderr, flush=True)
        await asyncio.sleep(0.5)
    print(file=sys.stderr)
    async with db.acquire() as conn:
        probes = await run_probes(conn, run_id)
    print(render_text(summarise(run, probes)))
    return 0


async def report(settings: Settings, run_id: str | None) -> int:
    from shared.db.pool import connect_session

    conn = await connect_session(settings)
    try:
        if run_id is None:
            latest = await latest_runs(conn, 1)
            if not latest:
                print("no fanout runs yet", file=sys.stderr)
                return 1
            run_id = str(latest[0]["id"])
        run = await get_run(conn, run_id)
        if run is None:
            print(f"no fanout run {run_id}", file=sys.stderr)
            return 1
        probes = await run_probes(conn, run_id)
    finally:
        await conn.close()
    print(render_text(summarise(run, probes)))
    return 0

"""Batch throughput with 1 and 2 bulk worker processes, in one run, with the lost/duplicate check.

For each worker count: a fresh stack (simulated provider at 50 ms, gateway, an interactive
worker, N bulk workers), a batch of --lines lines timed from creation to `completed`, then
a check that every line has exactly one job and one receipt and every receipt is distinct,
and the bulk workers' CPU time per job (from /proc).

    .venv/bin/python bench/batch_scaling.py [--lines 20000] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.batch_figures import run_batch, upload, write_file
from bench.proc_cpu import total_cpu_s
from bench.stack import running_stack


async def check(dsn: str, batch_id: str, lines: int) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        jobs = await conn.fetchval("SELECT count(*) FROM jobs WHERE batch_id = $1", batch_id)
        receipts = await conn.fetchval(
            "SELECT count(*) FROM receipts r JOIN jobs j ON j.id = r.job_id WHERE j.batch_id = $1", batch_id)
        distinct = await conn.fetchval(
            "SELECT count(DISTINCT r.job_id) FROM receipts r JOIN jobs j ON j.id = r.job_id WHERE j.batch_id = $1",
            batch_id)
    finally:
        await conn.close()
    verdict = "no loss, no duplicate" if jobs == receipts == distinct == lines else "MISMATCH"
    return f"{jobs} jobs, {receipts} receipts ({distinct} distinct jobs): {verdict}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    path = Path(tempfile.mkdtemp(prefix="ainfera-bench-")) / "batch.jsonl"
    write_file(path, args.lines)
    results = {}
    for n in args.workers:
        queues = [["interactive"]] + [["batch"] if i else ["batch", "probe"] for i in range(n)]
        with running_stack(sim_latency_ms=50, worker_queues=queues) as stack, httpx.Client(timeout=600) as client:
            file_id, _ = upload(client, stack, path)
            bulk = stack.worker_pids[1:]  # the first worker serves the interactive queue
            before = total_cpu_s(bulk)
            batch, elapsed = run_batch(client, stack, file_id)
            cpu_ms = (total_cpu_s(bulk) - before) / args.lines * 1000
            rate = batch["request_counts"]["completed"] / elapsed
            results[n] = rate
            verdict = asyncio.run(check(stack.env["AINFERA_DATABASE_URL"], batch["id"], args.lines))
            print(f"{n} bulk worker process(es): {args.lines} lines in {elapsed:.1f} s = {rate:,.0f} jobs/s, "
                  f"bulk worker CPU {cpu_ms:.2f} ms/job; {verdict}", flush=True)
    if 1 in results and 2 in results:
        print(f"scaling, 2 vs 1 worker processes: {results[2] / results[1]:.2f}x", flush=True)
    path.unlink()


if __name__ == "__main__":
    main()

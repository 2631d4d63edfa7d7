"""Batch figures: ingest rate, end-to-end batch throughput, memory during a 1M-line ingest, and
synchronous latency with and without a batch running.

Starts the simulated provider (50 ms), a gateway, and two worker processes (one for the
interactive queue, one for the bulk queue) against a fresh database and Redis db 14.

    .venv/bin/python bench/batch_figures.py [--ingest-lines 100000] [--batch-lines 20000]
                                             [--million] [--rounds 3]

--million adds the 1,000,000-line ingest and reports peak RSS (VmHWM) of the gateway and
the workers; it needs about 300 MB of disk in /tmp and a few minutes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import wrk
from bench.stack import Stack, running_stack


def write_file(path: Path, lines: int, text: str = "Write one sentence about queues.") -> int:
    with path.open("wb") as f:
        for i in range(lines):
            f.write(orjson.dumps({"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions",
                                  "body": {"model": "llama-3.3-70b@groq", "max_tokens": 32,
                                           "messages": [{"role": "user", "content": text}]}}) + b"\n")
    return path.stat().st_size


def rss_peak_mb(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    return float("nan")


def upload(client: httpx.Client, stack: Stack, path: Path) -> tuple[str, float]:
    t0 = time.perf_counter()
    with path.open("rb") as f:
        r = client.post(f"{stack.gateway_url}/v1/files", headers={"Authorization": f"Bearer {stack.api_key}"},
                        data={"purpose": "batch"}, files={"file": (path.name, f, "application/jsonl")})
    elapsed = time.perf_counter() - t0
    r.raise_for_status()
    return r.json()["id"], elapsed


def run_batch(client: httpx.Client, stack: Stack, file_id: str) -> tuple[dict, float]:
    auth = {"Authorization": f"Bearer {stack.api_key}"}
    t0 = time.perf_counter()
    b = client.post(f"{stack.gateway_url}/v1/batches", headers=auth, json={
        "input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}).json()
    while b["status"] not in ("completed", "failed", "expired", "cancelled"):
        time.sleep(0.2)
        b = client.get(f"{stack.gateway_url}/v1/batches/{b['id']}", headers=auth).json()
    return b, time.perf_counter() - t0


def sync_latency(stack: Stack, seconds: float) -> wrk.WrkResult:
    return wrk.run(f"{stack.gateway_url}/v1/chat/completions",
                   {"model": "llama-3.3-70b@groq", "max_tokens": 32,
                    "messages": [{"role": "user", "content": "One sentence about queues."}]},
                   {"Authorization": f"Bearer {stack.api_key}"}, connections=16, seconds=seconds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingest-lines", type=int, default=100_000)
    ap.add_argument("--batch-lines", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--million", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ainfera-bench-"))
    ingest_file, batch_file = tmp / "ingest.jsonl", tmp / "batch.jsonl"
    size = write_file(ingest_file, args.ingest_lines)
    write_file(batch_file, args.batch_lines)
    with running_stack(sim_latency_ms=50, worker_queues=[["interactive"], ["batch"]]) as stack, \
            httpx.Client(timeout=600) as client:
        rates = []
        for _ in range(args.rounds):
            _, elapsed = upload(client, stack, ingest_file)
            rates.append(args.ingest_lines / elapsed)
        print(f"ingest: {args.ingest_lines} lines ({size / 1e6:.0f} MB), median of {args.rounds}: "
              f"{statistics.median(rates):,.0f} lines/s (runs: {', '.join(f'{r:,.0f}' for r in rates)})", flush=True)

        file_id, _ = upload(client, stack, batch_file)
        batch, elapsed = run_batch(client, stack, file_id)
        counts = batch["request_counts"]
        print(f"batch: {counts['total']} lines, {batch['status']} in {elapsed:.1f} s: "
              f"{counts['completed'] / elapsed:,.0f} jobs/s end to end (simulated provider at 50 ms)", flush=True)

        if wrk.available():
            quiet = sync_latency(stack, 8)
            busy_file, _ = upload(client, stack, batch_file)
            auth = {"Authorization": f"Bearer {stack.api_key}"}
            busy = client.post(f"{stack.gateway_url}/v1/batches", headers=auth, json={
                "input_file_id": busy_file, "endpoint": "/v1/chat/completions", "completion_window": "24h"}).json()
            time.sleep(1)
            during = sync_latency(stack, 8)
            state = client.get(f"{stack.gateway_url}/v1/batches/{busy['id']}", headers=auth).json()
            print(f"sync c16 without a batch: p50 {quiet.p50_ms:.1f} ms, p99 {quiet.p99_ms:.1f} ms, "
                  f"{quiet.rps:.0f} req/s", flush=True)
            print(f"sync c16 during a batch:  p50 {during.p50_ms:.1f} ms, p99 {during.p99_ms:.1f} ms, "
                  f"{during.rps:.0f} req/s (batch {state['status']}, "
                  f"{state['request_counts']['completed']} lines done meanwhile)", flush=True)
            client.post(f"{stack.gateway_url}/v1/batches/{busy['id']}/cancel", headers=auth)

        if args.million:
            big = tmp / "million.jsonl"
            big_size = write_file(big, 1_000_000)
            before = {pid: rss_mb(pid) for pid in [stack.gateway_pid, *stack.worker_pids]}
            _, elapsed = upload(client, stack, big)
            print(f"1,000,000-line ingest ({big_size / 1e6:.0f} MB): {elapsed:.1f} s, "
                  f"{1_000_000 / elapsed:,.0f} lines/s", flush=True)
            print(f"peak RSS (VmHWM): gateway {rss_peak_mb(stack.gateway_pid):.0f} MB "
                  f"(before: {before[stack.gateway_pid]:.0f} MB); workers "
                  + ", ".join(f"{rss_peak_mb(p):.0f} MB" for p in stack.worker_pids), flush=True)
            big.unlink()
    for f in (ingest_file, batch_file):
        f.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()

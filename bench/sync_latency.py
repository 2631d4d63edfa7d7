"""Synchronous path: latency and throughput through the gateway vs the simulated provider directly.

Both paths are measured in the same run, alternating, at each concurrency; the figure
that matters is the added latency (gateway minus direct) at p50 and p99. The simulated
provider answers in 50 ms. Load comes from wrk when it is installed (it barely loads the
machine; `apt-get install wrk`), else from an httpx client in this process. Medians over
rounds. For the gateway path it also prints the CPU time the worker and the gateway processes
spent per request (from /proc; clock-tick resolution, so rough at concurrency 1).

    .venv/bin/python bench/sync_latency.py [--rounds 3] [--seconds 5] [--concurrency 1 16 64]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import wrk
from bench.proc_cpu import cpu_s
from bench.stack import running_stack

PROMPT = [{"role": "user", "content": "Write one sentence about queues."}]
Figures = tuple[float, float, float]  # p50 ms, p99 ms, requests/s


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))]


async def python_load(url: str, body: dict, headers: dict, seconds: float, conc: int) -> Figures:
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one() -> None:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                r = await client.post(url, json=body, headers=headers)
                latencies.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(conc)))
        elapsed = time.perf_counter() - t0
    return pct(latencies, 50), pct(latencies, 99), len(latencies) / elapsed


def measure(url: str, body: dict, headers: dict, seconds: float, conc: int, use_wrk: bool) -> Figures:
    if use_wrk:
        r = wrk.run(url, body, headers, connections=conc, seconds=seconds)
        if r.errors:
            raise RuntimeError(f"{url}: {r.errors} non-2xx answers")
        return r.p50_ms, r.p99_ms, r.rps
    return asyncio.run(python_load(url, body, headers, seconds, conc))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--sim-latency-ms", type=float, default=50)
    ap.add_argument("--python-client", action="store_true", help="use the httpx client even if wrk exists")
    args = ap.parse_args()
    use_wrk = wrk.available() and not args.python_client
    with running_stack(sim_latency_ms=args.sim_latency_ms) as stack:
        paths = {
            "direct": (f"{stack.sim_url}/api.groq.com/openai/v1/chat/completions",
                       {"model": "llama-3.3-70b-versatile", "messages": PROMPT, "max_tokens": 32},
                       {"Authorization": "Bearer sim"}),
            "gateway": (f"{stack.gateway_url}/v1/chat/completions",
                        {"model": "llama-3.3-70b@groq", "messages": PROMPT, "max_tokens": 32},
                        {"Authorization": f"Bearer {stack.api_key}"}),
        }
        for url, body, headers in paths.values():  # warm-up: connections, caches
            measure(url, body, headers, 1, 4, use_wrk)
        print(f"load: {'wrk' if use_wrk else 'httpx'}; simulated provider latency {args.sim_latency_ms:g} ms; "
              f"medians of {args.rounds} rounds of {args.seconds:g} s")
        print(f"{'conc':>4} {'path':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'worker CPU ms/req':>18} "
              f"{'gateway CPU ms/req':>19}")
        processes = {"worker": stack.worker_pids, "gateway": [stack.gateway_pid]}
        for conc in args.concurrency:
            runs: dict[str, list[Figures]] = {name: [] for name in paths}
            cpu: dict[str, list[float]] = {name: [] for name in processes}
            for _ in range(args.rounds):
                for name, (url, body, headers) in paths.items():
                    before = {k: sum(cpu_s(pid) for pid in pids) for k, pids in processes.items()}
                    runs[name].append(measure(url, body, headers, args.seconds, conc, use_wrk))
                    if name == "gateway":
                        requests = runs[name][-1][2] * args.seconds
                        for k, pids in processes.items():
                            cpu[k].append((sum(cpu_s(pid) for pid in pids) - before[k]) / requests * 1000)
            med = {name: tuple(statistics.median(r[i] for r in rs) for i in range(3)) for name, rs in runs.items()}
            for name in paths:
                p50, p99, rps = med[name]
                per_req = (f" {statistics.median(cpu['worker']):>18.2f} {statistics.median(cpu['gateway']):>19.2f}"
                           if name == "gateway" else "")
                print(f"{conc:>4} {name:>8} {p50:>8.1f} {p99:>8.1f} {rps:>8.0f}{per_req}")
            print(f"{conc:>4} {'added':>8} {med['gateway'][0] - med['direct'][0]:>8.1f} "
                  f"{med['gateway'][1] - med['direct'][1]:>8.1f}", flush=True)


if __name__ == "__main__":
    main()

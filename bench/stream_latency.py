"""Streaming through the queue against the simulated provider called directly, in one run.

The simulator answers a stream after --ttft-ms to its first event, then one event every
--chunk-ms. For each round, --concurrency clients on each path (direct, gateway) open one stream
after another for --seconds: time to the first content chunk, and the gaps between chunks;
"added" is gateway minus direct.
Then --open streams held open at once through the gateway (the simulator pacing them slowly),
counting errors, and the gateway's RSS growth per open stream.

    .venv/bin/python bench/stream_latency.py [--rounds 3] [--concurrency 16] [--open 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx
from httpx_sse import aconnect_sse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.proc_cpu import total_cpu_s
from bench.stack import running_stack

PROMPT = [{"role": "user", "content": "Tell me a story about the sea, in a few sentences please."}]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def one_stream(client: httpx.AsyncClient, url: str, body: dict, headers: dict) -> tuple[float, list[float]]:
    """(ms to the first content chunk, ms gaps between later chunks)."""
    started = time.perf_counter()
    first: float | None = None
    gaps: list[float] = []
    last = started
    async with aconnect_sse(client, "POST", url, json=body, headers=headers) as source:
        source.response.raise_for_status()
        async for event in source.aiter_sse():
            now = time.perf_counter()
            if event.data == "[DONE]":
                break
            if '"content"' not in event.data:
                continue
            if first is None:
                first = (now - started) * 1000
            else:
                gaps.append((now - last) * 1000)
            last = now
    assert first is not None, "no content chunk"
    return first, gaps


async def round_of(url: str, body: dict, headers: dict, conc: int, seconds: float) -> tuple[list[float], list[float]]:
    """`conc` clients, each opening one stream after another for `seconds` (steady load, as wrk
    does for the synchronous bench; each client's first stream is left out: they all start at once)."""
    firsts: list[float] = []
    gaps: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client_loop(client: httpx.AsyncClient) -> None:
        first_one = True
        while time.perf_counter() < deadline:
            ttft, chunk_gaps = await one_stream(client, url, body, headers)
            if not first_one:
                firsts.append(ttft)
                gaps.extend(chunk_gaps)
            first_one = False

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=conc + 4)) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(conc)))
    return firsts, gaps


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def many_open(url: str, body: dict, headers: dict, n: int, gateway_pid: int) -> tuple[int, int, float]:
    """(streams that ended with [DONE], errors, gateway RSS growth in KB per open stream)."""
    base = rss_kb(gateway_pid)
    opened = asyncio.Event()
    started = 0
    peak = base
    done = errors = 0

    async def hold(client: httpx.AsyncClient) -> None:
        nonlocal started, done, errors, peak
        try:
            async with aconnect_sse(client, "POST", url, json=body, headers=headers) as source:
                source.response.raise_for_status()
                counted = False
                async for event in source.aiter_sse():
                    if not counted:
                        counted, started = True, started + 1
                        if started == n:
                            peak = rss_kb(gateway_pid)
                            opened.set()
                    if event.data == "[DONE]":
                        done += 1
        except (httpx.HTTPError, AssertionError):
            errors += 1

    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=n + 8)) as client:
        await asyncio.gather(*(hold(client) for _ in range(n)))
    return done, errors, (peak - base) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--ttft-ms", type=float, default=50)
    ap.add_argument("--chunk-ms", type=float, default=10)
    ap.add_argument("--open", type=int, default=1000)
    args = ap.parse_args()
    # Every open stream is a running job: the interactive worker must take them all at once.
    env = {"AINFERA_SIM_STREAM_INTERVAL_MS": str(args.chunk_ms),
           "AINFERA_WORKER_MAX_JOBS": str(max(256, args.open + 64))}
    with running_stack(sim_latency_ms=args.ttft_ms, extra_env=env) as stack:
        paths = {
            "direct": (f"{stack.sim_url}/api.groq.com/openai/v1/chat/completions",
                       {"model": "llama-3.3-70b-versatile", "messages": PROMPT, "stream": True},
                       {"Authorization": "Bearer sim"}),
            "gateway": (f"{stack.gateway_url}/v1/chat/completions",
                        {"model": "llama-3.3-70b@groq", "messages": PROMPT, "stream": True},
                        {"Authorization": f"Bearer {stack.api_key}"}),
        }
        for url, body, headers in paths.values():
            asyncio.run(round_of(url, body, headers, 4, 1))  # warm-up
        ttft: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
        gap: dict[str, list[float]] = {name: [] for name in paths}
        cpu: dict[str, list[float]] = {"worker": [], "gateway": []}
        pids = {"worker": stack.worker_pids, "gateway": [stack.gateway_pid]}
        for _ in range(args.rounds):
            for name, (url, body, headers) in paths.items():
                before = {k: total_cpu_s(v) for k, v in pids.items()}
                firsts, gaps = asyncio.run(round_of(url, body, headers, args.concurrency, args.seconds))
                ttft[name].append((pct(firsts, 50), pct(firsts, 99)))
                gap[name].append(pct(gaps, 50))
                if name == "gateway":
                    chunks = len(gaps) + len(firsts)
                    for k, v in pids.items():
                        cpu[k].append((total_cpu_s(v) - before[k]) / chunks * 1000)
        med = {name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
               for name, rs in ttft.items()}
        print(f"simulator: {args.ttft_ms:g} ms to the first event, then one every {args.chunk_ms:g} ms; "
              f"{args.concurrency} clients streaming one after another; medians of {args.rounds} rounds of "
              f"{args.seconds:g} s")
        print(f"{'path':>8} {'TTFT p50':>9} {'TTFT p99':>9} {'chunk gap p50':>14}")
        for name in paths:
            print(f"{name:>8} {med[name][0]:>9.1f} {med[name][1]:>9.1f} {statistics.median(gap[name]):>14.2f}")
        print(f"{'added':>8} {med['gateway'][0] - med['direct'][0]:>9.1f} {med['gateway'][1] - med['direct'][1]:>9.1f}"
              f" {statistics.median(gap['gateway']) - statistics.median(gap['direct']):>14.2f}")
        print(f"CPU per relayed chunk (all work of the run divided by chunks): worker "
              f"{statistics.median(cpu['worker']):.3f} ms, gateway {statistics.median(cpu['gateway']):.3f} ms")
        if args.open:
            url, body, headers = paths["gateway"]
            slow = {**body, "messages": [{"role": "user", "content": PROMPT[0]["content"] + " [sim:chunk-ms=400]"}]}
            done, errors, per_stream = asyncio.run(many_open(url, slow, headers, args.open, stack.gateway_pid))
            print(f"{args.open} streams open at once through the gateway: {done} ended with [DONE], {errors} errors; "
                  f"gateway RSS +{per_stream:.1f} KB per open stream")


if __name__ == "__main__":
    main()

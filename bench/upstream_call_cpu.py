"""CPU time per upstream call for each HTTP transport, through `shared.providers.transport.send`.

Starts the simulated provider as a process (answering at once), then for each transport,
in turn within every round: `--calls` sequential calls, and `--calls` calls at
`--concurrency`. It reports this process's CPU time (`time.process_time`, all threads) per
call, medians over rounds, and each transport's figure relative to the first one. The loop
is uvloop's, as in the worker. Transports:

- `lean`: what `create_http_client` builds by default (`shared/providers/fastpath.py`)
- `httpx`: httpx's own transport (httpcore and h11), `AINFERA_UPSTREAM_TRANSPORT=httpx`
- `httpx-aiohttp`: aiohttp under httpx, from the httpx-aiohttp package when it is installed
  (not a dependency: `.venv/bin/pip install httpx-aiohttp==0.2.0 aiohttp==3.14.5`)
- `baseline`: the LeanTransport of another copy of fastpath.py, to compare two versions of it:
  `git show 7bd9e10:shared/providers/fastpath.py > /tmp/fastpath.py`, then `--baseline /tmp/fastpath.py`

    .venv/bin/python bench/upstream_call_cpu.py [--rounds 5] [--calls 2000] [--concurrency 16]
        [--transports lean httpx httpx-aiohttp] [--baseline /tmp/fastpath.py]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stack import _wait, free_port
from shared.catalog.urls import route_via
from shared.providers.openai_chat import OpenAIChatAdapter
from shared.providers.transport import RetryPolicy, create_http_client, send
from shared.providers.types import UpstreamRequest
from shared.settings import Settings

ADAPTER = OpenAIChatAdapter()
BODY = {"model": "slug", "messages": [{"role": "user", "content": "Write one sentence about queues."}],
        "max_tokens": 32}


def client_factories(settings: Settings, baseline: Path | None) -> dict[str, Callable[[], httpx.AsyncClient]]:
    limits = httpx.Limits(max_connections=settings.upstream_max_connections,
                          max_keepalive_connections=settings.upstream_max_connections,
                          keepalive_expiry=settings.upstream_keepalive_expiry_s)

    def with_transport(make: Callable[[], httpx.AsyncBaseTransport] | None) -> Callable[[], httpx.AsyncClient]:
        return lambda: httpx.AsyncClient(transport=make() if make else None, limits=limits, trust_env=False,
                                         timeout=RetryPolicy.from_settings(settings).attempt_timeout)

    factories = {"lean": lambda: create_http_client(settings), "httpx": with_transport(None)}

    def httpx_aiohttp() -> httpx.AsyncBaseTransport:
        from httpx_aiohttp import AiohttpTransport  # type: ignore[import-not-found]

        transport: httpx.AsyncBaseTransport = AiohttpTransport(trust_env=False, limits=limits)
        return transport

    factories["httpx-aiohttp"] = with_transport(httpx_aiohttp)
    if baseline:
        spec = importlib.util.spec_from_file_location("baseline_fastpath", baseline)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        factories["baseline"] = with_transport(lambda: module.LeanTransport(
            max_connections_per_host=settings.upstream_max_connections,
            keepalive_expiry_s=settings.upstream_keepalive_expiry_s))
    return factories


async def batch(http: httpx.AsyncClient, request: UpstreamRequest, policy: RetryPolicy, calls: int,
                conc: int) -> tuple[float, float]:
    """CPU microseconds per call and calls per second, for `calls` calls `conc` at a time."""

    async def lane(n: int) -> None:
        for _ in range(n):
            await send(http, ADAPTER, request, policy=policy)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(lane(calls // conc) for _ in range(conc)))
    done = calls // conc * conc
    return (time.process_time() - cpu) / done * 1e6, done / (time.perf_counter() - wall)


async def measure(sim_url: str, args: argparse.Namespace) -> None:
    settings = Settings(upstream_override=sim_url, upstream_transport="lean")
    policy = RetryPolicy.from_settings(settings)
    url = route_via("https://api.groq.com/openai/v1/chat/completions", sim_url)
    request = ADAPTER.build(url=url, api_key="sim", upstream_model="llama-3.3-70b-versatile", body=BODY)
    factories = client_factories(settings, args.baseline)
    names = args.transports + (["baseline"] if args.baseline else [])
    clients = {name: factories[name]() for name in names}
    figures: dict[str, dict[str, list[float]]] = {n: {"seq": [], "conc": [], "seq_rps": [], "conc_rps": []}
                                                  for n in names}
    try:
        for http in clients.values():  # warm-up: connections, imports, caches
            await batch(http, request, policy, 200, args.concurrency)
        for r in range(args.rounds):
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                cpu, rps = await batch(clients[name], request, policy, args.calls, 1)
                figures[name]["seq"].append(cpu)
                figures[name]["seq_rps"].append(rps)
                cpu, rps = await batch(clients[name], request, policy, args.calls, args.concurrency)
                figures[name]["conc"].append(cpu)
                figures[name]["conc_rps"].append(rps)
    finally:
        for http in clients.values():
            await http.aclose()
    med = {n: {k: statistics.median(v) for k, v in f.items()} for n, f in figures.items()}
    first = names[0]
    print(f"CPU per call through send(), this process; medians of {args.rounds} rounds of {args.calls} calls")
    print(f"{'transport':>14} {'seq us/call':>12} {'vs ' + first:>11} {'c' + str(args.concurrency) + ' us/call':>12} "
          f"{'vs ' + first:>11} {'seq calls/s':>12} {'c' + str(args.concurrency) + ' calls/s':>12}")
    for n in names:
        m = med[n]
        print(f"{n:>14} {m['seq']:>12.0f} {m['seq'] / med[first]['seq']:>10.2f}x {m['conc']:>12.0f} "
              f"{m['conc'] / med[first]['conc']:>10.2f}x {m['seq_rps']:>12.0f} {m['conc_rps']:>12.0f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--transports", nargs="+", default=["lean", "httpx"], choices=["lean", "httpx", "httpx-aiohttp"])
    ap.add_argument("--baseline", type=Path, help="another copy of shared/providers/fastpath.py")
    args = ap.parse_args()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AINFERA_")}
    env.update({"AINFERA_SIM_PORT": str(port), "AINFERA_SIM_LATENCY_MS": "0", "AINFERA_LOG_LEVEL": "WARNING"})
    sim = subprocess.Popen([sys.executable, "-m", "shared.cli.main", "sim-provider"], env=env)
    try:
        _wait(f"http://127.0.0.1:{port}/healthz")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(measure(f"http://127.0.0.1:{port}", args))
    finally:
        sim.terminate()
        sim.wait(timeout=30)


if __name__ == "__main__":
    main()

"""Many processes: 2 gateways behind HAProxy plus 4 workers, against 1 gateway and 1 worker, in one run.

Both topologies run at once, each on its own database and Redis db, the simulated provider
answering in 50 ms; the larger one's six processes reach Postgres through PgBouncer in
transaction mode (their pools together would pass Postgres's 100 connections). Load (wrk, one
connection per concurrent caller) alternates between them round by round, so a noisy machine
weighs on both alike. The load balancer is the distribution's
HAProxy (`apt-get install haproxy`), round-robin over the two gateways, HTTP keep-alive.

Per topology and concurrency it prints the medians over `--rounds` of throughput, p50 and p99,
the added p50 over calling the simulator directly (measured in the same round), and two counts
over every round: answers whose job has no receipt (lost) and jobs answered twice or with more
than one receipt (duplicate). Both must be 0.

    .venv/bin/python bench/scaling.py [--rounds 3] [--seconds 5] [--concurrency 16 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import wrk
from bench.proc_cpu import cpu_s
from bench.stack import PG_ADMIN, Stack, _wait, free_port, running_stack
from shared.db.pool import connect
from tests.pgbouncer import running_pgbouncer

PROMPT = [{"role": "user", "content": "Name three rivers."}]
BODY = {"model": "llama-3.3-70b@groq", "messages": PROMPT, "max_tokens": 32}
DIRECT = {"model": "llama-3.3-70b-versatile", "messages": PROMPT, "max_tokens": 32}

_HAPROXY = """\
global
    maxconn 8000
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend gateways
    bind 127.0.0.1:{port}
    default_backend gateways
backend gateways
    balance roundrobin
{servers}
"""


@dataclass
class Topology:
    name: str
    url: str  # where callers send requests: the gateway, or the load balancer
    stack: Stack
    figures: dict[int, list[tuple[float, float, float]]] = field(default_factory=dict)
    lost: int = 0
    duplicate: int = 0
    answered: int = 0
    gateways: list[int] = field(default_factory=list)  # pids
    cpu: dict[str, list[float]] = field(default_factory=dict)  # component -> CPU ms per answered call, per round


def _pids(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


def components(top: Topology) -> dict[str, list[int]]:
    """The processes whose CPU a call costs, by component (Postgres and Redis: all of theirs)."""
    return {"gateway": top.gateways, "worker": top.stack.worker_pids, "postgres": _pids("^postgres"),
            "redis": _pids("^redis-server 127.0.0.1:6379"), "haproxy": _pids("^/usr/sbin/haproxy|^haproxy"),
            "pgbouncer": _pids("pgbouncer")}


def cpu_snapshot(pids: dict[str, list[int]]) -> dict[int, float]:
    found = {}
    for group in pids.values():
        for pid in group:
            with contextlib.suppress(OSError):
                found[pid] = cpu_s(pid)
    return found


@contextlib.contextmanager
def second_gateways(stack: Stack, n: int) -> Iterator[list[tuple[int, str]]]:
    """`n` more gateway processes on the stack's database and Redis: (pid, URL) of each."""
    procs, urls = [], []
    try:
        for _ in range(n):
            port = free_port()
            procs.append(subprocess.Popen([sys.executable, "-m", "shared.cli.main", "gateway"],
                                          env={**stack.env, "AINFERA_GATEWAY_PORT": str(port)}))
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            _wait(f"{url}/readyz")
        yield [(p.pid, url) for p, url in zip(procs, urls, strict=True)]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


@contextlib.contextmanager
def haproxy(backends: list[str]) -> Iterator[str]:
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    port = free_port()
    servers = "\n".join(f"    server g{i} {url.removeprefix('http://')}" for i, url in enumerate(backends))
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as f:
        f.write(_HAPROXY.format(port=port, servers=servers))
    proc = subprocess.Popen([binary, "-f", f.name, "-db"], stdout=subprocess.DEVNULL)
    try:
        _wait(f"http://127.0.0.1:{port}/readyz")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def check_receipts(stack: Stack, recorded: tuple[str, ...]) -> tuple[int, int, int]:
    """(answered 200, lost: answered without a receipt, duplicate: a job answered twice or with two receipts)."""
    ids = [line.split(" ", 1)[1] for line in recorded if line.startswith("200 ")]
    conn = await connect(stack.env["AINFERA_DATABASE_URL"])
    try:
        rows = await conn.fetch("SELECT job_id, count(*) AS n FROM receipts WHERE job_id = ANY($1) GROUP BY job_id",
                                ids)
    finally:
        await conn.close()
    receipts = {r["job_id"]: r["n"] for r in rows}
    twice = sum(n > 1 for n in Counter(ids).values()) + sum(n > 1 for n in receipts.values())
    return len(ids), sum(1 for i in set(ids) if i not in receipts), twice


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    args = ap.parse_args()
    if not wrk.available():
        raise SystemExit("wrk is needed: apt-get install wrk")
    with contextlib.ExitStack() as up:
        pgbouncer = up.enter_context(running_pgbouncer(PG_ADMIN))
        small = up.enter_context(running_stack(workers=1, redis_db=14))
        big = up.enter_context(running_stack(workers=4, redis_db=15, pgbouncer_port=pgbouncer))
        more = up.enter_context(second_gateways(big, 1))
        balanced = up.enter_context(haproxy([big.gateway_url, *(url for _, url in more)]))
        tops = [Topology("1 gateway, 1 worker", small.gateway_url, small, gateways=[small.gateway_pid]),
                Topology("2 gateways (HAProxy), 4 workers, PgBouncer", balanced, big,
                         gateways=[big.gateway_pid, *(pid for pid, _ in more)])]
        direct_url = f"{small.sim_url}/api.groq.com/openai/v1/chat/completions"
        for top in tops:  # warm-up
            wrk.run(f"{top.url}/v1/chat/completions", BODY, {"Authorization": f"Bearer {top.stack.api_key}"},
                    connections=8, seconds=1)
        direct: dict[int, list[float]] = {}
        for conc in args.concurrency:
            direct[conc] = []
            for _ in range(args.rounds):
                d = wrk.run(direct_url, DIRECT, {"Authorization": "Bearer sim"}, connections=conc, seconds=args.seconds)
                direct[conc].append(d.p50_ms)
                for top in tops:
                    pids = components(top)
                    before = cpu_snapshot(pids)
                    r = wrk.run(f"{top.url}/v1/chat/completions", BODY,
                                {"Authorization": f"Bearer {top.stack.api_key}"}, connections=conc,
                                seconds=args.seconds, record_header="x-ainfera-job-id")
                    top.figures.setdefault(conc, []).append((r.rps, r.p50_ms, r.p99_ms))
                    after = cpu_snapshot(pids)
                    answered, lost, twice = asyncio.run(check_receipts(top.stack, r.recorded))
                    for name, group in pids.items():
                        used = sum(after.get(p, 0.0) - before.get(p, 0.0) for p in group)
                        top.cpu.setdefault(f"{name}@{conc}", []).append(used / max(answered, 1) * 1000)
                    top.answered += answered
                    top.lost += lost
                    top.duplicate += twice
        print(f"simulated provider at 50 ms; wrk; medians of {args.rounds} rounds of {args.seconds:g} s; "
              "both topologies up at once, alternating")
        print(f"{'topology':<44} {'conc':>4} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'added p50':>9} {'ratio':>6}")
        for conc in args.concurrency:
            base = statistics.median(f[0] for f in tops[0].figures[conc])
            for top in tops:
                rps, p50, p99 = (statistics.median(f[i] for f in top.figures[conc]) for i in range(3))
                print(f"{top.name:<44} {conc:>4} {rps:>7.0f} {p50:>7.1f} {p99:>7.1f} "
                      f"{p50 - statistics.median(direct[conc]):>9.1f} {rps / base:>6.2f}")
        print("CPU ms per answered call (medians over rounds; Postgres and Redis: all their processes)")
        names = ["gateway", "worker", "postgres", "redis", "haproxy", "pgbouncer"]
        print(f"{'topology':<44} {'conc':>4} " + " ".join(f"{n:>9}" for n in names))
        for conc in args.concurrency:
            for top in tops:
                print(f"{top.name:<44} {conc:>4} " + " ".join(
                    f"{statistics.median(top.cpu[f'{n}@{conc}']):>9.2f}" for n in names))
        for top in tops:
            print(f"{top.name}: {top.answered} answers checked against receipts, lost {top.lost}, "
                  f"duplicate {top.duplicate}")


if __name__ == "__main__":
    main()

"""Budgets under concurrency: overshoot (which must be 0) and refused counts, and what a budget costs.

Starts the simulated provider (answering in 50 ms), two workers and two gateways as processes.
For each `--concurrency`, a fresh tenant gets a daily budget with room for a third of the calls'
worst cases, then that many calls go at once, half through each gateway, each answered after a
second (so all hold their worst case at the same time). It prints how many were
served and refused (402 budget_exceeded), what was spent against the budget (the receipts' costs)
and the overshoot: spent beyond the budget, in USD. Then, sequentially, `--calls` calls for a
budgeted and an unbudgeted tenant, alternating, and the p50 of each and the difference: what
reserving and settling adds to a call.

    .venv/bin/python bench/budget_overshoot.py [--concurrency 30 100] [--calls 200] [--lease-s 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stack import Stack, _wait, free_port, running_stack
from shared.chat.request import validate_chat_request
from shared.db.catalog import load_catalog
from shared.db.pool import connect
from shared.routing.plan import route_request
from shared.spend.worst_case import worst_case_usd

MODEL = "llama-3.3-70b@groq"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Name three rivers."}], "max_tokens": 200}
# Answered after a second, so every call of a burst holds its worst case at the same time.
SLOW = {**BODY, "messages": [{"role": "user", "content": "Name three rivers. [sim:latency=1000]"}]}


def new_tenant(stack: Stack, name: str) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "shared.cli.main", "tenant", "create", "--name", name],
                         env=stack.env, capture_output=True, text=True, check=True)
    tenant: dict[str, str] = json.loads(out.stdout)
    return tenant


async def set_policy(stack: Stack, tenant_id: str, policy: dict[str, float]) -> None:
    conn = await connect(stack.env["AINFERA_DATABASE_URL"])
    try:
        await conn.execute("UPDATE tenants SET spend_policy = $2 WHERE id = $1::uuid", tenant_id, policy)
    finally:
        await conn.close()


async def worst_case(stack: Stack, body: dict[str, object]) -> float:
    conn = await connect(stack.env["AINFERA_DATABASE_URL"])
    try:
        catalog = await load_catalog(conn)
    finally:
        await conn.close()
    request = validate_chat_request(body)
    value = worst_case_usd(catalog.models[MODEL], route_request(request).input_tokens, request.output_cap)
    assert value is not None
    return value


async def spent_in_db(stack: Stack, tenant_id: str) -> Decimal:
    conn = await connect(stack.env["AINFERA_DATABASE_URL"])
    try:
        value: Decimal = await conn.fetchval(
            "SELECT coalesce(sum(cost_usd), 0) FROM receipts WHERE tenant_id = $1::uuid", tenant_id)
    finally:
        await conn.close()
    return value


async def burst(stack: Stack, gateways: list[str], concurrency: int, worst: float) -> None:
    tenant = new_tenant(stack, f"burst-{concurrency}")
    budget = worst * (concurrency // 3 + 0.5)
    await set_policy(stack, tenant["tenant_id"], {"daily_budget_usd": budget})
    await asyncio.sleep(0.5)  # the gateways' tenant caches hear the change
    auth = {"Authorization": f"Bearer {tenant['api_key']}"}
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:
        answers = await asyncio.gather(*(client.post(f"{gateways[i % 2]}/v1/chat/completions", json=SLOW,
                                                     headers=auth) for i in range(concurrency)))
    served = sum(r.status_code == 200 for r in answers)
    refused = sum(r.status_code == 402 and r.json()["error"]["code"] == "budget_exceeded" for r in answers)
    spent = await spent_in_db(stack, tenant["tenant_id"])
    overshoot = max(spent - Decimal(repr(budget)), Decimal(0))
    other = concurrency - served - refused
    print(f"{concurrency:>5} {served:>7} {refused:>8} {other:>6} {budget:>12.6f} {float(spent):>12.6f} "
          f"{float(overshoot):>10.6f}")


async def latency(stack: Stack, gateway: str, calls: int) -> None:
    budgeted, free = new_tenant(stack, "budgeted"), new_tenant(stack, "unbudgeted")
    await set_policy(stack, budgeted["tenant_id"], {"daily_budget_usd": 1000.0, "monthly_budget_usd": 10000.0})
    await asyncio.sleep(0.5)
    times: dict[str, list[float]] = {"budgeted": [], "unbudgeted": []}
    async with httpx.AsyncClient(timeout=60) as client:
        for i in range(calls * 2):
            name, tenant = ("budgeted", budgeted) if i % 2 == 0 else ("unbudgeted", free)
            start = time.perf_counter()
            r = await client.post(f"{gateway}/v1/chat/completions", json=BODY,
                                  headers={"Authorization": f"Bearer {tenant['api_key']}"})
            times[name].append((time.perf_counter() - start) * 1000)
            assert r.status_code == 200, r.text
    p50 = {name: statistics.median(values[calls // 10:]) for name, values in times.items()}  # warm-up left out
    print(f"sequential p50: budgeted {p50['budgeted']:.2f} ms, unbudgeted {p50['unbudgeted']:.2f} ms, "
          f"added {p50['budgeted'] - p50['unbudgeted']:.2f} ms ({calls} calls each, alternating)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[30, 100])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--lease-s", type=float, default=None,
                        help="AINFERA_BUDGET_LEASE_S for the workers (0: every call holds in Postgres)")
    args = parser.parse_args()
    extra = {"AINFERA_BUDGET_LEASE_S": str(args.lease_s)} if args.lease_s is not None else None
    with running_stack(workers=2, sim_latency_ms=50, extra_env=extra) as stack:
        port = free_port()
        second = subprocess.Popen([sys.executable, "-m", "shared.cli.main", "gateway"],
                                  env={**stack.env, "AINFERA_GATEWAY_PORT": str(port)})
        try:
            _wait(f"http://127.0.0.1:{port}/readyz")
            gateways = [stack.gateway_url, f"http://127.0.0.1:{port}"]
            worst = asyncio.run(worst_case(stack, SLOW))
            print(f"two gateways, two workers; {MODEL} worst case ${worst:.6f}; budget = a third of the calls' "
                  "worst cases, plus half of one")
            print(f"{'conc':>5} {'served':>7} {'refused':>8} {'other':>6} {'budget $':>12} {'spent $':>12} "
                  f"{'overshoot $':>10}")
            for concurrency in args.concurrency:
                asyncio.run(burst(stack, gateways, concurrency, worst))
            asyncio.run(latency(stack, stack.gateway_url, args.calls))
        finally:
            second.terminate()
            second.wait(timeout=30)


if __name__ == "__main__":
    main()

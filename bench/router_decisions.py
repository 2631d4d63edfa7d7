"""ainfera-auto decisions per second over the full seeded catalog (130 models), on one core.

A realistic tenant policy (two banned providers, a banned slug, a preferred provider, a
cap) and a statistics snapshot with a learned ratio and latency for every model; the
requests vary in size and hints. Prints the median over rounds of microseconds per
decision, for requests without hints and with stack + latency hints.

    .venv/bin/python bench/router_decisions.py [--rounds 7] [--decisions 5000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.catalog.seed import load_seed
from shared.catalog.types import Catalog
from shared.routing.policy import TenantPolicy
from shared.routing.router import RouteRequest, RoutingStats, route


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--decisions", type=int, default=5000)
    args = ap.parse_args()
    rows = load_seed()
    catalog = Catalog(providers={p.name: p for p in rows.providers}, models={m.slug: m for m, _ in rows.models})
    rng = random.Random(7)
    stats = RoutingStats(
        output_ratios={s: rng.uniform(0.2, 1.5) for s in catalog.models},
        latency_ms={s: rng.uniform(150, 20_000) for s in catalog.models},
    )
    policy = TenantPolicy(banned_providers=frozenset({"xai", "byteplus"}), banned_slugs=frozenset({"gpt-4o@openai"}),
                          preferred_providers=frozenset({"together"}), max_cost_per_call_usd=0.05)
    plain = [RouteRequest(input_tokens=rng.randint(10, 20_000), output_cap=rng.choice([None, 256, 1024]))
             for _ in range(args.decisions)]
    hinted = [RouteRequest(input_tokens=r.input_tokens, output_cap=r.output_cap,
                           stack=rng.choice(["us", "avoid-china", "eu", None]),
                           latency_budget_ms=rng.choice([500, 2_000, 10_000]), needs_tools=rng.random() < 0.3)
              for r in plain]
    print(f"catalog: {len(catalog.models)} models; {args.decisions} decisions per round; median of {args.rounds}")
    for name, reqs in (("no hints", plain), ("stack+latency hints", hinted)):
        per: list[float] = []
        for _ in range(args.rounds):
            t0 = time.process_time()
            for r in reqs:
                try:
                    route(r, catalog, policy=policy, stats=stats)
                except Exception:
                    continue
            per.append((time.process_time() - t0) / len(reqs) * 1e6)
        med = statistics.median(per)
        print(f"{name:>20}: {med:7.1f} us per decision ({1e6 / med:8.0f} decisions/s on one core)")


if __name__ == "__main__":
    main()

"""CPU the metrics add to one synchronous call: the exact metric updates the gateway and the worker
make for it, timed in a loop on this process (no I/O; the end-to-end figure is sync_latency.py's).

    .venv/bin/python bench/metrics_cost.py [--calls 200000] [--rounds 5]

Prints microseconds per call for each side (median of rounds), to set against the CPU per call
sync_latency.py measures for the worker and gateway processes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.metrics import Metrics


def gateway_side(m: Metrics, n: int) -> float:
    """The access middleware's count and the synchronous wait's histogram, per call."""
    t0 = time.process_time()
    for _ in range(n):
        m.request("POST", "/v1/chat/completions", 200, "tenant", 0.056)
        m.sync_end_to_end.observe(0.055)
    return (time.process_time() - t0) / n * 1e6


def worker_side(m: Metrics, n: int) -> float:
    """Queue wait, the upstream call, and the commit's outcome, spend, tokens and audit append."""
    cost = Decimal("0.0000123")
    t0 = time.process_time()
    for _ in range(n):
        m.waited("interactive", "sync", 0.002)
        m.upstream_ok("groq", "llama-3.3-70b@groq", 0.05, 1)
        m.dispatched("sync", "succeeded", None)
        m.billed("groq", "llama-3.3-70b@groq", cost, 14, 20)
        m.appended("inference.routed")
    return (time.process_time() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    m = Metrics()
    gw = statistics.median(gateway_side(m, args.calls) for _ in range(args.rounds))
    wk = statistics.median(worker_side(m, args.calls) for _ in range(args.rounds))
    print(f"metric updates per synchronous call: gateway {gw:.2f} us, worker {wk:.2f} us "
          f"(median of {args.rounds} rounds of {args.calls:,} calls)")


if __name__ == "__main__":
    main()

"""Wall time of a full fanout (130 models) with the simulated provider answering in 200 ms.

Starts the simulated provider, a worker serving the probe queue and a gateway as processes;
runs `ainfera-dispatch fanout run --wait` a few times and prints the median. With 32 probe
slots (AINFERA_PROBE_WORKER_MAX_JOBS) the floor is about ceil(130 / 32) x 200 ms.

    .venv/bin/python bench/fanout_walltime.py [--rounds 3] [--slots 32]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stack import running_stack


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--slots", type=int, default=32)
    args = ap.parse_args()
    env = {"AINFERA_PROBE_WORKER_MAX_JOBS": str(args.slots)}
    with running_stack(sim_latency_ms=200, worker_queues=[["probe"]], extra_env=env) as stack:
        times = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "shared.cli.main", "fanout", "run", "--wait"], env=stack.env,
                                 capture_output=True, text=True, check=True, timeout=600)
            times.append(time.perf_counter() - t0)
        print(out.stdout.splitlines()[-3] if out.stdout else "")
        print(f"full fanout, 130 models, simulated provider at 200 ms, {args.slots} probe slots: "
              f"median {statistics.median(times):.2f} s over {args.rounds} runs "
              f"({', '.join(f'{t:.2f}' for t in times)}); includes the CLI's start-up and 0.5 s status polling")


if __name__ == "__main__":
    main()

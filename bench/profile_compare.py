"""Compare two cProfile dumps of the bulk worker, per job: calls and CPU seconds by source file.

Made by `bench/profiling/sitecustomize.py` during a `batch_scaling.py` run of each checkout:

    PROFILE_DIR=/tmp/prof_a PYTHONPATH=bench/profiling:. .venv/bin/python bench/batch_scaling.py \
        --lines 5000 --workers 1
    .venv/bin/python bench/profile_compare.py /tmp/prof_a /tmp/prof_b --jobs 5000

Call counts are exact whatever else the machine is doing; profiled CPU seconds are inflated
by the profiler (about 6x) but comparable between the two runs.
"""

from __future__ import annotations

import argparse
import pstats
from collections import Counter
from pathlib import Path


def by_file(directory: Path) -> tuple[Counter[str], Counter[str]]:
    """(calls, own CPU seconds) per source file, from the one dump in `directory`."""
    (dump,) = directory.glob("worker-*.prof")
    calls: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    stats = pstats.Stats(str(dump)).stats  # type: ignore[attr-defined]
    for (path, _line, _name), (_prim, ncalls, tottime, _cum, _callers) in stats.items():
        key = path.split("site-packages/")[-1]
        for root in ("/shared/", "/worker/", "/gateway/"):
            if root in key:
                key = root.strip("/") + "/" + key.split(root, 1)[1]
        calls[key] += ncalls
        seconds[key] += tottime
    return calls, seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--jobs", type=int, required=True, help="lines in each profiled batch")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    (ca, sa), (cb, sb) = by_file(args.a), by_file(args.b)
    n = args.jobs
    print(f"calls per job: {sum(ca.values()) / n:,.0f} vs {sum(cb.values()) / n:,.0f}; "
          f"profiled CPU ms per job: {sum(sa.values()) / n * 1000:.2f} vs {sum(sb.values()) / n * 1000:.2f}")
    print(f"{'ms/job a':>9} {'ms/job b':>9} {'calls a':>8} {'calls b':>8}  file (largest differences first)")
    for key in sorted(set(sa) | set(sb), key=lambda k: -abs(sb[k] - sa[k]))[:args.top]:
        print(f"{sa[key] / n * 1000:9.3f} {sb[key] / n * 1000:9.3f} {ca[key] / n:8.1f} {cb[key] / n:8.1f}  {key}")


if __name__ == "__main__":
    main()

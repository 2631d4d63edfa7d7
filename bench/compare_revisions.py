"""Two git revisions against each other in one run: the sync and batch benches, alternating.

Each revision is checked out once into a temporary worktree; then, round by round, each bench
runs on one revision and then the other (which goes first alternates too), so a machine that
gets busier or quieter during the run weighs on both alike. It prints every round, the medians
and the ratios new / base. Both revisions run with this checkout's virtualenv (its
dependencies), their own code first on the path.

    .venv/bin/python bench/compare_revisions.py --base REV [--new HEAD] [--rounds 3]
        [--seconds 5] [--concurrency 16] [--lines 5000] [--skip-batch]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# sync_latency.py's lines: "  16  gateway   58.4   70.1   271   1.46   0.68" and "  16    added    7.0   17.4"
_GATEWAY = re.compile(r"^\s*(\d+)\s+gateway\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", re.M)
_ADDED = re.compile(r"^\s*(\d+)\s+added\s+(-?[\d.]+)\s+(-?[\d.]+)\s*$", re.M)
# batch_scaling.py's line: "1 bulk worker process(es): 5000 lines in 7.4 s = 676 jobs/s, ..."
_BATCH = re.compile(r"^1 bulk worker process\(es\): \d+ lines in [\d.]+ s = ([\d,]+) jobs/s", re.M)


@contextmanager
def checked_out(rev: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"ainfera-rev-{rev[:10]}-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(path), rev],
                   check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False,
                       capture_output=True)


def run(tree: Path, script: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, str(tree / "bench" / script), *args], cwd=tree, env=env,
                         capture_output=True, text=True, check=False, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"{script} on {tree} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out.stdout


def sync_figures(text: str, conc: int) -> dict[str, float]:
    gw = next(m for m in _GATEWAY.finditer(text) if int(m.group(1)) == conc)
    added = next(m for m in _ADDED.finditer(text) if int(m.group(1)) == conc)
    return {"added p50 ms": float(added.group(2)), "added p99 ms": float(added.group(3)),
            "req/s": float(gw.group(4)), "worker CPU ms/call": float(gw.group(5)),
            "gateway CPU ms/call": float(gw.group(6))}


def batch_figures(text: str) -> dict[str, float]:
    m = _BATCH.search(text)
    if m is None:
        raise RuntimeError(f"no batch figure in:\n{text[-1000:]}")
    return {"batch jobs/s": float(m.group(1).replace(",", ""))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--new", default="HEAD")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--lines", type=int, default=5000)
    ap.add_argument("--skip-batch", action="store_true")
    args = ap.parse_args()
    revs = {name: subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev], check=True,
                                 capture_output=True, text=True).stdout.strip()
            for name, rev in (("base", args.base), ("new", args.new))}
    figures: dict[str, dict[str, list[float]]] = {"base": {}, "new": {}}
    with checked_out(revs["base"]) as base, checked_out(revs["new"]) as new:
        trees = {"base": base, "new": new}
        for i in range(args.rounds):
            order = ["base", "new"] if i % 2 == 0 else ["new", "base"]
            for name in order:
                got = sync_figures(run(trees[name], "sync_latency.py", "--rounds", "1", "--seconds",
                                       str(args.seconds), "--concurrency", str(args.concurrency)),
                                   args.concurrency)
                if not args.skip_batch:
                    got |= batch_figures(run(trees[name], "batch_scaling.py", "--lines", str(args.lines),
                                             "--workers", "1"))
                for k, v in got.items():
                    figures[name].setdefault(k, []).append(v)
                print(f"round {i + 1} {name} ({revs[name]}): " + ", ".join(f"{k} {v:g}" for k, v in got.items()),
                      flush=True)
    print(f"\nmedians of {args.rounds} rounds, concurrency {args.concurrency}; base {revs['base']}, "
          f"new {revs['new']}")
    print(f"{'figure':<22} {'base':>10} {'new':>10} {'new/base':>9}")
    for k in figures["base"]:
        b, n = statistics.median(figures["base"][k]), statistics.median(figures["new"][k])
        print(f"{k:<22} {b:>10.2f} {n:>10.2f} {n / b if b else float('nan'):>9.2f}")


if __name__ == "__main__":
    main()

"""A fanout run, summarised per provider: passed, failed, skipped and the reasons (API and CLI)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any


def _ts(t: datetime | None) -> int | None:
    return int(t.timestamp()) if t else None


def summarise(run: dict[str, Any], probes: list[dict[str, Any]]) -> dict[str, Any]:
    per: dict[str, dict[str, Any]] = defaultdict(lambda: {"passed": 0, "failed": 0, "skipped": 0,
                                                           "reasons": Counter()})
    for p in probes:
        row = per[p["provider"]]
        row[p["outcome"]] += 1
        if p["reason"]:
            row["reasons"][p["reason"]] += 1
    return {
        "id": run["id"],
        "object": "fanout.run",
        "trigger": run["trigger"],
        "provider": run["provider_filter"],
        "status": run["status"],
        "started_at": _ts(run["started_at"]),
        "finished_at": _ts(run["finished_at"]),
        "planned": run["planned"],
        "recorded": run["recorded"],
        "passed": run["passed"],
        "failed": run["failed"],
        "skipped": run["skipped"],
        "not_probed": run["not_probed"],
        "estimated_cost_usd": str(run["estimated_cost_usd"]),
        "guard": run["guard"],
        "decisions": run["decisions"],
        "providers": {name: {**{k: v for k, v in row.items() if k != "reasons"}, "reasons": dict(row["reasons"])}
                      for name, row in sorted(per.items())},
        "failures": [{"model": p["model_slug"], "provider": p["provider"], "reason": p["reason"],
                      "status_code": p["status_code"], "upstream_model": p["upstream_model"],
                      "upstream_url": p["upstream_url"]} for p in probes if p["outcome"] == "failed"],
    }


def render_text(summary: dict[str, Any]) -> str:
    """The report as a table, for terminals."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"fanout run {summary['id']} ({summary['status']})")
    for col in ("provider", "passed", "failed", "skipped", "reasons"):
        table.add_column(col, justify="right" if col in ("passed", "failed", "skipped") else "left")
    for name, row in summary["providers"].items():
        reasons = ", ".join(f"{r} x{n}" for r, n in sorted(row["reasons"].items()))
        table.add_row(name, str(row["passed"]), str(row["failed"]), str(row["skipped"]), reasons)
    out = StringIO()
    console = Console(file=out, width=120, force_terminal=False)
    console.print(table)
    console.print(f"passed {summary['passed']}, failed {summary['failed']}, skipped {summary['skipped']}, "
                  f"not probed (spend cap) {len(summary['not_probed'])}")
    if summary["guard"]:
        console.print(f"DECISIONS WITHHELD: {summary['guard']['reason']}")
    for d in summary["decisions"] or []:
        console.print(f"{d['action']}: {d['model']}" + (f" ({d['reason']})" if d["reason"] else ""))
    return out.getvalue()

"""What the operator console shows, as one JSON document (`GET /console/data`, admin key only).

Two sources:
- This gateway's own metrics, read from its Prometheus registry, so the console's numbers are
  `/metrics`'s numbers: API requests by status, the API routes' latency histogram, and each
  queue's depth and oldest job, refreshed as a scrape refreshes them.
- Postgres, for what only the receipts know across every worker: today's spend by model, the
  last hour's upstream errors by provider, the newest 50 routing decisions, batch progress.
  Windows are bounded (a day, an hour, 50 rows) and read through a BRIN index on
  `receipts.created_at`; the result is cached for `CACHE_S`, so any number of open consoles
  cost one set of queries per gateway per interval.

"API" means the `/v1/` routes: the console's own polls and Prometheus's scrapes are left out,
so the request count moves only with traffic.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry

from shared.db.queries import q
from shared.metrics.scrape import refresh_shared_state
from shared.resources import Resources

CACHE_S = 1.0


class ConsoleCache:
    """The last document and when it was made (one per app)."""

    def __init__(self) -> None:
        self.at = float("-inf")
        self.data: dict[str, Any] = {}


def _api(labels: dict[str, str]) -> bool:
    return labels.get("route", "").startswith("/v1/")


def metric_view(registry: CollectorRegistry) -> dict[str, Any]:
    """The console's figures from the registry: API requests by status, the API latency histogram
    (cumulative buckets, as Prometheus exposes them), queue depth and oldest age."""
    by_status: dict[str, float] = {}
    buckets: dict[float, float] = {}
    count = total = 0.0
    queues: dict[str, dict[str, float]] = {}
    for family in registry.collect():
        for s in family.samples:
            if s.name == "ainfera_http_requests_total" and _api(s.labels):
                by_status[s.labels["status"]] = by_status.get(s.labels["status"], 0.0) + s.value
            elif s.name == "ainfera_http_request_duration_seconds_bucket" and _api(s.labels):
                le = float(s.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + s.value
            elif s.name == "ainfera_http_request_duration_seconds_count" and _api(s.labels):
                count += s.value
            elif s.name == "ainfera_http_request_duration_seconds_sum" and _api(s.labels):
                total += s.value
            elif s.name == "ainfera_queue_depth":
                queues.setdefault(s.labels["queue"], {})["depth"] = s.value
            elif s.name == "ainfera_queue_oldest_age_seconds":
                queues.setdefault(s.labels["queue"], {})["oldest_age_s"] = s.value
    return {
        "requests": {"total": sum(by_status.values()), "by_status": dict(sorted(by_status.items()))},
        # [upper bound in seconds (null: +Inf), cumulative count]
        "latency": {"buckets": [[None if le == float("inf") else le, n] for le, n in sorted(buckets.items())],
                    "count": count, "sum_s": total},
        "queues": dict(sorted(queues.items())),
    }


def _money(value: Decimal | None) -> str:
    return format(value or Decimal(0), "f")


async def console_data(res: Resources, cache: ConsoleCache) -> dict[str, Any]:
    if time.monotonic() - cache.at < CACHE_S:
        return cache.data
    await refresh_shared_state(res.metrics, res.redis, res.db)
    now = res.clock()
    async with res.db.acquire() as conn:
        spend = await conn.fetch(q("console", "spend_today"), now)
        errors = await conn.fetch(q("console", "upstream_errors"), now)
        decisions = await conn.fetch(q("console", "recent_decisions"), now)
        batches = await conn.fetch(q("console", "batch_progress"), now)
    data = {
        "generated_at": now.isoformat(),
        **metric_view(res.metrics.registry),
        "spend_today": [{"model": r["model"], "calls": r["calls"], "cost_usd": _money(r["cost_usd"])} for r in spend],
        "upstream_errors": [{"provider": r["provider"], "code": r["error_code"], "calls": r["calls"]}
                            for r in errors],
        "decisions": [{"at": r["created_at"].isoformat(), "requested": r["requested_model"], "model": r["model_slug"],
                       "provider": r["provider"], "status": r["status"], "code": r["error_code"],
                       "reason": r["reason"],
                       "fallbacks": [f.get("slug") for f in r["fallbacks"] if isinstance(f, dict)]}
                      for r in decisions],
        "batches": [{"id": r["id"], "status": r["status"], "total": r["total"], "completed": r["completed"],
                     "failed": r["failed"]} for r in batches],
    }
    cache.at, cache.data = time.monotonic(), data
    return data

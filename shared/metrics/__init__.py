"""Prometheus metrics: one registry per process (`registry.Metrics`), bounded labels (`labels`),
state read at scrape time (`scrape`, `workers`) and a worker's own port (`serve`).

The metric table (names, labels, bounds) is docs/metrics.md.
"""

from shared.metrics.registry import Metrics

__all__ = ["Metrics"]

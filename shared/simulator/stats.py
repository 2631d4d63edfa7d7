"""Request counters the simulator serves at `GET /_sim/stats`, so tests can see what reached 'upstream'."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

RECENT_BODIES = 200


@dataclass(slots=True)
class Stats:
    total: int = 0
    by_host: Counter[str] = field(default_factory=Counter)
    by_model: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    streams: Counter[str] = field(default_factory=Counter)  # by how they ended: completed, aborted, cut
    # The last bodies received (provider, model, body), so a test can assert what a provider was sent.
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_BODIES))

    def request(self, host: str | None) -> None:
        """Count a provider request; `host` is None when the path names no known provider host."""
        self.total += 1
        if host is not None:
            self.by_host[host] += 1

    def received(self, provider: str, model: str, body: Any) -> None:
        self.recent.append({"provider": provider, "model": model, "body": body})

    def model(self, name: str) -> None:
        self.by_model[name] += 1

    def status(self, code: int) -> None:
        self.by_status[code] += 1

    def stream(self, end: str) -> None:
        self.streams[str(end)] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_host": dict(self.by_host),
            "by_model": dict(self.by_model),
            "by_status": {str(code): count for code, count in sorted(self.by_status.items())},
            "streams": dict(self.streams),
        }

    def reset(self) -> None:
        self.total = 0
        self.by_host.clear()
        self.by_model.clear()
        self.by_status.clear()
        self.streams.clear()
        self.recent.clear()

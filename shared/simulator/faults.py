"""Faults the simulator was told to inject: control-API rules and `fail-times` counters.

Owned by one app instance (no module state). Everything runs on one event loop, so
no locks are needed.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from shared.simulator.directives import Directives, parse_fault_spec

# fail-times counters are kept per distinct prompt; the oldest are forgotten past this many.
MAX_TRACKED_PROMPTS = 100_000


@dataclass(slots=True)
class FaultRule:
    """A control-API fault for requests matching host and/or model, `remaining` times or until cleared."""

    id: int
    fault: str
    directives: Directives
    host: str | None = None
    model: str | None = None
    remaining: int | None = None

    def matches(self, host: str, model: str) -> bool:
        return (self.host is None or self.host == host) and (self.model is None or self.model == model)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "model": self.model,
            "fault": self.fault,
            "times": self.remaining,
        }


@dataclass(slots=True)
class FaultBook:
    rules: list[FaultRule] = field(default_factory=list)
    _next_id: int = 1
    _failures_seen: OrderedDict[bytes, int] = field(default_factory=OrderedDict)

    def add(self, fault: str, *, host: str | None, model: str | None, times: int | None) -> FaultRule:
        """Register a rule; ValueError when the fault spec or `times` is invalid."""
        if times is not None and times < 1:
            raise ValueError("times must be a positive integer")
        rule = FaultRule(self._next_id, fault, parse_fault_spec(fault), host, model, times)
        self._next_id += 1
        self.rules.append(rule)
        return rule

    def clear(self) -> int:
        removed = len(self.rules)
        self.rules.clear()
        self._failures_seen.clear()
        return removed

    def take(self, host: str, model: str) -> Directives | None:
        """The first matching rule's directives, using up one of its `times`."""
        for rule in self.rules:
            if rule.matches(host, model):
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self.rules.remove(rule)
                return rule.directives
        return None

    def should_fail(self, prompt_key: bytes, times: int) -> bool:
        """True for the first `times` requests carrying this prompt key, False afterwards."""
        seen = self._failures_seen.get(prompt_key, 0)
        if seen >= times:
            return False
        self._failures_seen[prompt_key] = seen + 1
        self._failures_seen.move_to_end(prompt_key)
        if len(self._failures_seen) > MAX_TRACKED_PROMPTS:
            self._failures_seen.popitem(last=False)
        return True

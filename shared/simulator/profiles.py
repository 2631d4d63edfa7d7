"""How long each simulated model takes to answer: its catalog latency profile, on a compressed clock.

A model answers in first-token time + output tokens / speed, from the catalog row (the
research's figures for the model's default variant), or from its fast variant when the
request asks for the effort that selects it, or from the router's priors when the catalog
has no figure. All of it is "world time"; the simulator waits world time x
`AINFERA_SIM_TIME_SCALE` and reports the difference in `SKIPPED_HEADER`, so a worker that
knows it is talking to the simulator can learn world-time latencies without the demo
waiting minutes for a reasoning model. A fixed latency (`AINFERA_SIM_LATENCY_MS`, or
`[sim:latency=MS]`) replaces the profile, for benchmarks and fault tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# World milliseconds the simulator did not wait (world time minus the real delay).
SKIPPED_HEADER = "x-sim-time-skipped-ms"


@dataclass(frozen=True, slots=True)
class LatencyPriors:
    """The figures used where the catalog has none: the same priors the router uses."""

    default_ttft_ms: float = 1000.0
    fast_tier_ttft_ms: float = 200.0
    output_tokens_per_s: float = 50.0


@dataclass(frozen=True, slots=True)
class Pace:
    ttft_ms: float
    output_tokens_per_s: float

    def world_ms(self, output_tokens: int) -> float:
        return self.ttft_ms + output_tokens * 1000.0 / self.output_tokens_per_s


@dataclass(frozen=True, slots=True)
class LatencyProfile:
    """One model at one provider: its default pace, and its fast variant's with the effort that selects it."""

    default: Pace
    fast: Pace | None = None
    fast_effort: str | None = None

    def pace(self, reasoning_effort: str | None) -> Pace:
        if self.fast is not None and reasoning_effort is not None and reasoning_effort == self.fast_effort:
            return self.fast
        return self.default

    def world_ms(self, output_tokens: int, reasoning_effort: str | None) -> float:
        return self.pace(reasoning_effort).world_ms(output_tokens)


def profile_of(row: dict[str, Any], *, fast_tier: bool, priors: LatencyPriors) -> LatencyProfile:
    """A catalog model row's profile (the JSON of `catalog.json`)."""
    prior_ttft = priors.fast_tier_ttft_ms if fast_tier else priors.default_ttft_ms
    speed = row.get("output_tokens_per_s") or priors.output_tokens_per_s
    default = Pace(_or(row.get("p50_ttft_ms"), prior_ttft), speed)
    fv = row.get("aa_fast_variant") or {}
    effort = fv.get("reasoning_effort")
    if not effort:
        return LatencyProfile(default)
    fast = Pace(_or(fv.get("p50_ttft_ms"), prior_ttft), fv.get("output_tokens_per_s") or speed)
    return LatencyProfile(default, fast, effort)


def _or(value: Any, fallback: float) -> float:
    return float(value) if value is not None else fallback

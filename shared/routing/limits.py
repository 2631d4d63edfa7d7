"""Spend and rate limits, one shape for a tenant's policy and for each API key's settings.

A tenant's limits are set by the operator (`PUT /v1/admin/tenants/{id}/spend_policy`); a key's by
the tenant's admin when the key is made or changed. A key's limits and a caller's
`routing_hint.max_cost_usd` can only tighten the tenant's: every limit that applies holds at once,
so the effective one is the smallest (`tightest`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# USD amounts are kept to the micro-dollar; a budget above a million dollars a day is a typo.
MAX_USD = 1_000_000.0
MAX_PER_MINUTE = 10_000_000

Usd = Annotated[float, Field(gt=0, le=MAX_USD)]
PerMinute = Annotated[int, Field(gt=0, le=MAX_PER_MINUTE)]


class RateLimitsDocument(BaseModel):
    """Requests and tokens per minute; batch lines count against their own two limits, so a batch
    never takes the interactive traffic's share."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    requests_per_minute: PerMinute | None = None
    tokens_per_minute: PerMinute | None = None
    batch_requests_per_minute: PerMinute | None = None
    batch_tokens_per_minute: PerMinute | None = None


class LimitsDocument(BaseModel):
    """The limit fields shared by a tenant's spend policy and a key's settings."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    max_cost_per_call_usd: Usd | None = None
    daily_budget_usd: Usd | None = None  # per UTC day
    monthly_budget_usd: Usd | None = None  # per UTC calendar month
    rate_limits: RateLimitsDocument | None = None


@dataclass(frozen=True, slots=True)
class RateLimits:
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    batch_requests_per_minute: int | None = None
    batch_tokens_per_minute: int | None = None

    def to_json(self) -> dict[str, int]:
        return {name: value for name in RateLimitsDocument.model_fields if (value := getattr(self, name)) is not None}

    @staticmethod
    def from_json(data: Mapping[str, Any] | None) -> RateLimits:
        data = data or {}
        return RateLimits(**{name: int(data[name]) for name in RateLimitsDocument.model_fields if data.get(name)})


@dataclass(frozen=True, slots=True)
class Limits:
    """Typed limits, read from stored jsonb that was validated when it was set."""

    max_cost_per_call_usd: float | None = None
    daily_budget_usd: float | None = None
    monthly_budget_usd: float | None = None
    rate_limits: RateLimits = field(default_factory=RateLimits)

    @staticmethod
    def from_json(data: Mapping[str, Any] | None) -> Limits:
        data = data or {}

        def usd(name: str) -> float | None:
            value = data.get(name)
            return float(value) if value is not None else None

        return Limits(max_cost_per_call_usd=usd("max_cost_per_call_usd"), daily_budget_usd=usd("daily_budget_usd"),
                      monthly_budget_usd=usd("monthly_budget_usd"),
                      rate_limits=RateLimits.from_json(data.get("rate_limits")))

    def to_json(self) -> dict[str, Any]:
        """The stored shape again (what `from_json` reads), without unset limits."""
        names = ("max_cost_per_call_usd", "daily_budget_usd", "monthly_budget_usd")
        out: dict[str, Any] = {name: value for name in names if (value := getattr(self, name)) is not None}
        if rates := self.rate_limits.to_json():
            out["rate_limits"] = rates
        return out

    @property
    def budgeted(self) -> bool:
        return self.daily_budget_usd is not None or self.monthly_budget_usd is not None


def tightest(*caps: float | None) -> float | None:
    """The smallest of the caps that are set (None when none is)."""
    present = [cap for cap in caps if cap is not None]
    return min(present) if present else None

"""What a tenant's admin may set on one API key: the models it may call, and limits that only
tighten the tenant's (`shared/routing/limits.py`). Validated when set, with the field named."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from shared.routing.limits import Limits, LimitsDocument, tightest

MAX_ALLOWED_MODELS = 500


class KeySettingsDocument(LimitsDocument):
    """The JSON a key's settings are set with. `allowed_models`: catalog slugs or `ainfera-auto`;
    absent means every model the tenant may use."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    allowed_models: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]],
                              Field(min_length=1, max_length=MAX_ALLOWED_MODELS)] | None = None


@dataclass(frozen=True, slots=True)
class KeySettings:
    """A key's settings as the gateway and worker read them (stored jsonb, validated when set)."""

    allowed_models: frozenset[str] | None = None
    limits: Limits = field(default_factory=Limits)

    @staticmethod
    def from_json(data: Mapping[str, Any] | None) -> KeySettings:
        """`agent_policy` holds the key's own caps (set through the agents API); they only tighten
        what the tenant's admin set on the key, never loosen it."""
        data = data or {}
        allowed = data.get("allowed_models")
        limits = Limits.from_json(data)
        own = data.get("agent_policy")
        if isinstance(own, Mapping):
            mine = Limits.from_json(own)
            limits = replace(limits,
                             max_cost_per_call_usd=tightest(limits.max_cost_per_call_usd, mine.max_cost_per_call_usd),
                             daily_budget_usd=tightest(limits.daily_budget_usd, mine.daily_budget_usd))
        return KeySettings(allowed_models=frozenset(allowed) if allowed is not None else None, limits=limits)

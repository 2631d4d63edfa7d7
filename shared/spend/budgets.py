"""Reserve a call's worst case against every budget that applies; the receipt settles it.

Budgets are the tenant's (its spend policy) and the calling key's (its settings), each per call,
per UTC day and per UTC month. The per-call caps are checked here, against the worst case; the
daily and monthly ones by `budget_reserve` in Postgres, which locks the counters it touches in a
fixed order and holds the amount only when every budget has room, so concurrent calls on any
number of workers cannot overshoot. The receipt's transaction settles the reservation (`finish_dispatch`,
migration 0014), so the settlement happens once, in the receipt's own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from shared.db.queries import q
from shared.db.types import Connection
from shared.errors import BudgetExceeded
from shared.routing.limits import Limits, tightest

# Amounts go to Postgres as numeric text: no float rounding between what is checked and stored.
_PLACES = Decimal("0.0000000001")


@dataclass(frozen=True, slots=True)
class Budget:
    scope: str  # "tenant" | "key"
    period: str  # "day" | "month"
    limit_usd: float

    @property
    def name(self) -> str:
        return f"{self.scope}.{'daily' if self.period == 'day' else 'monthly'}_budget_usd"

    def row(self) -> dict[str, Any]:
        return {"scope": self.scope, "period": self.period, "limit": self.limit_usd, "name": self.name}


@dataclass(frozen=True, slots=True)
class Budgets:
    """Every budget that applies to one call."""

    per_call_usd: float | None  # the tightest per-call cap, the tenant's or the key's
    per_call_source: str | None
    periodic: tuple[Budget, ...]

    @staticmethod
    def of(tenant: Limits, key: Limits | None) -> Budgets:
        key = key or Limits()
        per_call = tightest(tenant.max_cost_per_call_usd, key.max_cost_per_call_usd)
        source = None
        if per_call is not None:
            source = "tenant.max_cost_per_call_usd" if per_call == tenant.max_cost_per_call_usd \
                else "key.max_cost_per_call_usd"
        periodic = [Budget(scope, period, limit) for scope, limits in (("tenant", tenant), ("key", key))
                    for period, limit in (("day", limits.daily_budget_usd), ("month", limits.monthly_budget_usd))
                    if limit is not None]
        return Budgets(per_call, source, tuple(periodic))

    @property
    def any(self) -> bool:
        return self.per_call_usd is not None or bool(self.periodic)


def check_per_call(budgets: Budgets, worst_case: float, slug: str) -> None:
    """Refuse a call whose worst case is over the per-call cap (402, naming the cap)."""
    cap = budgets.per_call_usd
    if cap is not None and worst_case > cap:
        raise BudgetExceeded(
            f"The worst-case cost of this call on '{slug}' is ${worst_case:.6f} (its input and max_tokens at catalog "
            f"prices), over the ${cap:g} per-call cap ({budgets.per_call_source}). Lower max_tokens, or use a "
            "cheaper model.", param="max_tokens", reason="per_call_cap_exceeded", budget=budgets.per_call_source)


async def reserve(conn: Connection, *, job_id: str, tenant_id: UUID, key_id: UUID | None, amount_usd: float,
                  budgets: Budgets, now: datetime) -> None:
    """Hold `amount_usd` for this job against the daily and monthly budgets (re-sizing what it
    holds already); a 402 naming the first budget without room, and what it has left."""
    refused = await conn.fetchval(q("budgets", "reserve"), job_id, tenant_id, key_id, as_numeric(amount_usd),
                                  [b.row() for b in budgets.periodic], now)
    if refused is not None:
        left = float(refused["left"])
        raise BudgetExceeded(
            f"This call's worst-case cost of ${amount_usd:.6f} does not fit the {refused['name']} of "
            f"${float(refused['limit']):g}: ${left:.6f} is left. Lower max_tokens, wait for the next period, or "
            "ask for a larger budget.", param=None, reason=_cap_reason(refused["name"]),
            budget=refused["name"])


def _cap_reason(name: str) -> str:
    """The audit reason for a refusing budget's name (`key.daily_budget_usd` -> `daily_cap_exceeded`)."""
    return "daily_cap_exceeded" if name.endswith(".daily_budget_usd") else "monthly_cap_exceeded"


async def budget_left(conn: Connection, *, tenant_id: UUID, key_id: UUID | None, budgets: Budgets,
                      now: datetime) -> float | None:
    """What the tightest daily or monthly budget has left now (None: no such budget). A read for
    routing only: `reserve` decides."""
    if not budgets.periodic:
        return None
    rows = {(r["scope"], r["period"]): r for r in await conn.fetch(q("budgets", "counters"), tenant_id, key_id, now)}
    left = []
    for b in budgets.periodic:
        row = rows.get((b.scope, b.period))
        used = float(row["spent_usd"] + row["reserved_usd"]) if row else 0.0
        left.append(max(b.limit_usd - used, 0.0))
    return min(left)


async def release_stale(conn: Connection, *, age_s: float, orphan_age_s: float) -> int:
    """Settle to their receipt, or release, reservations older than `age_s` whose job is over
    (`orphan_age_s` for one that never became a job row). The reconciler's sweep; returns how many."""
    released: int = await conn.fetchval(q("budgets", "release_stale"), timedelta(seconds=age_s),
                                        timedelta(seconds=orphan_age_s))
    return released


def as_numeric(usd: float) -> Decimal:
    """A USD amount as the numeric Postgres stores (10 places), from the float it was priced in."""
    return Decimal(repr(usd)).quantize(_PLACES)

"""Budget leases: a worker reserves a slice of a budget ahead of time, so a budgeted call takes its
worst case from that slice in memory instead of with a Postgres round trip of its own.

A lease is a reservation like a job's (a `budget_reservations` row whose id is `lease:…`), taken
with the same checked hold, `budget_reserve`. So what all leases and all jobs hold together never
exceeds a budget, on any number of workers: zero overshoot stays Postgres's guarantee. A call's
hold from a lease (`LeaseHold`) travels in its commit; the receipt's transaction moves that amount
from the lease to the job's own reservation and settles it (`budget_settle_job`, migration 0015),
exactly once, as an exact hold is.

Leases exist only far from the limit: a lease is at most `SHARE` of what the tightest budget has
left, and it is not granted below `MIN_CALLS` worst cases. Near the limit every call holds
exactly, one by one. A lease is handed out for `lease_s` seconds (replaced in the background from
half-way), then what is left of it goes back; so a budget whose room sits in other workers'
leases is whole again within `lease_s`. Grants and returns never run in a call's path: the call
that finds no lease holds exactly and asks for one in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from shared.db.queries import q
from shared.db.types import Pool
from shared.logging import get_logger
from shared.spend.budgets import Budget, Budgets

log = get_logger(__name__)

WANT_CALLS = 32  # a lease is asked for with room for this many calls like the one that asked
MIN_CALLS = 4  # and not granted with room for fewer
SHARE = Decimal(1) / 32  # at most this share of what the tightest budget has left


@dataclass(frozen=True, slots=True)
class LeaseHold:
    """What one call took from a lease; its commit carries it to the receipt's transaction."""

    lease_id: str
    amount_usd: Decimal

    def row(self) -> dict[str, str]:
        return {"id": self.lease_id, "amount": str(self.amount_usd)}

    @staticmethod
    def from_row(row: dict[str, str] | None) -> LeaseHold | None:
        return LeaseHold(row["id"], Decimal(row["amount"])) if row else None


@dataclass(frozen=True, slots=True)
class LeaseScope:
    """The budgets one lease is held against: a tenant's and its key's, for one UTC day and month."""

    tenant_id: UUID
    key_id: UUID | None
    day: date
    budgets: tuple[Budget, ...]

    @staticmethod
    def of(tenant_id: UUID, key_id: UUID | None, budgets: Budgets, now: datetime) -> LeaseScope:
        return LeaseScope(tenant_id, key_id, now.date(), budgets.periodic)


@dataclass(slots=True)
class _Lease:
    id: str
    available: Decimal  # not yet handed out
    granted_at: float  # monotonic
    left_at_grant: Decimal  # what the tightest budget had left when it was granted


class BudgetLeases:
    """One worker's leases, by scope. `take` and `give_back` are synchronous (one event loop, no
    await between the check and the change), so the calls of one worker cannot over-draw a lease."""

    def __init__(self, db: Pool, *, lease_s: float, clock: Callable[[], datetime],
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._lease_s = lease_s
        self._clock = clock
        self._monotonic = monotonic
        self._leases: dict[LeaseScope, _Lease] = {}
        self._granting: set[LeaseScope] = set()
        self._quiet_until: dict[LeaseScope, float] = {}  # no new grant asked before (the last one failed)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self._lease_s > 0

    def take(self, scope: LeaseScope, amount: Decimal) -> LeaseHold | None:
        """`amount` from this scope's lease, or None (no lease with room: hold exactly). Asks for
        a new lease in the background when there is none, it is running low, or half its time is up."""
        if not self.enabled:
            return None
        now = self._monotonic()
        lease = self._leases.get(scope)
        if lease is not None and now - lease.granted_at >= self._lease_s:
            self._retire(scope)
            lease = None
        if lease is None or lease.available < amount * MIN_CALLS or now - lease.granted_at >= self._lease_s / 2:
            self._ask(scope, amount, now)
        if lease is None or lease.available < amount:
            return None
        lease.available -= amount
        return LeaseHold(lease.id, amount)

    def give_back(self, hold: LeaseHold) -> None:
        """Undo a `take` whose call will not be charged through it (a fallback re-holds)."""
        for lease in self._leases.values():
            if lease.id == hold.lease_id:
                lease.available += hold.amount_usd
                return
        self._spawn(self._return(hold.lease_id, hold.amount_usd))  # retired meanwhile: straight back

    def left_hint(self, scope: LeaseScope) -> Decimal | None:
        """What the tightest budget had left when this scope's lease was granted (None: no lease).
        For routing only, which a hold then checks."""
        lease = self._leases.get(scope)
        return lease.left_at_grant if lease is not None else None

    async def close(self) -> None:
        """Give back every lease's unused slice (best effort: the reconciler frees the rest)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for scope in list(self._leases):
            self._retire(scope)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _ask(self, scope: LeaseScope, amount: Decimal, now: float) -> None:
        if scope in self._granting or now < self._quiet_until.get(scope, 0.0):
            return
        self._granting.add(scope)
        self._spawn(self._grant(scope, amount))
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep(), name="budget-lease-sweeper")

    async def _grant(self, scope: LeaseScope, amount: Decimal) -> None:
        lease_id = f"lease:{uuid.uuid4().hex}"
        try:
            async with self._db.acquire() as conn:
                raw = await conn.fetchval(
                    q("budgets", "lease_grant"), lease_id, scope.tenant_id, scope.key_id, amount * WANT_CALLS,
                    amount * MIN_CALLS, SHARE, [b.row() for b in scope.budgets], self._clock())
            answer = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
            granted, left = Decimal(str(answer["granted"])), Decimal(str(answer["left"]))
        except Exception as e:  # a lease is an optimisation: calls hold exactly meanwhile
            log.warning("budget_lease_grant_failed", error=type(e).__name__)
            granted, left = Decimal(0), Decimal(0)
        finally:
            self._granting.discard(scope)
        if granted <= 0:
            self._quiet_until[scope] = self._monotonic() + min(1.0, self._lease_s)
            return
        self._quiet_until.pop(scope, None)
        if scope in self._leases:
            self._retire(scope)
        self._leases[scope] = _Lease(lease_id, granted, self._monotonic(), left)

    def _retire(self, scope: LeaseScope) -> None:
        lease = self._leases.pop(scope)
        if lease.available > 0:
            self._spawn(self._return(lease.id, lease.available))

    async def _return(self, lease_id: str, amount: Decimal) -> None:
        try:
            async with self._db.acquire() as conn:
                await conn.fetchval(q("budgets", "lease_return"), lease_id, amount)
        except Exception as e:  # the reconciler releases what a lease still holds after an hour
            log.warning("budget_lease_return_failed", error=type(e).__name__)

    async def _sweep(self) -> None:
        """Retire leases whose time is up even when no call comes to notice (an idle worker)."""
        while self._leases or self._granting:
            await asyncio.sleep(self._lease_s / 2)
            now = self._monotonic()
            for scope, lease in list(self._leases.items()):
                if now - lease.granted_at >= self._lease_s:
                    self._retire(scope)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

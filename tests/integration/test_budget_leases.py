"""Budget leases on real Postgres: what workers lease and what jobs hold together never exceed a
budget, a lease's unused slice goes back, and a receipt settles what its call took from a lease."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from shared.db.pool import create_pool
from shared.db.types import Pool
from shared.errors import BudgetExceeded
from shared.routing.limits import Limits
from shared.settings import Settings
from shared.spend.budgets import Budgets, reserve
from shared.spend.leases import MIN_CALLS, SHARE, WANT_CALLS, BudgetLeases, LeaseScope
from tests.harness import fetch_rows as rows
from tests.harness import new_tenant

pytestmark = pytest.mark.integration

LIMIT = Decimal("10")
WORST = Decimal("0.01")


def utc_now() -> datetime:
    return datetime.now(UTC)


async def counter(settings: Settings) -> tuple[Decimal, Decimal]:
    [row] = await rows(settings, "SELECT spent_usd, reserved_usd FROM budget_counters "
                                 "WHERE scope = 'tenant' AND period = 'day'")
    return row["spent_usd"], row["reserved_usd"]


async def leased(settings: Settings) -> Decimal:
    [row] = await rows(settings, "SELECT coalesce(sum(amount_usd), 0) AS held FROM budget_reservations "
                                 "WHERE job_id LIKE 'lease:%' AND settled_at IS NULL")
    held: Decimal = row["held"]
    return held


async def settle(db: Pool, job: str, lease: dict[str, str] | None, cost: Decimal) -> None:
    """What a receipt's transaction does with the job's hold (finish_dispatch calls it)."""
    async with db.acquire() as conn:
        await conn.execute("SELECT budget_settle_job($1, $2, $3)", job, lease, cost)


async def granted(leases: BudgetLeases, scope: LeaseScope) -> None:
    for _ in range(200):
        if leases.left_hint(scope) is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no lease was granted")


@pytest.fixture
async def budgeted(settings: Settings):
    tenant_id, _ = await new_tenant(settings, policy={"daily_budget_usd": float(LIMIT)})
    budgets = Budgets.of(Limits(daily_budget_usd=float(LIMIT)), None)
    db = await create_pool(settings.database_url, min_size=1, max_size=8, pooler=settings.database_pooler)
    try:
        yield UUID(tenant_id), budgets, db
    finally:
        await db.close()


async def test_a_lease_is_a_checked_hold_whose_unused_slice_goes_back(settings, budgeted):
    tenant_id, budgets, db = budgeted
    leases = BudgetLeases(db, lease_s=30, clock=utc_now)
    scope = LeaseScope.of(tenant_id, None, budgets, utc_now())
    assert leases.take(scope, WORST) is None  # none yet: this call holds exactly; one is asked for
    await granted(leases, scope)
    expected = min(WORST * WANT_CALLS, LIMIT * SHARE)
    assert await leased(settings) == expected and await counter(settings) == (0, expected)
    hold = leases.take(scope, WORST)
    assert hold is not None and hold.amount_usd == WORST
    await settle(db, "job_a", hold.row(), Decimal("0.004"))  # the receipt moves the hold and settles it
    assert await counter(settings) == (Decimal("0.004"), expected - WORST)
    [job] = await rows(settings, "SELECT amount_usd, cost_usd, settled_at FROM budget_reservations "
                                 "WHERE job_id = 'job_a'")
    assert (job["amount_usd"], job["cost_usd"]) == (WORST, Decimal("0.004")) and job["settled_at"] is not None
    in_flight = leases.take(scope, WORST)
    assert in_flight is not None
    await leases.close()  # what was not handed out goes back; the call in flight keeps its part
    assert await counter(settings) == (Decimal("0.004"), WORST)
    await settle(db, "job_b", in_flight.row(), WORST)
    assert await counter(settings) == (Decimal("0.004") + WORST, 0) and await leased(settings) == 0


async def test_near_the_limit_no_lease_is_granted(settings, budgeted):
    tenant_id, budgets, db = budgeted
    leases = BudgetLeases(db, lease_s=30, clock=utc_now)
    big = LIMIT * SHARE / MIN_CALLS * Decimal("1.01")  # a lease could not hold MIN_CALLS of these
    scope = LeaseScope.of(tenant_id, None, budgets, utc_now())
    assert leases.take(scope, big) is None  # held exactly; the lease it asks for is refused
    await asyncio.sleep(0.3)
    assert leases.left_hint(scope) is None and await leased(settings) == 0
    await leases.close()


async def test_a_taken_hold_given_back_after_its_lease_was_retired_goes_back_to_the_budget(settings, budgeted):
    tenant_id, budgets, db = budgeted
    leases = BudgetLeases(db, lease_s=0.2, clock=utc_now)
    scope = LeaseScope.of(tenant_id, None, budgets, utc_now())
    leases.take(scope, WORST)
    await granted(leases, scope)
    hold = leases.take(scope, WORST)
    assert hold is not None
    await asyncio.sleep(0.5)  # the sweeper retires the lease; the hold stays in it, for its receipt
    assert await leased(settings) == WORST
    leases.give_back(hold)  # the call fell back to a model held exactly: its slice goes straight back
    await leases.close()
    assert await counter(settings) == (0, 0)


async def test_two_workers_leasing_and_holding_exactly_never_exceed_the_budget(settings, budgeted):
    """A random interleaving of lease takes, exact holds, refusals and settlements on two workers:
    at every step what is spent and reserved fits the budget, and at the end all is settled."""
    tenant_id, budgets, db = budgeted
    rng = random.Random(15)
    workers = [BudgetLeases(db, lease_s=0.3, clock=utc_now) for _ in range(2)]
    scope = LeaseScope.of(tenant_id, None, budgets, utc_now())
    open_holds: list[tuple[str, dict[str, str] | None, Decimal]] = []
    refused = 0
    for i in range(400):
        worker = workers[rng.randrange(2)]
        amount = Decimal(rng.choice(["0.01", "0.02", "0.05", "0.2"]))
        hold = worker.take(scope, amount)
        job = f"job_{i}"
        if hold is None:
            try:
                async with db.acquire() as conn:
                    await reserve(conn, job_id=job, tenant_id=tenant_id, key_id=None, amount_usd=float(amount),
                                  budgets=budgets, now=utc_now())
                open_holds.append((job, None, amount))
            except BudgetExceeded:
                refused += 1
        else:
            open_holds.append((job, hold.row(), amount))
        while open_holds and (len(open_holds) > 12 or rng.random() < 0.3):
            done, lease, held = open_holds.pop(rng.randrange(len(open_holds)))
            await settle(db, done, lease, held * Decimal(rng.choice(["0", "0.5", "1"])))
        spent, reserved = await counter(settings)
        assert spent + reserved <= LIMIT, (i, spent, reserved)
        if i % 50 == 0:
            await asyncio.sleep(0.05)  # let grants and returns land
    for done, lease, held in open_holds:
        await settle(db, done, lease, held)
    for worker in workers:
        await worker.close()
    spent, reserved = await counter(settings)
    assert reserved == 0 and spent <= LIMIT and refused > 0  # the budget ran out on the way
    [total] = await rows(settings, "SELECT sum(cost_usd) AS s FROM budget_reservations WHERE job_id LIKE 'job_%'")
    assert total["s"] == spent

"""Group commit of finished jobs: one Postgres transaction for everything that finished meanwhile.

Every finished job must write its outcome, receipt and audit event durably, and a tenant's
audit chain is appended under a lock held until the commit. One transaction per job makes
the commit's WAL flush the per-tenant ceiling. The finisher sends whatever has queued up
while the previous transaction ran as one transaction: a lone job goes at once (no added
wait when it is quiet), a busy worker pays one round trip and one flush for many jobs. The
guarantees are those of `finish_dispatch`, applied item by item in the same transaction. If
a group fails as a whole, its items are retried one by one, so one bad item cannot sink the
others.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from shared.db.jobs import finish_dispatch, finish_dispatch_many
from shared.db.types import Pool
from shared.jobs import FinishedJob
from shared.logging import get_logger
from shared.receipts.types import Receipt
from shared.spend.leases import LeaseHold

log = get_logger(__name__)

MAX_GROUP = 100


@dataclass
class _Item:
    payload: dict[str, Any]
    done: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommit:
    def __init__(self, db: Pool, *, max_group: int = MAX_GROUP) -> None:
        self._db = db
        self._max = max_group
        self._queue: list[_Item] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def finish(self, *, job: FinishedJob, receipt: Receipt, event_type: str, prefix: str,
                     suffix: str, lease: LeaseHold | None = None) -> bool:
        """Write one finished job; True when this call finished it (False: it had been already, or
        a later attempt holds its lease). `lease` is what the call took from a budget lease:
        `finish_dispatch` reads it beside the job's columns and settles it."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="group-commit")
        row = job.row()
        if lease is not None:
            row["budget_lease"] = lease.row()
        item = _Item({"job": row, "receipt": receipt.row(), "event_type": event_type, "prefix": prefix,
                      "suffix": suffix})
        self._queue.append(item)
        self._wake.set()
        return await item.done

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                group, self._queue = self._queue[: self._max], self._queue[self._max:]
                await self._flush(group)

    async def _flush(self, group: list[_Item]) -> None:
        try:
            async with self._db.acquire() as conn:
                results = await finish_dispatch_many(conn, [i.payload for i in group])
        except Exception as e:  # the group's own failure: each item is retried alone below
            if len(group) == 1:
                _fail(group[0], e)
                return
            log.warning("finish_group_failed", size=len(group), error=type(e).__name__)
            for item in group:
                await self._flush_one(item)
            return
        for item, first in zip(group, results, strict=True):
            if not item.done.done():
                item.done.set_result(bool(first))

    async def _flush_one(self, item: _Item) -> None:
        try:
            async with self._db.acquire() as conn:
                first = await finish_dispatch(conn, **item.payload)
        except Exception as e:  # handed to the job that owns the item
            _fail(item, e)
            return
        if not item.done.done():
            item.done.set_result(first)


def _fail(item: _Item, error: BaseException) -> None:
    if not item.done.done():
        item.done.set_exception(error)

"""The in-process catalog snapshot, reloaded whenever Postgres says the catalog changed.

Readers take `cache.current` (an immutable Catalog) with no I/O. A change to the
providers or models tables, made by anyone, fires a NOTIFY (see migration 0001) and
every process reloads; reloads that pile up are coalesced into one.
"""

from __future__ import annotations

import asyncio

from shared.catalog.types import Catalog
from shared.db.catalog import load_catalog
from shared.db.types import Pool
from shared.logging import get_logger

log = get_logger(__name__)


class CatalogCache:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._snapshot = Catalog()
        self._version = 0
        self._lock = asyncio.Lock()
        self._stale = False

    @property
    def current(self) -> Catalog:
        return self._snapshot

    async def refresh(self) -> Catalog:
        """Reload now; if a reload is already running, make sure another one follows it."""
        if self._lock.locked():
            self._stale = True
            async with self._lock:
                return self._snapshot
        async with self._lock:
            while True:
                self._stale = False
                self._version += 1
                async with self._pool.acquire() as conn:
                    self._snapshot = await load_catalog(conn, version=self._version)
                if not self._stale:
                    break
        log.debug("catalog_reloaded", version=self._version, models=len(self._snapshot.models))
        return self._snapshot

    async def on_notice(self, _channel: str) -> None:
        await self.refresh()

"""Who a key belongs to and what their policy is, cached in process.

Entries live for a short TTL and the whole cache is dropped when Postgres reports a
change to tenants or keys (NOTIFY `ainfera_tenants`), so a revoked key stops working
at once on every process that heard the notice, and within the TTL on any that did not.
Unknown keys are cached too (briefly), so a flood of bad keys does not reach Postgres.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from shared.auth.keys import hash_key
from shared.db.tenants import KeyOwner, TenantRow, get_tenant, owner_of_key_hash

_MAX_ENTRIES = 100_000


class TenantDirectory:
    def __init__(self, pool: Any, *, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._pool = pool
        self._ttl = ttl_s
        self._clock = clock
        self._keys: dict[bytes, tuple[float, KeyOwner | None]] = {}
        self._tenants: dict[UUID, tuple[float, TenantRow | None]] = {}

    async def owner_of(self, api_key: str) -> KeyOwner | None:
        digest = hash_key(api_key)
        now = self._clock()
        hit = self._keys.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self._pool.acquire() as conn:
            owner = await owner_of_key_hash(conn, digest)
        self._remember(self._keys, digest, owner, now)
        return owner

    async def tenant(self, tenant_id: UUID) -> TenantRow | None:
        now = self._clock()
        hit = self._tenants.get(tenant_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self._pool.acquire() as conn:
            row = await get_tenant(conn, tenant_id)
        self._remember(self._tenants, tenant_id, row, now)
        return row

    def _remember(self, table: dict[Any, Any], key: Any, value: Any, now: float) -> None:
        if len(table) >= _MAX_ENTRIES:
            table.clear()
        table[key] = (now + self._ttl, value)

    def clear(self) -> None:
        self._keys.clear()
        self._tenants.clear()

    async def on_notice(self, _channel: str) -> None:
        self.clear()

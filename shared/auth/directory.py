"""Who a key belongs to and what their policy is, cached in process.

Known keys, unknown keys and tenants are three caches, each with a size bound and a short
TTL. Unknown keys (well-formed tokens with no live key in Postgres) have their own cache, so a
flood of bad tokens can push out only other bad tokens, never a valid key; a token that is not
shaped like our keys is refused without any lookup. Every cache is dropped when Postgres
reports a change to tenants or keys (NOTIFY `ainfera_tenants`, on insert, update and delete),
so a revoked key stops working, and a key created after its token was refused starts working,
at once on every process that heard the notice, and within the TTL on any that did not.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar
from uuid import UUID

from shared.auth.keys import hash_key, looks_like_api_key
from shared.db.tenants import KeyOwner, TenantRow, get_tenant, owner_of_key_hash
from shared.db.types import Pool

K = TypeVar("K")
V = TypeVar("V")

MAX_KNOWN_KEYS = 100_000
MAX_UNKNOWN_KEYS = 10_000  # about 1.5 MB of digests
MAX_TENANTS = 100_000


class _Expiring(Generic[K, V]):
    """Entries that expire after their TTL; beyond `size` entries the oldest written go first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K, now: float) -> tuple[V] | None:
        """`(value,)` while the entry is fresh, else None."""
        hit = self._entries.get(key)
        if hit is None or hit[0] <= now:
            return None
        return (hit[1],)

    def put(self, key: K, value: V, expires_at: float) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (expires_at, value)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class TenantDirectory:
    def __init__(
        self,
        pool: Pool,
        *,
        ttl_s: float,
        max_known: int = MAX_KNOWN_KEYS,
        max_unknown: int = MAX_UNKNOWN_KEYS,
        max_tenants: int = MAX_TENANTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._ttl = ttl_s
        self._clock = clock
        self._known: _Expiring[bytes, KeyOwner] = _Expiring(max_known)
        self._unknown: _Expiring[bytes, None] = _Expiring(max_unknown)
        self._tenants: _Expiring[UUID, TenantRow | None] = _Expiring(max_tenants)
        # Bumped by every change notice: an answer read before the notice is not remembered after it.
        self._generation = 0

    async def owner_of(self, api_key: str) -> KeyOwner | None:
        if not looks_like_api_key(api_key):
            return None
        digest = hash_key(api_key)
        now = self._clock()
        known = self._known.get(digest, now)
        if known is not None:
            return known[0]
        if self._unknown.get(digest, now) is not None:
            return None
        generation = self._generation
        async with self._pool.acquire() as conn:
            owner = await owner_of_key_hash(conn, digest)
        if generation == self._generation:
            if owner is None:
                self._unknown.put(digest, None, now + self._ttl)
            else:
                self._known.put(digest, owner, now + self._ttl)
        return owner

    async def tenant(self, tenant_id: UUID) -> TenantRow | None:
        now = self._clock()
        hit = self._tenants.get(tenant_id, now)
        if hit is not None:
            return hit[0]
        generation = self._generation
        async with self._pool.acquire() as conn:
            row = await get_tenant(conn, tenant_id)
        if generation == self._generation:
            self._tenants.put(tenant_id, row, now + self._ttl)
        return row

    def clear(self) -> None:
        self._generation += 1
        self._known.clear()
        self._unknown.clear()
        self._tenants.clear()

    async def on_notice(self, _channel: str) -> None:
        self.clear()

"""Who a key belongs to and what their policy is, cached in process.

Known keys, unknown keys and tenants are three caches, each with a size bound and a short
TTL. Unknown keys (well-formed tokens with no live key in Postgres) have their own cache, so a
flood of bad tokens can push out only other bad tokens, never a valid key; a token that is not
shaped like our keys is refused without any lookup. Every cache is dropped when Postgres
reports a change to tenants or keys (NOTIFY `ainfera_tenants`, on insert, update and delete),
so a revoked key stops working, and a key created after its token was refused starts working,
at once on every process that heard the notice. A process can miss a notice (its listening
connection half-open, or down until it reconnects), so every change made through the admin API or
the command line also bumps a version on Redis (`bump_key_version`), which each process reads at
most once a second while it serves keys from cache: a revocation holds everywhere within about a
second. A change made some other way (psql) relies on the notice, else the TTL.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.auth.keys import hash_key, looks_like_api_key
from shared.db.tenants import KeyOwner, TenantRow, get_tenant, owner_of_key_hash
from shared.db.types import Pool
from shared.logging import get_logger
from shared.queue.names import KEYS_VERSION_KEY

log = get_logger(__name__)

K = TypeVar("K")
V = TypeVar("V")

MAX_KNOWN_KEYS = 100_000
MAX_UNKNOWN_KEYS = 10_000  # about 1.5 MB of digests
MAX_TENANTS = 100_000
VERSION_CHECK_S = 1.0


async def bump_key_version(redis: Redis) -> None:
    """Tell every process that API keys changed (on top of Postgres's NOTIFY)."""
    try:
        await redis.incr(KEYS_VERSION_KEY)
    except RedisError as e:
        # The change is committed; the notice and the TTL still carry it.
        log.warning("key_version_bump_failed", error=type(e).__name__)


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
        redis: Redis | None = None,
        version_check_s: float = VERSION_CHECK_S,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._version_check_s = version_check_s
        self._version_checked_at = float("-inf")
        self._version: bytes | None = None
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
        await self._check_version(now)
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

    async def _check_version(self, now: float) -> None:
        """Drop every cache when the key version on Redis moved; asks Redis at most once per interval."""
        if self._redis is None or now - self._version_checked_at < self._version_check_s:
            return
        self._version_checked_at = now
        try:
            version = await self._redis.get(KEYS_VERSION_KEY)
        except RedisError as e:
            log.warning("key_version_check_failed", error=type(e).__name__)
            return
        if version != self._version:
            self._version = version
            self.clear()

    def clear(self) -> None:
        self._generation += 1
        self._known.clear()
        self._unknown.clear()
        self._tenants.clear()

    async def on_notice(self, _channel: str) -> None:
        self.clear()

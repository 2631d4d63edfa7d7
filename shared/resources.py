"""One frozen container of the process's shared resources, opened and closed in one place.

The gateway puts it in the app's lifespan state, the worker in arq's ctx; use-cases
take it as their first argument. Nothing else holds pools or clients.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from redis.asyncio import Redis

from shared.auth.directory import TenantDirectory
from shared.catalog.cache import CatalogCache
from shared.db.group_commit import GroupCommit
from shared.db.notifications import CATALOG_CHANNEL, TENANTS_CHANNEL, NotificationListener
from shared.db.pool import open_pool
from shared.db.types import Pool
from shared.logging import get_logger
from shared.metrics import Metrics
from shared.providers.call import withheld_credentials
from shared.providers.transport import create_http_client
from shared.queue.pool import open_redis
from shared.routing.learned import LearnedStats, StatsWindow
from shared.settings import Settings
from shared.signing import Signer, load_signer
from shared.spend.leases import BudgetLeases
from shared.tracing import TRACING_OFF, Tracing

log = get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Resources:
    settings: Settings
    db: Pool  # asyncpg.Pool
    redis: Redis
    http: httpx.AsyncClient
    catalog: CatalogCache
    tenants: TenantDirectory
    stats: LearnedStats
    signer: Signer
    group_commit: GroupCommit
    budget_leases: BudgetLeases  # used by workers only
    metrics: Metrics  # this process's Prometheus metrics
    clock: Callable[[], datetime] = utc_now
    tracing: Tracing = TRACING_OFF


@contextlib.asynccontextmanager
async def open_resources(
    settings: Settings, *, db_pool_size: int = 20, clock: Callable[[], datetime] = utc_now,
    metrics: Metrics | None = None,
) -> AsyncIterator[Resources]:
    """Open pools and clients, load the catalog, start listening for changes; close all on exit."""
    withheld = withheld_credentials(settings)
    if withheld:
        # Loud, once per process: whoever set both may believe real providers are answering.
        log.warning("upstream_override_withholds_provider_keys", upstream_override=settings.upstream_override,
                    variables=list(withheld), sent_instead="placeholder credential",
                    detail="every upstream call goes to the override; no provider key is sent there")
    signer = load_signer(settings.signing_key.get_secret_value() if settings.signing_key else None,
                         settings.signing_key_file, settings.retired_key_files)
    async with contextlib.AsyncExitStack() as stack:
        db = await open_pool(settings, min_size=2, max_size=db_pool_size)
        stack.push_async_callback(db.close)
        redis = open_redis(settings.redis_url, cluster=settings.redis_cluster)
        stack.push_async_callback(redis.aclose)
        http = create_http_client(settings)
        stack.push_async_callback(http.aclose)
        catalog = CatalogCache(db)
        tenants = TenantDirectory(db, ttl_s=settings.api_key_cache_ttl_s, redis=redis)

        async def on_notice(channel: str) -> None:
            if channel == CATALOG_CHANNEL:
                await catalog.on_notice(channel)
            else:
                await tenants.on_notice(channel)

        # Listen first, then load: a change made in between is then never missed.
        listener = NotificationListener(settings.session_database_url, (CATALOG_CHANNEL, TENANTS_CHANNEL), on_notice)
        await listener.start()
        stack.push_async_callback(listener.stop)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(listener.connected.wait(), timeout=10)
        await catalog.refresh()
        stats = LearnedStats(
            redis,
            db,
            StatsWindow(size=settings.stats_window, tenant_share=settings.stats_tenant_share,
                        min_samples=settings.stats_min_samples),
            refresh_s=settings.stats_refresh_s,
            slugs=lambda: list(catalog.current.models),
        )
        await stats.start()
        stack.push_async_callback(stats.stop)
        group_commit = GroupCommit(db)
        stack.push_async_callback(group_commit.close)
        budget_leases = BudgetLeases(db, lease_s=settings.budget_lease_s, clock=clock)
        stack.push_async_callback(budget_leases.close)
        yield Resources(
            settings=settings, db=db, redis=redis, http=http, catalog=catalog, tenants=tenants, stats=stats,
            signer=signer, group_commit=group_commit, budget_leases=budget_leases,
            metrics=metrics or Metrics(), clock=clock, tracing=Tracing.from_settings(settings),
        )

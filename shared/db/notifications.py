"""Postgres LISTEN/NOTIFY on a dedicated connection that survives database restarts.

Triggers notify `ainfera_catalog` and `ainfera_tenants` on every change, whoever makes
it (API, CLI, psql). Caches subscribe here; after a reconnect they are told to reload,
because notices sent while the connection was down are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import asyncpg

from shared.logging import get_logger

log = get_logger(__name__)

# The channels the database's triggers notify on (migrations 0001 and 0009): every NOTIFY name.
CATALOG_CHANNEL = "ainfera_catalog"  # providers, models
TENANTS_CHANNEL = "ainfera_tenants"  # tenants, API keys

Handler = Callable[[str], Coroutine[Any, Any, None]]


class NotificationListener:
    """Calls `handler(channel)` for each notice, and for every channel after a (re)connect."""

    def __init__(self, dsn: str, channels: Sequence[str], handler: Handler, *, retry_s: float = 1.0) -> None:
        self._dsn = dsn
        self._channels = tuple(channels)
        self._handler = handler
        self._retry_s = retry_s
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pg-listener")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for t in list(self._pending):
            t.cancel()

    def _dispatch(self, channel: str) -> None:
        t: asyncio.Task[None] = asyncio.get_running_loop().create_task(self._handler(channel))
        self._pending.add(t)
        t.add_done_callback(self._pending.discard)

    async def _run(self) -> None:
        first = True
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(self._dsn)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                for ch in self._channels:
                    await conn.add_listener(ch, lambda _c, _pid, channel, _payload: self._dispatch(channel))
                self.connected.set()
                if not first:
                    log.info("pg_listener_reconnected", channels=list(self._channels))
                    for ch in self._channels:
                        self._dispatch(ch)
                first = False
                await lost.wait()
                log.warning("pg_listener_connection_lost")
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.warning("pg_listener_connect_failed", error=type(e).__name__)
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=1)
            first = False
            await asyncio.sleep(self._retry_s)

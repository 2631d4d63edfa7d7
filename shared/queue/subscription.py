"""One pub/sub channel on one dedicated, named connection that resubscribes after a connection loss.

Workers use it for wake-ups, gateways for completion notices; what a message means is the owner's business.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import structlog
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)


class Subscription:
    """Delivers each message on `channel` to `on_message`, for as long as it runs.

    It owns its connection (a one-connection pool built from the given
    client's settings, named `client_name` so that operators and tests can find
    it in CLIENT LIST). redis-py's own silent resubscription is turned off: on
    any connection error this class logs, backs off, opens a fresh connection,
    resubscribes and calls `on_subscribed(False)`, because messages published
    in between are gone and only the owner knows what to re-check. A PING after
    `keepalive_s` of silence finds half-open connections.

    `sharded` subscribes with SSUBSCRIBE (Redis 7 sharded pub/sub, which redis-py 5.3's asyncio
    PubSub has no method for, so the command is sent as is): on a cluster the connection must
    then reach the node holding the channel's slot (a `SlotConnection`), and when that slot moves
    (a failover) Redis ends the subscription with SUNSUBSCRIBE, taken here as a lost connection.
    """

    def __init__(
        self,
        redis: Redis,
        channel: str,
        *,
        on_message: Callable[[bytes], None],
        on_subscribed: Callable[[bool], None] | None = None,
        client_name: str | None = None,
        keepalive_s: float = 30.0,
        backoff_s: tuple[float, float] = (0.05, 2.0),
        sharded: bool = False,
    ) -> None:
        self.channel = channel
        self._subscribe_command, self._confirmation, self._message, self._ended = (
            ("SSUBSCRIBE", "ssubscribe", "smessage", "sunsubscribe") if sharded
            else ("SUBSCRIBE", "subscribe", "message", "unsubscribe"))
        self.client_name = client_name or channel
        self._on_message = on_message
        self._on_subscribed = on_subscribed
        self._keepalive_s = keepalive_s
        self._backoff_min, self._backoff_max = backoff_s
        source = redis.connection_pool
        kwargs: dict[str, Any] = {
            **source.connection_kwargs,
            "client_name": self.client_name,
            "decode_responses": False,
            # Errors must reach _run instead of being retried and resubscribed behind our back.
            "retry": None,
            "retry_on_error": [],
            "retry_on_timeout": False,
        }
        self._pool = ConnectionPool(connection_class=source.connection_class, **kwargs)
        self._task: asyncio.Task[None] | None = None
        self._reconnects = 0

    @property
    def reconnects(self) -> int:
        """How many times the subscription was lost and made again."""
        return self._reconnects

    async def start(self) -> None:
        """Subscribe; returns once Redis confirmed the subscription, raises if the first attempt fails."""
        if self._task is not None:
            raise RuntimeError(f"subscription to {self.channel} already started")
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(ready), name=f"subscription:{self.channel}")
        self._task.add_done_callback(self._log_unexpected_end)
        try:
            await ready
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        await self._pool.disconnect()

    async def _run(self, ready: asyncio.Future[None]) -> None:
        delay = self._backoff_min
        while True:
            pubsub = PubSub(self._pool)
            try:
                await self._subscribe(pubsub)
                first = not ready.done()
                if first:
                    ready.set_result(None)
                else:
                    self._reconnects += 1
                    log.info("queue_subscription_restored", channel=self.channel, reconnects=self._reconnects)
                if self._on_subscribed is not None:
                    self._on_subscribed(first)
                delay = self._backoff_min
                await self._read(pubsub)
            except (RedisError, OSError, TimeoutError) as exc:
                if not ready.done():
                    ready.set_exception(exc)
                    return
                log.warning("queue_subscription_lost", channel=self.channel, error=repr(exc), retry_in_s=delay)
            finally:
                await cast(Any, pubsub).aclose()  # untyped in redis-py 5.3
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff_max)

    async def _subscribe(self, pubsub: PubSub) -> None:
        await pubsub.execute_command(self._subscribe_command, self.channel)
        while True:
            message = await pubsub.get_message(timeout=self._keepalive_s)
            if message is None:
                raise RedisConnectionError(f"no confirmation of {self._subscribe_command} {self.channel}")
            if message["type"] == self._confirmation:
                return

    async def _read(self, pubsub: PubSub) -> None:
        awaiting_pong = False
        while True:
            message = await pubsub.get_message(timeout=self._keepalive_s)
            if message is None:
                if awaiting_pong:
                    raise RedisConnectionError("no reply to keepalive PING")
                await pubsub.ping()
                awaiting_pong = True
                continue
            awaiting_pong = False
            if message["type"] == self._message:
                self._on_message(message["data"])
            elif message["type"] == self._ended:
                raise RedisConnectionError(f"{self.channel} was unsubscribed by the server (its slot moved)")

    def _log_unexpected_end(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("queue_subscription_stopped", channel=self.channel, error=repr(exc))

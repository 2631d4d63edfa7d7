"""The queue's Redis clients: one Redis, or a Redis Cluster where each queue talks to the master that
holds its slot.

On one Redis every queue uses the process's client. On a cluster the process's client is a
`ClusterRedis` (redis-py's RedisCluster, which routes each key-addressed command and script) for
everything above the queue, and each queue gets a plain client whose connections go to whichever
master holds the queue's slot (`slot_client`). A plain client because arq runs MULTI/EXEC
transactions and pipelines that redis-py 5.3's cluster client cannot (arq 0.28 pins redis-py
below 6), and because every key a queue touches shares its hash tag (`shared.queue.names`), so
one node serves them all.

Failover: a connection to a master that lost the slot gets MOVED, or a refused connection when
the master died. The pinned connection then asks the cluster afresh which master holds the slot
and the command is retried there, with backoff, for up to `FAILOVER_WAIT_S`
(docs/scaling.md, "A master fails over mid-job").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import ClusterParser, RedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.crc import key_slot
from redis.exceptions import ClusterDownError, ConnectionError, MovedError, ResponseError, TryAgainError

from shared.queue.names import slot_tag
from shared.queue.serializer import deserialize, serialize

# How long a pinned queue client keeps retrying while a slot has no reachable master: longer than
# a cluster's failover with cluster-node-timeout at its default of 15 s.
FAILOVER_WAIT_S = 30.0
_BACKOFF = ExponentialBackoff(cap=1.0, base=0.05)
_RETRIES = 40  # 0.05, 0.1, ... then 1 s a try: a little over FAILOVER_WAIT_S in all
_FOLLOWED = (MovedError, ClusterDownError, TryAgainError, ConnectionError)
# What a pinned connection takes over from the cluster client's settings (the rest, such as its
# parser and response callbacks, is the cluster client's own). TLS to a cluster is not offered yet.
_PLAIN_CONNECTION_KWARGS = frozenset({
    "username", "password", "credential_provider", "socket_timeout", "socket_connect_timeout",
    "socket_keepalive", "socket_keepalive_options", "encoding", "encoding_errors", "decode_responses",
    "health_check_interval", "client_name", "lib_name", "lib_version", "protocol",
})


def database_of(redis: Redis) -> int:
    """The database number a client talks to (0 when its pool does not say; a cluster has only 0)."""
    return int(redis.connection_pool.connection_kwargs.get("db", 0))


class SlotOwner:
    """Which master holds one slot, from the cluster client's view, refreshed after a MOVED or a
    refused connection (one refresh at a time, however many connections noticed)."""

    def __init__(self, cluster: RedisCluster, name: str) -> None:
        self._cluster, self._name = cluster, name
        self.slot = key_slot(name.encode())
        self._stale = True  # the cluster client may not have read the slots yet
        self._refreshing = asyncio.Lock()

    def stale(self) -> None:
        self._stale = True

    async def address(self) -> tuple[str, int]:
        if self._stale:
            async with self._refreshing:
                if self._stale:
                    await self._cluster.nodes_manager.initialize()
                    self._stale = False
        node = self._cluster.get_node_from_key(self._name)
        if node is None:
            raise ClusterDownError(f"no master holds the slot of {self._name}")  # type: ignore[no-untyped-call]
        return node.host, int(node.port)


class SlotConnection(Connection):
    """A connection to the master that holds a slot: it looks the master up each time it connects,
    and marks the look-up stale when told the slot moved or when the master cannot be reached."""

    def __init__(self, *, slot_owner: SlotOwner, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.slot_owner = slot_owner

    async def _connect(self) -> None:
        try:
            self.host, self.port = await self.slot_owner.address()
            await super()._connect()  # type: ignore[no-untyped-call]
        except OSError as e:
            self.slot_owner.stale()
            # As redis' ConnectionError, so that `connect` retries it (with backoff) like the rest.
            raise ConnectionError(self._error_message(e)) from e

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except MovedError as e:
            if e.slot_id != self.slot_owner.slot:
                # A key of another slot sent down this connection: a bug to show at once, not a
                # failover to wait out.
                raise ResponseError(f"a key of slot {e.slot_id} was sent to the client of slot "
                                    f"{self.slot_owner.slot}") from e
            self.slot_owner.stale()
            raise
        except (ClusterDownError, ConnectionError):
            self.slot_owner.stale()
            raise


class QueueRedis(ArqRedis):
    """arq's client with the queue layer's JSON serializer, whose `enqueue_job` (what arq's cron
    calls) goes through our enqueue: the job's arq id then carries the queue's hash tag."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("job_serializer", serialize)
        kwargs.setdefault("job_deserializer", deserialize)
        super().__init__(*args, **kwargs)

    async def enqueue_job(  # type: ignore[override]
        self, function: str, *args: Any, _job_id: str | None = None, _queue_name: str | None = None,
        _defer_until: datetime | None = None, **kwargs: Any,
    ) -> bool:
        """What arq's `run_cron` calls (a unique cron job: an id, maybe deferred to its run, no
        arguments); anything else is refused rather than half-supported."""
        from shared.queue.enqueue import enqueue  # enqueue imports this module

        if args or kwargs or _job_id is None:
            raise ValueError("QueueRedis.enqueue_job enqueues unique cron jobs only (a job id, no arguments)")
        defer_s = 0.0 if _defer_until is None else max(0.0, _defer_until.timestamp() - time.time())
        return await enqueue(self, _queue_name or self.default_queue_name, function, job_id=_job_id, kwargs={},
                             defer_s=defer_s)


class ClusterRedis(RedisCluster):
    """redis-py's RedisCluster, plus a plain client per queue (or channel) pinned to its slot."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slot_clients: dict[str, QueueRedis] = {}  # by hash tag: one per slot in use

    def slot_client(self, name: str) -> QueueRedis:
        """The shared pinned client for the slot of `name` (closed with this client). Names with
        the same hash tag share it, so the clients are as many as the tags in use."""
        tag = slot_tag(name)
        client = self._slot_clients.get(tag)
        if client is None:
            client = self._slot_clients[tag] = self.new_slot_client(name)
        return client

    def new_slot_client(self, name: str) -> QueueRedis:
        """A pinned client of one's own for the slot of `name` (a worker closes its pool when it stops)."""
        kwargs: Mapping[str, Any] = self.get_connection_kwargs()
        pool = ConnectionPool(
            connection_class=SlotConnection, slot_owner=SlotOwner(self, name),
            **{k: v for k, v in kwargs.items() if k in _PLAIN_CONNECTION_KWARGS},
            retry=Retry(_BACKOFF, _RETRIES), retry_on_error=list(_FOLLOWED),
            parser_class=ClusterParser,  # the parser that turns MOVED, TRYAGAIN... into their exceptions
        )
        return QueueRedis(pool_or_conn=pool, default_queue_name=name)

    async def aclose(self) -> None:
        clients, self._slot_clients = self._slot_clients, {}
        for client in clients.values():
            await client.aclose()
        await super().aclose()


def queue_redis(redis: Redis, name: str) -> Redis:
    """The client that reaches the slot of `name` (a queue or a queue-scoped channel)."""
    client: object = redis  # typed Redis throughout: a ClusterRedis offers the same commands
    if isinstance(client, ClusterRedis):
        return client.slot_client(name)
    if isinstance(client, RedisCluster):
        raise TypeError("a queue on a Redis Cluster needs a ClusterRedis client (open_redis)")
    return redis


def open_redis(url: str, *, cluster: bool = False, **kwargs: Any) -> Redis:
    """The process's Redis client: a `ClusterRedis` when `cluster` (the url names any node).

    Typed `Redis` either way: the layers above the queue use the commands and scripts both offer,
    with keys that share a hash tag where they are used together.
    """
    if cluster:
        return ClusterRedis.from_url(url, **kwargs)  # type: ignore[return-value]
    client: Redis = Redis.from_url(url, **kwargs)
    return client


def new_queue_client(url: str, queue_name: str, *, shared: Redis | None = None) -> QueueRedis:
    """A worker's own client for `queue_name`: pinned to the queue's slot when `shared` (the
    process's client) is a ClusterRedis, else a plain connection to `url`."""
    client: object = shared
    if isinstance(client, ClusterRedis):
        return client.new_slot_client(queue_name)
    return QueueRedis(pool_or_conn=ConnectionPool.from_url(url), default_queue_name=queue_name)

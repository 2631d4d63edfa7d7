"""CompletionWaiters: a waiter gets its job's notice without polling, and only its own."""

from __future__ import annotations

import asyncio

import pytest
from arq.connections import ArqRedis

from shared.queue.enqueue import enqueue
from shared.queue.names import QueueName
from shared.queue.notify import CompletionWaiters, encode_notice, notify_done
from shared.queue.pool import queue_redis
from tests.integration.queue_jobs import reply, running, wait_until, waking_worker

pytestmark = pytest.mark.integration

QUEUE = QueueName.INTERACTIVE


async def test_a_registered_waiter_gets_the_payload_the_worker_publishes(pool: ArqRedis) -> None:
    worker = waking_worker([reply])
    async with CompletionWaiters(pool) as waiters, running(worker):
        future = waiters.register("job-a")
        await enqueue(pool, QUEUE, "reply", job_id="job-a", kwargs={"reply_to": waiters.channel, "text": "hi"})
        assert await waiters.wait(future, max_wait_s=5) == b"hi"
        assert waiters.pending == 0


async def test_each_instance_gets_only_notices_sent_to_its_own_channel(pool: ArqRedis) -> None:
    async with CompletionWaiters(pool) as first, CompletionWaiters(pool) as second:
        assert first.channel != second.channel
        mine = first.register("shared-id")
        theirs = second.register("shared-id")
        await notify_done(pool, first.channel, "shared-id", b"for first")
        assert await first.wait(mine, max_wait_s=5) == b"for first"
        assert await second.wait(theirs, max_wait_s=0.2) is None
        assert not theirs.done()
        second.discard("shared-id", theirs)
        assert second.pending == 0


async def test_notices_for_unknown_jobs_and_garbage_are_ignored(pool: ArqRedis) -> None:
    async with CompletionWaiters(pool) as waiters:
        known = waiters.register("known")
        node = queue_redis(pool, waiters.channel)
        await node.spublish(waiters.channel, encode_notice("nobody-waits", b"x"))
        await node.spublish(waiters.channel, b"not a notice")
        await notify_done(pool, waiters.channel, "known", b"yes")
        assert await waiters.wait(known, max_wait_s=5) == b"yes"
        # A second notice for the same job (it ran twice) finds nobody and is dropped.
        await notify_done(pool, waiters.channel, "known", b"again")
        assert waiters.pending == 0


async def test_a_waiter_that_gives_up_is_forgotten(pool: ArqRedis) -> None:
    async with CompletionWaiters(pool) as waiters:
        future = waiters.register("abandoned")
        assert await waiters.wait(future, max_wait_s=0.05) is None
        waiters.discard("abandoned")
        assert waiters.pending == 0
        await notify_done(pool, waiters.channel, "abandoned", b"late")


async def test_after_its_connection_is_killed_it_resubscribes_and_says_so(pool: ArqRedis) -> None:
    async with CompletionWaiters(pool) as waiters:
        pending = waiters.register("in-flight")
        reconnected = waiters.next_reconnect()
        waiting = asyncio.create_task(waiters.wait(pending, max_wait_s=10))

        node = queue_redis(pool, waiters.channel)  # on a cluster: the node the subscription is on
        clients = [c for c in await node.client_list() if c["name"] == waiters.channel]
        assert len(clients) == 1
        await node.client_kill_filter(_id=clients[0]["id"])

        async with asyncio.timeout(5):
            await reconnected.wait()
        assert waiters.reconnects == 1
        # The pending waiter is told to re-check (its notice may have been lost), and keeps its future.
        assert await waiting is None
        assert not pending.done()

        await wait_until(lambda: _has_subscriber(pool, waiters.channel))
        await notify_done(pool, waiters.channel, "in-flight", b"after reconnect")
        assert await waiters.wait(pending, max_wait_s=5) == b"after reconnect"


async def _has_subscriber(pool: ArqRedis, channel: str) -> bool:
    reply = await queue_redis(pool, channel).execute_command("PUBSUB", "SHARDNUMSUB", channel)
    return bool(dict(zip(reply[::2], reply[1::2], strict=True)).get(channel.encode()))


async def test_stopping_cancels_pending_waiters(pool: ArqRedis) -> None:
    waiters = CompletionWaiters(pool)
    await waiters.start()
    future = waiters.register("never")
    await waiters.stop()
    assert future.cancelled()
    assert not await _has_subscriber(pool, waiters.channel)

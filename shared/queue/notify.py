"""Completion notices: workers publish "job X is done" to the waiting process's channel; waiters never poll.

The notice framing (encode_notice/decode_notice) is defined here and nowhere else.
"""

from __future__ import annotations

import asyncio
import uuid
from types import TracebackType
from typing import Any

import structlog
from redis.asyncio import Redis

from shared.queue.names import completion_channel
from shared.queue.pool import queue_redis
from shared.queue.subscription import Subscription

log = structlog.get_logger(__name__)

# A notice is the job id, this separator, then the opaque payload bytes (which may hold anything).
_SEPARATOR = b"\n"


def encode_notice(job_id: str, payload: bytes) -> bytes:
    if not job_id or "\n" in job_id:
        raise ValueError("a job id in a notice must be non-empty and hold no newline")
    return job_id.encode() + _SEPARATOR + payload


def decode_notice(message: bytes) -> tuple[str, bytes]:
    """(job id, payload); ValueError for a message that is not a notice."""
    job_id, separator, payload = message.partition(_SEPARATOR)
    if not separator or not job_id:
        raise ValueError("not a completion notice")
    return job_id.decode(), payload


async def notify_done(redis: Redis, reply_to: str, job_id: str, payload: bytes) -> None:
    """What a worker calls when a job is done: `reply_to` is the channel the caller put in the job.
    Fire and forget: with no subscriber the notice is dropped, by design (waiters re-check Postgres)."""
    await queue_redis(redis, reply_to).spublish(reply_to, encode_notice(job_id, payload))


class CompletionWaiters:
    """One per waiting process: one pub/sub connection on the process's own channel, many waiters.

    Register before enqueueing (so no notice can come too early), put
    `.channel` in the job kwargs as `reply_to`, then `wait`. Notices are
    best-effort: a notice published while the connection is down is lost. So
    after a reconnect (`reconnects` goes up, the event from `next_reconnect()`
    is set) every pending waiter should re-check the source of truth
    (Postgres); `wait` returns None in that case for exactly that reason.
    Notices for unknown or already-resolved job ids (a job that ran twice) are
    ignored.
    """

    def __init__(self, redis: Redis, *, instance: str | None = None) -> None:
        self.channel = completion_channel(instance or uuid.uuid4().hex)
        self._futures: dict[str, set[asyncio.Future[bytes]]] = {}
        self._streams: dict[str, asyncio.Queue[bytes]] = {}
        self._reconnected = asyncio.Event()
        # Sharded pub/sub: on a cluster the notices go to the node that holds this channel's slot,
        # which this subscription is pinned to, and no further.
        self._subscription = Subscription(
            queue_redis(redis, self.channel), self.channel, on_message=self._on_message,
            on_subscribed=self._on_subscribed, sharded=True,
        )

    @property
    def reconnects(self) -> int:
        """How many times the subscription was lost and made again (notices may have been lost each time)."""
        return self._subscription.reconnects

    @property
    def pending(self) -> int:
        """How many registered futures are still waiting."""
        return sum(len(futures) for futures in self._futures.values())

    async def start(self) -> None:
        await self._subscription.start()

    async def stop(self) -> None:
        """Unsubscribe and cancel every pending future."""
        await self._subscription.stop()
        futures, self._futures = self._futures, {}
        for waiting in futures.values():
            for future in waiting:
                future.cancel()

    async def __aenter__(self) -> CompletionWaiters:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def register(self, job_id: str) -> asyncio.Future[bytes]:
        """A future resolved with the payload of the first notice for `job_id` on our channel."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._futures.setdefault(job_id, set()).add(future)
        return future

    def discard(self, job_id: str, future: asyncio.Future[bytes] | None = None) -> None:
        """Forget one future of `job_id` (or all of them); call it when the caller stops waiting."""
        waiting = self._futures.get(job_id)
        if waiting is None:
            return
        if future is None:
            waiting.clear()
        else:
            waiting.discard(future)
        if not waiting:
            del self._futures[job_id]

    def open_stream(self, job_id: str) -> asyncio.Queue[bytes]:
        """Every notice for `job_id` from now on, in order (a streamed job sends many); register
        before enqueueing, and `close_stream` when done."""
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._streams[job_id] = queue
        return queue

    def close_stream(self, job_id: str) -> None:
        self._streams.pop(job_id, None)

    def next_reconnect(self) -> asyncio.Event:
        """An event set when the subscription is next re-established after a loss."""
        return self._reconnected

    async def wait(self, future: asyncio.Future[bytes], max_wait_s: float) -> bytes | None:
        """The payload, or None after `max_wait_s` or a reconnect: then re-check Postgres, maybe wait again.

        Unlike `asyncio.wait_for`, this never cancels `future`, so it can be called again.
        """
        reconnected = asyncio.ensure_future(self._reconnected.wait())
        either: set[asyncio.Future[Any]] = {future, reconnected}
        try:
            await asyncio.wait(either, timeout=max_wait_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            reconnected.cancel()
        return future.result() if future.done() else None

    def _on_message(self, message: bytes) -> None:
        try:
            job_id, payload = decode_notice(message)
        except ValueError:  # includes UnicodeDecodeError
            log.warning("completion_notice_malformed", channel=self.channel, size=len(message))
            return
        stream = self._streams.get(job_id)
        if stream is not None:
            stream.put_nowait(payload)
            return
        for future in self._futures.pop(job_id, ()):
            if not future.done():
                future.set_result(payload)

    def _on_subscribed(self, first: bool) -> None:
        if not first:
            reconnected, self._reconnected = self._reconnected, asyncio.Event()
            reconnected.set()

"""Relaying a streamed job from the worker to the waiting gateway, and telling the worker when the
caller has gone.

Mechanism (docs/decisions.md, "Streaming through the queue"): the messages of a stream are
completion notices on the waiting gateway's own pub/sub channel (`reply_to`), numbered from 0, so
one subscription per gateway process carries every stream it serves, with no polling and no
per-stream subscribe round trip. Each SPUBLISH runs in one small script with an EXISTS of the
job's cancel key, which is in the channel's slot (one command, one round trip; a pipeline costs
the worker more CPU per chunk): when the gateway's caller disconnects it sets that key, and when
the gateway itself is gone SPUBLISH reaches nobody; either way the worker learns it at its next
chunk and stops the upstream call. Pub/sub keeps nothing: a message lost in a reconnect shows as
a gap in the numbers, and the gateway then ends the stream with an error event rather than splice it.

A message is `<seq> <kind> <data>`:
- `h`: the stream's head, before its first chunk: `{"dropped_params": [...]}` for the response headers;
- `c`: a chunk's JSON, sent to the caller as one `data:` event;
- `e`: the job failed before its first chunk: `Outcome.to_message()`, answered as a plain error;
- `x`: the job failed after it: the error envelope, sent as OpenAI's in-stream error event;
- `d`: the end (the gateway sends `data: [DONE]`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson
from redis.asyncio import Redis

from shared.chat.chunks import chunk, closing_chunks, replay_chunks
from shared.chat.functions import as_legacy_functions
from shared.jobs import Outcome
from shared.providers.stream import StreamCancelled
from shared.queue.names import stream_cancel_key
from shared.queue.notify import encode_notice
from shared.queue.pool import queue_redis

CANCEL_TTL_S = 600  # longer than any job may run

# KEYS[1]: the job's cancel key, in the slot of the channel; ARGV: channel, message. 1 when nobody
# listens any more. Sharded pub/sub, as every completion notice: SPUBLISH counts the subscribers of
# the channel's shard, where the gateway's subscription is (a cluster's classic PUBLISH would count
# only those on the node the script runs on).
_PUBLISH = """
if redis.call('SPUBLISH', ARGV[1], ARGV[2]) == 0 then return 1 end
return redis.call('EXISTS', KEYS[1])
"""


class Kind(bytes, Enum):
    HEAD = b"h"
    CHUNK = b"c"
    FAILED_BEFORE_START = b"e"
    ERROR_EVENT = b"x"
    DONE = b"d"


@dataclass(frozen=True, slots=True)
class StreamMessage:
    seq: int
    kind: Kind
    data: bytes


def encode_message(seq: int, kind: Kind, data: bytes) -> bytes:
    return b"%d %s " % (seq, kind.value) + data


def decode_message(payload: bytes) -> StreamMessage:
    """ValueError for anything that is not a stream message."""
    seq, kind, data = payload.split(b" ", 2)
    return StreamMessage(int(seq), Kind(kind), data)


async def cancel_stream(redis: Redis, reply_to: str, job_id: str) -> None:
    """The gateway's caller left: the worker stops the upstream call at its next chunk.
    `reply_to`: the gateway's own channel, the one the job streams to."""
    await queue_redis(redis, reply_to).set(stream_cancel_key(reply_to, job_id), b"1", ex=CANCEL_TTL_S)


class StreamRelay:
    """The worker's end of one streamed job. Chunks go out as they come, except a chunk that
    finishes a choice: it is held until the job is committed, so the `ainfera` block (receipt,
    cost) can ride on the stream's last chunk."""

    def __init__(self, redis: Redis, reply_to: str, job_id: str, *, created: int, include_usage: bool,
                 legacy_functions: bool = False, reported: tuple[str, ...] = ()) -> None:
        self._redis, self._reply_to, self._job_id = redis, reply_to, job_id
        self._created, self._include_usage = created, include_usage
        self._legacy_functions = legacy_functions
        self._reported = reported  # what the request itself does not forward (unknown fields, legacy functions)
        self._seq = 0
        self._publish = queue_redis(redis, reply_to).register_script(_PUBLISH)
        self._cancel_key = stream_cancel_key(reply_to, job_id)
        self._held: list[dict[str, Any]] = []
        self.chunks_sent = 0

    async def chunk(self, model: str, choices: list[dict[str, Any]], *, dropped: tuple[str, ...] = ()) -> None:
        """Relay one upstream chunk's choices; `StreamCancelled` when nobody listens any more. The
        first is preceded by the stream's head, with every field the provider was not sent."""
        if self._seq == 0:
            await self._send(Kind.HEAD, orjson.dumps({"dropped_params": [*self._reported, *dropped]}))
        if self._legacy_functions:
            choices = as_legacy_functions(choices, key="delta")
        if any(c.get("finish_reason") is not None for c in choices):
            self._held.extend(choices)
            return
        extra: dict[str, Any] = {"usage": None} if self._include_usage else {}
        await self._send(Kind.CHUNK, orjson.dumps(chunk(self._job_id, self._created, model, choices, **extra)))
        self.chunks_sent += 1

    async def finish(self, outcome: Outcome) -> None:
        """The job is committed: close the stream with its outcome. Nobody listening is no error."""
        try:
            if outcome.http_status == 200:
                closing = (closing_chunks(outcome.body, self._held or None, created=self._created,
                                          include_usage=self._include_usage)
                           if self.chunks_sent else replay_chunks(outcome.body, include_usage=self._include_usage))
                for piece in closing:
                    await self._send(Kind.CHUNK, orjson.dumps(piece))
                await self._send(Kind.DONE, b"")
            elif self.chunks_sent == 0:
                await self._send(Kind.FAILED_BEFORE_START, outcome.to_message())
            else:
                await self._send(Kind.ERROR_EVENT, orjson.dumps(outcome.body))
        except StreamCancelled:
            return

    async def _send(self, kind: Kind, data: bytes) -> None:
        message = encode_notice(self._job_id, encode_message(self._seq, kind, data))
        gone = await self._publish(keys=[self._cancel_key], args=[self._reply_to, message])
        self._seq += 1
        if gone:
            raise StreamCancelled(self._job_id)

"""`stream: true` on `POST /v1/chat/completions`: the job goes through the queue like any other, and
the worker relays its chunks here (`shared/queue/stream_relay.py`); this module writes them to the
caller as server-sent events in OpenAI's format, ending with `data: [DONE]`.

Nothing is sent before the first chunk, so a job that fails before it (no provider would answer,
a budget, a bad parameter upstream) is an ordinary error response with its status. After it, a
failure is OpenAI's in-stream error event (`data: {"error": ...}`), which the `openai` SDK raises
as `APIError`. When the caller disconnects, the worker is told (a cancel key it checks with every
chunk) and stops the upstream call.

How the caller sees the events is a `StreamFormat`: OpenAI's here (`OpenAIEvents`), Anthropic's for
`POST /v1/messages`; the relay, its cleanup and the fallbacks to Postgres are the same for both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

import orjson
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.deps import GatewayState
from gateway.idempotency import NO_KEY, Binder
from gateway.responses import JSONResponse
from gateway.submit import enqueue_waited
from shared.chat.chunks import DONE, replay_chunks, sse
from shared.db.jobs import job_outcome
from shared.errors import GatewayTimeout
from shared.jobs import DispatchJob, Outcome
from shared.queue.stream_relay import Kind, StreamMessage, cancel_stream, decode_message


def stream_headers(job_id: str) -> dict[str, str]:
    # No proxy buffering (nginx honours X-Accel-Buffering), no caching, no transformation.
    return {"x-ainfera-job-id": job_id, "cache-control": "no-cache", "x-accel-buffering": "no"}


class StreamFormat(Protocol):
    """The events one API streams to its caller, made from the messages of the relay."""

    def chunk(self, data: bytes) -> bytes:
        """The events for one relayed OpenAI chunk (its JSON)."""
        ...

    def done(self) -> bytes:
        """The end of a stream that succeeded."""
        ...

    def error(self, data: bytes) -> bytes:
        """A failure after the first chunk (`data`: the job's error body, OpenAI's envelope)."""
        ...

    def interrupted(self, job_id: str) -> bytes:
        """The end of a stream whose relay lost a message or went silent."""
        ...

    def replay(self, body: dict[str, Any]) -> list[bytes]:
        """A finished job's stored (successful) answer as the whole stream."""
        ...

    def failed(self, outcome: Outcome, job_id: str) -> Response:
        """A job that failed before its first chunk: a plain error response."""
        ...


class OpenAIEvents:
    """OpenAI's `chat.completion.chunk` events, ending with `data: [DONE]`."""

    def __init__(self, *, include_usage: bool) -> None:
        self.include_usage = include_usage

    def chunk(self, data: bytes) -> bytes:
        return sse(data)

    def done(self) -> bytes:
        return DONE

    def error(self, data: bytes) -> bytes:
        return sse(data)

    def interrupted(self, job_id: str) -> bytes:
        return _interrupted(job_id)

    def replay(self, body: dict[str, Any]) -> list[bytes]:
        return [sse(piece) for piece in replay_chunks(body, include_usage=self.include_usage)] + [DONE]

    def failed(self, outcome: Outcome, job_id: str) -> Response:
        return JSONResponse(outcome.body, status_code=outcome.http_status, headers={"x-ainfera-job-id": job_id})


def replayed_stream(outcome: Outcome, job_id: str, *, include_usage: bool = False,
                    events: StreamFormat | None = None) -> Response:
    """A finished streamed job answered again (an Idempotency-Key replay, lost live chunks): its
    stored answer as a stream, or its error as a plain error response."""
    fmt = events or OpenAIEvents(include_usage=include_usage)
    if outcome.http_status != 200:
        return fmt.failed(outcome, job_id)
    pieces = fmt.replay(outcome.body)

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    return StreamingResponse(body(), media_type="text/event-stream", headers=stream_headers(job_id))


async def submit_streaming(st: GatewayState, job: DispatchJob, *, include_usage: bool = False,
                           binder: Binder = NO_KEY, events: StreamFormat | None = None) -> Response:
    """Queue a streamed job and answer with its stream once its first chunk (or its failure) came,
    in OpenAI's events unless `events` says otherwise."""
    fmt = events or OpenAIEvents(include_usage=include_usage)
    job_id = job.job_id
    messages = st.waiters.open_stream(job_id)
    handed_on = False
    try:
        started = time.perf_counter()
        await enqueue_waited(st, job, binder)
        first = await _next(messages, st.res.settings.sync_wait_timeout_s)
        dropped: list[str] = []
        if first is not None and first.seq == 0 and first.kind is Kind.HEAD:
            dropped = orjson.loads(first.data).get("dropped_params") or []
            first = await _next(messages, st.res.settings.stream_idle_timeout_s)
            if first is not None and first.seq != 1:
                first = None
        elif first is not None and first.seq != 0:
            first = None
        if first is None:
            return await _without_live_chunks(st, job_id, fmt)
        if first.kind is Kind.FAILED_BEFORE_START:
            return fmt.failed(Outcome.from_message(first.data), job_id)
        headers = stream_headers(job_id)
        if first.kind is Kind.CHUNK:
            st.res.metrics.stream_first_token.observe(time.perf_counter() - started)
            headers["x-ainfera-model"] = str(orjson.loads(first.data).get("model", ""))
        if dropped:
            headers["x-ainfera-dropped-params"] = ", ".join(dropped)
        handed_on = True
        return RelayedStream(st, job_id, first, messages, fmt, headers=headers)
    finally:
        if not handed_on:
            st.waiters.close_stream(job_id)


class RelayedStream(StreamingResponse):
    """The events of one stream. Cleanup runs however the response ends, even when the caller left
    before its first byte (Starlette then never starts the body): the stream's queue is dropped,
    and unless the worker ended the stream itself, it is told to stop (`cancel_stream`)."""

    def __init__(self, st: GatewayState, job_id: str, first: StreamMessage, messages: asyncio.Queue[bytes],
                 fmt: StreamFormat, *, headers: dict[str, str]) -> None:
        self._st, self._job_id, self._fmt = st, job_id, fmt
        self._ended_by_worker = False
        super().__init__(self._events(first, messages), media_type="text/event-stream", headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._st.waiters.close_stream(self._job_id)
            if not self._ended_by_worker:
                self._st.spawn(cancel_stream(self._st.res.redis, self._st.waiters.channel, self._job_id))

    async def _events(self, first: StreamMessage, messages: asyncio.Queue[bytes]) -> AsyncIterator[bytes]:
        expected, message = first.seq, first  # 0, or 1 after the stream's head
        while True:
            if message.seq != expected:
                yield self._fmt.interrupted(self._job_id)  # a message was lost: the worker is told to stop
                return
            expected += 1
            if message.kind is Kind.CHUNK:
                events = self._fmt.chunk(message.data)
                if events:  # a chunk may carry nothing the caller's format shows (Anthropic's usage chunk)
                    yield events
            else:
                # DONE, or an error after the first chunk (FAILED_BEFORE_START and HEAD cannot follow one).
                self._ended_by_worker = True
                yield self._fmt.done() if message.kind is Kind.DONE else self._fmt.error(message.data)
                return
            following = await _next(messages, self._st.res.settings.stream_idle_timeout_s)
            if following is None:
                yield self._fmt.interrupted(self._job_id)
                return
            message = following


async def _next(messages: asyncio.Queue[bytes], timeout_s: float) -> StreamMessage | None:
    """The next message of the stream, or None when none came within `timeout_s` (or one was garbled)."""
    try:
        raw = await asyncio.wait_for(messages.get(), timeout_s)
        return decode_message(raw)
    except (TimeoutError, ValueError):
        return None


async def _without_live_chunks(st: GatewayState, job_id: str, fmt: StreamFormat) -> Response:
    """No chunk came (or not from the start): answer from Postgres if the job finished, else 504."""
    async with st.res.db.acquire() as conn:
        row = await job_outcome(conn, job_id)
    done = Outcome.from_row(row) if row is not None else None
    if done is not None:
        return replayed_stream(done, job_id, events=fmt)
    st.spawn(cancel_stream(st.res.redis, st.waiters.channel, job_id))  # nobody will read what it streams now
    raise GatewayTimeout(f"The stream did not start within {st.res.settings.sync_wait_timeout_s:g} s. It may still "
                         f"complete; GET /v1/jobs/{job_id} shows its outcome.")


def _interrupted(job_id: str) -> bytes:
    """OpenAI's in-stream error event, for a stream whose relay lost a message or went silent."""
    return sse({"error": {"message": f"The stream was interrupted; GET /v1/jobs/{job_id} shows the whole answer "
                                     "once the job has finished.", "type": "server_error",
                          "code": "stream_interrupted", "param": None}})

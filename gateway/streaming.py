"""`stream: true` on `POST /v1/chat/completions`: the job goes through the queue like any other, and
the worker relays its chunks here (`shared/queue/stream_relay.py`); this module writes them to the
caller as server-sent events in OpenAI's format, ending with `data: [DONE]`.

Nothing is sent before the first chunk, so a job that fails before it (no provider would answer,
a budget, a bad parameter upstream) is an ordinary error response with its status. After it, a
failure is OpenAI's in-stream error event (`data: {"error": ...}`), which the `openai` SDK raises
as `APIError`. When the caller disconnects, the worker is told (a cancel key it checks with every
chunk) and stops the upstream call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from starlette.responses import Response, StreamingResponse

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


def replayed_stream(outcome: Outcome, job_id: str, *, include_usage: bool) -> Response:
    """A finished streamed job answered again (an Idempotency-Key replay, lost live chunks): its
    stored answer as a stream, or its error as a plain error response."""
    if outcome.http_status != 200:
        return JSONResponse(outcome.body, status_code=outcome.http_status, headers={"x-ainfera-job-id": job_id})
    events = [sse(piece) for piece in replay_chunks(outcome.body, include_usage=include_usage)] + [DONE]

    async def body() -> AsyncIterator[bytes]:
        for event in events:
            yield event

    return StreamingResponse(body(), media_type="text/event-stream", headers=stream_headers(job_id))


async def submit_streaming(st: GatewayState, job: DispatchJob, *, include_usage: bool,
                           binder: Binder = NO_KEY) -> Response:
    """Queue a streamed job and answer with its stream once its first chunk (or its failure) came."""
    job_id = job.job_id
    messages = st.waiters.open_stream(job_id)
    handed_on = False
    try:
        await enqueue_waited(st, job, binder)
        first = await _next(messages, st.res.settings.sync_wait_timeout_s)
        if first is None or first.seq != 0:
            return await _without_live_chunks(st, job_id, include_usage=include_usage)
        if first.kind is Kind.FAILED_BEFORE_START:
            outcome = Outcome.from_message(first.data)
            return JSONResponse(outcome.body, status_code=outcome.http_status, headers={"x-ainfera-job-id": job_id})
        headers = stream_headers(job_id)
        if first.kind is Kind.CHUNK:
            headers["x-ainfera-model"] = str(orjson.loads(first.data).get("model", ""))
        handed_on = True
        return StreamingResponse(_relay(st, job_id, first, messages), media_type="text/event-stream",
                                 headers=headers)
    finally:
        if not handed_on:
            st.waiters.close_stream(job_id)


async def _relay(st: GatewayState, job_id: str, first: StreamMessage,
                 messages: asyncio.Queue[bytes]) -> AsyncIterator[bytes]:
    """The events of one stream. When the caller disconnects, Starlette cancels this generator;
    the `finally` then tells the worker, from a task of its own (this one is being cancelled)."""
    ended = False
    expected, message = 0, first
    try:
        while True:
            if message.seq != expected:
                ended = True
                yield _interrupted(job_id)
                return
            expected += 1
            if message.kind is Kind.CHUNK:
                yield sse(message.data)
            elif message.kind is Kind.DONE:
                ended = True
                yield DONE
                return
            else:  # an error after the first chunk (FAILED_BEFORE_START cannot follow one)
                ended = True
                yield sse(message.data)
                return
            following = await _next(messages, st.res.settings.sync_wait_timeout_s)
            if following is None:
                ended = True
                yield _interrupted(job_id)
                return
            message = following
    finally:
        st.waiters.close_stream(job_id)
        if not ended:
            st.spawn(cancel_stream(st.res.redis, job_id))


async def _next(messages: asyncio.Queue[bytes], timeout_s: float) -> StreamMessage | None:
    """The next message of the stream, or None when none came within `timeout_s` (or one was garbled)."""
    try:
        raw = await asyncio.wait_for(messages.get(), timeout_s)
        return decode_message(raw)
    except (TimeoutError, ValueError):
        return None


async def _without_live_chunks(st: GatewayState, job_id: str, *, include_usage: bool) -> Response:
    """No chunk came (or not from the start): answer from Postgres if the job finished, else 504."""
    async with st.res.db.acquire() as conn:
        row = await job_outcome(conn, job_id)
    done = Outcome.from_row(row) if row is not None else None
    if done is not None:
        return replayed_stream(done, job_id, include_usage=include_usage)
    raise GatewayTimeout(f"The stream did not start within {st.res.settings.sync_wait_timeout_s:g} s. It may still "
                         f"complete; GET /v1/jobs/{job_id} shows its outcome.")


def _interrupted(job_id: str) -> bytes:
    """OpenAI's in-stream error event, for a stream whose relay lost a message or went silent."""
    return sse({"error": {"message": f"The stream was interrupted; GET /v1/jobs/{job_id} shows the whole answer "
                                     "once the job has finished.", "type": "server_error",
                          "code": "stream_interrupted", "param": None}})

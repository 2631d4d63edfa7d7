"""How the simulator puts bytes on the wire: whole, cut in half, dripped, streamed as server-sent
events, or never.

Raw ASGI messages, so a fault looks to the client exactly like a misbehaving server:
a truncated body is a connection closed before Content-Length bytes arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from enum import StrEnum

from starlette.types import Receive, Send

from shared.simulator.dialect import Reply

_JSON = (b"content-type", b"application/json")
_SSE = (b"content-type", b"text/event-stream; charset=utf-8")


class Mode(StrEnum):
    WHOLE = "whole"
    TRUNCATED = "truncated"
    DRIP = "drip"
    HANG = "hang"
    STREAM = "stream"  # `events`, one every `interval_s`, as text/event-stream


@dataclass(frozen=True, slots=True)
class Delivery:
    """A reply and how to deliver it; `delay_s` is waited before the status line (for a stream,
    before its first event: the time to a first token)."""

    reply: Reply | None
    mode: Mode = Mode.WHOLE
    delay_s: float = 0.0
    drip_interval_s: float = 0.0
    events: tuple[bytes, ...] = ()  # Mode.STREAM: whole SSE events, each ending in a blank line
    cut_after: int | None = None  # Mode.STREAM: close the connection after this many events


class StreamEnd(StrEnum):
    """How a streamed answer ended, for the simulator's counters."""

    COMPLETED = "completed"
    ABORTED = "aborted"  # the client closed the connection before the last event
    CUT = "cut"  # the simulator closed it on purpose (`[sim:cut_stream=N]`)


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client went away first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def deliver(delivery: Delivery, receive: Receive, send: Send) -> int | None:
    """Send the reply as `delivery.mode` says; returns the status sent (None when hanging)."""
    if delivery.delay_s > 0:
        await asyncio.sleep(delivery.delay_s)
    reply = delivery.reply
    if delivery.mode is Mode.HANG or reply is None:
        await _until_disconnect(receive)
        return None
    if delivery.mode is Mode.STREAM:
        await send({"type": "http.response.start", "status": reply.status, "headers": [_SSE, *reply.headers]})
        return reply.status
    headers = [_JSON, (b"content-length", str(len(reply.body)).encode()), *reply.headers]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    if delivery.mode is Mode.TRUNCATED:
        # Returning with the body incomplete makes the server close the connection mid-body.
        await send({"type": "http.response.body", "body": reply.body[: len(reply.body) // 2], "more_body": True})
    elif delivery.mode is Mode.DRIP:
        await _drip(reply.body, delivery.drip_interval_s, receive, send)
    else:
        await send({"type": "http.response.body", "body": reply.body})
    return reply.status


async def send_json(send: Send, status: int, body: bytes) -> None:
    """A plain JSON answer (control API, health, unknown hosts)."""
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _drip(body: bytes, interval_s: float, receive: Receive, send: Send) -> None:
    """One byte per interval; stops as soon as the client disconnects."""
    watcher = asyncio.ensure_future(_until_disconnect(receive))
    try:
        for index in range(len(body)):
            last = index == len(body) - 1
            await send({"type": "http.response.body", "body": body[index : index + 1], "more_body": not last})
            if last:
                return
            if interval_s > 0:
                done, _ = await asyncio.wait({watcher}, timeout=interval_s)
                if done:
                    return
            elif watcher.done():
                return
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def stream_events(delivery: Delivery, receive: Receive, send: Send) -> StreamEnd:
    """The events of a streamed answer, after `deliver` sent its head: one every `drip_interval_s`,
    stopping at once when the client disconnects (a gateway that cancels its upstream call)."""
    watcher = asyncio.ensure_future(_until_disconnect(receive))
    try:
        for index, event in enumerate(delivery.events):
            if delivery.cut_after is not None and index >= delivery.cut_after:
                return StreamEnd.CUT  # returning with more_body set makes the server drop the connection
            if watcher.done():
                return StreamEnd.ABORTED
            await send({"type": "http.response.body", "body": event, "more_body": True})
            if delivery.drip_interval_s > 0 and index < len(delivery.events) - 1:
                done, _ = await asyncio.wait({watcher}, timeout=delivery.drip_interval_s)
                if done:
                    return StreamEnd.ABORTED
        await send({"type": "http.response.body", "body": b""})
        return StreamEnd.COMPLETED
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher

"""Reading one HTTP/1.1 response from an asyncio stream, parsed by llhttp (through httptools).

llhttp is Node.js's HTTP parser; httptools is its Python binding, the one uvicorn already
runs for the gateway, so parsing (status line, headers, Content-Length and chunked framing,
trailers) is a well-kept C library's job, not ours. What stays here is policy: limits on the
head and trailers, which framings we accept, and turning failures into httpx's error types,
which `transport.py` maps to ours.

We refuse what an upstream call never needs and would otherwise have to trust: 1xx
informational answers, upgrades, transfer codings other than plain `chunked`, and bodies
delimited by closing the connection (their end cannot be told from a cut-off answer).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httptools
import httpx

MAX_HEAD = 64 * 1024  # the status line and headers, and separately the trailers
PIECE = 64 * 1024  # the most read from the socket at once, so the most of a body handed on at once


@dataclass(frozen=True, slots=True)
class Head:
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]


class _Callbacks:
    """What llhttp reports while it parses; httptools calls these by name."""

    def __init__(self) -> None:
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.head_bytes = 0
        self.trailer_bytes = 0
        self.body: list[bytes] = []
        self.messages = 0
        self.done = False
        self.keep_alive = False
        self.parser: httptools.HttpResponseParser | None = None  # set once the parser exists

    def on_message_begin(self) -> None:
        self.messages += 1

    def on_status(self, status: bytes) -> None:
        if not self.head_done:
            self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.head_done:  # a trailer, or a header of a message after ours: counted, then dropped
            self.trailer_bytes += len(name) + len(value) + 4
        else:
            self.head_bytes += len(name) + len(value) + 4
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if not self.head_done:  # the first message's head is the answer (a second one is refused)
            self.head_done = True
            self.status = self.parser.get_status_code() if self.parser is not None else 0

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True
        # Asked now: llhttp forgets the message's flags once this callback returns.
        self.keep_alive = self.parser is not None and self.parser.should_keep_alive()


class ResponseReader:
    """One response on one connection: `read_head()`, then `body()`; `reusable` after the end.

    `read_t` bounds each wait for the socket, as httpx's read timeout does.
    """

    def __init__(self, reader: asyncio.StreamReader, read_t: float | None) -> None:
        self._reader, self._read_t = reader, read_t
        self._cb = _Callbacks()
        self._parser = self._cb.parser = httptools.HttpResponseParser(self._cb)
        self._garbage_after = False  # bytes after the end of the message

    async def read_head(self) -> Head:
        fed = 0
        while not self._cb.head_done:
            data = await self._read()
            if not data:
                if fed == 0:
                    raise httpx.RemoteProtocolError("the server closed the connection without answering")
                raise httpx.ReadError("the response ended early")
            fed += len(data)
            self._feed(data)
            if self._cb.head_bytes > MAX_HEAD or (not self._cb.head_done and fed > MAX_HEAD):
                raise httpx.RemoteProtocolError("response head too large")
        status = self._cb.status
        if status < 200:
            raise httpx.RemoteProtocolError("informational responses are not supported")
        self._check_framing(status)
        return Head(status, self._cb.reason, self._cb.headers)

    def _check_framing(self, status: int) -> None:
        codings: list[bytes] = []
        length = False
        for name, value in self._cb.headers:
            lname = name.lower()
            if lname == b"transfer-encoding":
                codings += [t for t in (p.strip(b" \t").lower() for p in value.split(b",")) if t]
            elif lname == b"content-length":
                length = True
        if codings and codings != [b"chunked"]:
            raise httpx.RemoteProtocolError("a transfer coding other than chunked")
        if not codings and not length and status not in (204, 304) and not self._cb.done:
            raise httpx.RemoteProtocolError("a response without Content-Length or chunked encoding")

    async def body(self) -> AsyncIterator[bytes]:
        """The body as it arrives, de-chunked; ends once llhttp has seen the whole message."""
        while True:
            if self._cb.body:
                pieces, self._cb.body = self._cb.body, []
                yield pieces[0] if len(pieces) == 1 else b"".join(pieces)
            if self._cb.done:
                return
            data = await self._read()
            if not data:
                raise httpx.ReadError("the response body ended early")
            self._feed(data)
            if self._cb.trailer_bytes > MAX_HEAD:
                raise httpx.RemoteProtocolError("response trailers too large")

    @property
    def reusable(self) -> bool:
        """Whole, keep-alive, and nothing sent after it (a second message would belong to no request)."""
        return self._cb.done and self._cb.keep_alive and self._cb.messages == 1 and not self._garbage_after

    def _feed(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            raise httpx.RemoteProtocolError("protocol upgrades are not supported") from e
        except httptools.HttpParserError as e:
            if self._cb.done:  # our answer is whole; what follows it spoils only the connection
                self._garbage_after = True
                return
            raise httpx.RemoteProtocolError(f"malformed response: {e}") from e

    async def _read(self) -> bytes:
        try:
            async with asyncio.timeout(self._read_t):
                return await self._reader.read(PIECE)
        except TimeoutError as e:
            raise httpx.ReadTimeout("reading the response timed out") from e
        except (ConnectionError, OSError) as e:
            raise httpx.ReadError(f"connection lost while reading: {e}") from e

"""A lean HTTP/1.1 transport for httpx: the client API stays httpx, the wire work is ours.

httpx's default transport (httpcore over anyio, h11 for parsing) spends about 0.7 ms of CPU
per upstream call here, the largest single cost of a dispatch job; aiohttp under httpx costs
about 1.4x (concurrent) to 1.6x (sequential) this transport's CPU (`bench/upstream_call_cpu.py`).
Upstream calls are all alike: one POST with a known body, a JSON answer, keep-alive to a few
hosts. This transport does exactly that: per-origin pools of asyncio connections, the request
head and body in one write, and a strict parser for the status line, headers, and a
Content-Length or chunked body, which it hands on in pieces as they arrive (so a caller can
stream it, and stop reading at a size limit). TLS uses the standard library. HTTP/1.1 only.
Anything it does not handle (transfer codings other than chunked, close-delimited bodies, 1xx
informational answers, upgrades) is a protocol error, which the transport module turns into an
upstream error.

Timeouts come from the request's `timeout` extension, as httpx sets it: connect, write
and read (per read), and a pool wait bounded by the caller's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

_MAX_HEAD = 64 * 1024  # the status line and headers; also the trailers, and one chunk-size line
_PIECE = 64 * 1024  # the most of a body handed on at once
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class _Protocol(Exception):
    pass


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0  # loop time it went back to its pool

    def alive(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


@dataclass
class _Pool:
    idle: deque[_Conn] = field(default_factory=deque)
    active: int = 0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)


class _LazyBody(httpx.AsyncByteStream):
    """The response body, read when httpx reads it; the connection goes back to its pool after."""

    def __init__(self, transport: LeanTransport, key: tuple[str, str, int], conn: _Conn, read_t: float | None,
                 length: int | None, chunked: bool, keep_alive: bool) -> None:
        self._t, self._key, self._conn, self._read_t = transport, key, conn, read_t
        self._length, self._chunked, self._keep_alive = length, chunked, keep_alive
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        ok = False
        reader, read_t = self._conn.reader, self._read_t
        try:
            if self._chunked:
                while size := _chunk_size(await _read_until(reader, b"\r\n", read_t)):
                    async for piece in _read_pieces(reader, size, read_t):
                        yield piece
                    if await _read_exactly(reader, 2, read_t) != b"\r\n":
                        raise httpx.RemoteProtocolError("a chunk is longer than its size line says")
                trailers = 0
                while (line := await _read_until(reader, b"\r\n", read_t)) != b"\r\n":
                    trailers += len(line)
                    if trailers > _MAX_HEAD:
                        raise httpx.RemoteProtocolError("response trailers too large")
            elif self._length:
                async for piece in _read_pieces(reader, self._length, read_t):
                    yield piece
            ok = True
        finally:
            self._release(ok and self._keep_alive)

    def _release(self, reusable: bool) -> None:
        if not self._released:
            self._released = True
            self._t._release(self._key, self._conn, reusable)

    async def aclose(self) -> None:
        self._release(False)  # closed before the end: the connection's state is unknown


async def _read_until(reader: asyncio.StreamReader, sep: bytes, read_t: float | None) -> bytes:
    try:
        async with asyncio.timeout(read_t):
            return await reader.readuntil(sep)
    except TimeoutError as e:
        raise httpx.ReadTimeout("reading the response timed out") from e
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            raise httpx.RemoteProtocolError("the server closed the connection without answering") from e
        raise httpx.ReadError("the response ended early") from e
    except asyncio.LimitOverrunError as e:
        raise httpx.RemoteProtocolError("response head too large") from e
    except (ConnectionError, OSError) as e:
        raise httpx.ReadError(f"connection lost while reading: {e}") from e


async def _read_exactly(reader: asyncio.StreamReader, n: int, read_t: float | None) -> bytes:
    try:
        async with asyncio.timeout(read_t):
            return await reader.readexactly(n)
    except TimeoutError as e:
        raise httpx.ReadTimeout("reading the response timed out") from e
    except asyncio.IncompleteReadError as e:
        raise httpx.ReadError("the response body ended early") from e
    except (ConnectionError, OSError) as e:
        raise httpx.ReadError(f"connection lost while reading: {e}") from e


def _chunk_size(line: bytes) -> int:
    """The size from a chunk-size line (hex digits, then optional extensions, then CRLF)."""
    digits = line[:-2].split(b";", 1)[0].strip(b" \t")
    if not _CHUNK_SIZE.fullmatch(digits):
        raise httpx.RemoteProtocolError("malformed chunk size")
    return int(digits, 16)


async def _read_pieces(reader: asyncio.StreamReader, n: int, read_t: float | None) -> AsyncIterator[bytes]:
    """The next `n` bytes, as they arrive, at most `_PIECE` at a time; read_t bounds each wait."""
    while n > 0:
        try:
            async with asyncio.timeout(read_t):
                piece = await reader.read(min(n, _PIECE))
        except TimeoutError as e:
            raise httpx.ReadTimeout("reading the response timed out") from e
        except (ConnectionError, OSError) as e:
            raise httpx.ReadError(f"connection lost while reading: {e}") from e
        if not piece:
            raise httpx.ReadError("the response body ended early")
        n -= len(piece)
        yield piece


def _tokens(value: bytes) -> list[bytes]:
    """A comma-separated header value as lower-case tokens (`Connection`, `Transfer-Encoding`)."""
    return [t for t in (part.strip(b" \t").lower() for part in value.split(b",")) if t]


def _timeouts(request: httpx.Request) -> tuple[float | None, float | None, float | None]:
    t: dict[str, Any] = request.extensions.get("timeout", {})
    return t.get("connect"), t.get("read"), t.get("write")


class LeanTransport(httpx.AsyncBaseTransport):
    """Pooled HTTP/1.1 connections per origin.

    An idle connection is not reused after `keepalive_expiry_s`: servers close idle keep-alive
    connections (5 s is a common default), and a request written into one the server is closing
    fails after it was sent, which we must not retry (the provider might have done the work). A
    connection the server already closed is noticed before reuse (`alive`).
    """

    def __init__(self, *, max_connections_per_host: int = 100, ssl_context: ssl.SSLContext | None = None,
                 keepalive_expiry_s: float = 4.0) -> None:
        self._limit = max_connections_per_host
        self._expiry = keepalive_expiry_s
        self._ssl = ssl_context
        self._pools: dict[tuple[str, str, int], _Pool] = {}

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def _acquire(self, key: tuple[str, str, int], connect_timeout: float | None) -> _Conn:
        pool = self._pools.setdefault(key, _Pool())
        while True:
            fresh_after = asyncio.get_running_loop().time() - self._expiry
            while pool.idle:
                conn = pool.idle.pop()
                if conn.idle_since >= fresh_after and conn.alive():
                    pool.active += 1
                    return conn
                conn.close()
            if pool.active < self._limit:
                pool.active += 1
                try:
                    return await self._connect(key, connect_timeout)
                except BaseException:
                    self._release_slot(pool)
                    raise
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            pool.waiters.append(waiter)
            await waiter  # bounded by the caller's overall deadline

    def _release_slot(self, pool: _Pool) -> None:
        pool.active -= 1
        while pool.waiters:
            w = pool.waiters.popleft()
            if not w.done():
                w.set_result(None)
                return

    def _release(self, key: tuple[str, str, int], conn: _Conn, reusable: bool) -> None:
        pool = self._pools[key]
        if reusable and conn.alive():
            conn.idle_since = asyncio.get_running_loop().time()
            pool.idle.append(conn)
        else:
            conn.close()
        self._release_slot(pool)

    async def _connect(self, key: tuple[str, str, int], connect_timeout: float | None) -> _Conn:
        scheme, host, port = key
        try:
            async with asyncio.timeout(connect_timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=self._ssl_context() if scheme == "https" else None, limit=_MAX_HEAD)
        except TimeoutError as e:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from e
        except OSError as e:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {e.strerror or e}") from e
        return _Conn(reader, writer)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        port = url.port or (443 if scheme == "https" else 80)
        key = (scheme, url.host, port)
        connect_t, read_t, write_t = _timeouts(request)
        body = request.content  # upstream requests carry bytes, never streams
        head = [f"{request.method} {url.raw_path.decode('ascii')} HTTP/1.1\r\n".encode("ascii")]
        headers = request.headers
        if "host" not in headers:
            head.append(b"Host: " + url.netloc + b"\r\n")
        for name, value in headers.raw:
            head.append(name + b": " + value + b"\r\n")
        if "content-length" not in headers:
            head.append(b"Content-Length: " + str(len(body)).encode() + b"\r\n")
        head.append(b"\r\n")
        payload = b"".join(head) + body

        conn = await self._acquire(key, connect_t)
        try:
            try:
                conn.writer.write(payload)
                async with asyncio.timeout(write_t):
                    await conn.writer.drain()
            except TimeoutError as e:
                raise httpx.WriteTimeout("writing the request timed out") from e
            except (ConnectionError, OSError) as e:
                # Not all of the request reached the provider: it cannot have answered it.
                raise httpx.WriteError(f"connection lost while sending: {e}") from e
            status, reason, resp_headers, length, chunked, keep_alive = await self._read_head(conn, read_t)
        except BaseException:
            self._release(key, conn, False)
            raise
        if request.method == "HEAD" or status in (204, 304):
            length, chunked = 0, False
        stream = _LazyBody(self, key, conn, read_t, length, chunked, keep_alive)
        return httpx.Response(status, headers=resp_headers, stream=stream, request=request,
                              extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason})

    async def _read_head(self, conn: _Conn, read_t: float | None
                         ) -> tuple[int, bytes, list[tuple[bytes, bytes]], int | None, bool, bool]:
        head = await _read_until(conn.reader, b"\r\n\r\n", read_t)
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise httpx.RemoteProtocolError("malformed status line")
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else b""
        if status < 200:
            raise httpx.RemoteProtocolError("informational responses are not supported")
        headers: list[tuple[bytes, bytes]] = []
        length: int | None = None
        codings: list[bytes] = []
        close = parts[0] == b"HTTP/1.0"
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip(b" \t"):
                raise httpx.RemoteProtocolError("malformed header line")  # also obsolete line folding
            value = value.strip(b" \t")
            lname = name.lower()
            if lname == b"content-length":
                if not value.isdigit() or (length is not None and int(value) != length):
                    raise httpx.RemoteProtocolError("malformed or conflicting Content-Length")
                length = int(value)
            elif lname == b"transfer-encoding":
                codings += _tokens(value)
                continue  # the body handed to httpx is already de-chunked
            elif lname == b"connection":
                close = close or b"close" in _tokens(value)
            headers.append((name, value))
        chunked = bool(codings)
        if chunked:
            if codings != [b"chunked"]:
                raise httpx.RemoteProtocolError("a transfer coding other than chunked")
            # Transfer-Encoding overrides Content-Length (RFC 9112, 6.3); httpx sees the body's framing once.
            length = None
            headers = [(n, v) for n, v in headers if n.lower() != b"content-length"]
        elif length is None and status not in (204, 304):
            raise httpx.RemoteProtocolError("a response without Content-Length or chunked encoding")
        return status, reason, headers, length, chunked, not close

    async def aclose(self) -> None:
        for pool in self._pools.values():
            while pool.idle:
                pool.idle.pop().close()
        self._pools.clear()

"""A lean HTTP/1.1 transport for httpx: the client API stays httpx, the connections are ours.

httpx's default transport (httpcore over anyio, h11 for parsing) spends about 0.7 ms of CPU
per upstream call here, the largest single cost of a dispatch job, and aiohttp under httpx
(httpx-aiohttp) about 1.3x to 1.6x this transport's (`bench/upstream_call_cpu.py`; see
docs/decisions.md). Upstream calls are all alike: one POST with a known body, an answer,
keep-alive to a few hosts. This transport does exactly that: per-origin pools of asyncio
connections and the request head and body in one write; responses are parsed by llhttp
(`http1.py`) and handed on in pieces as they arrive, so a caller can stream them and stop
reading at a size limit. TLS uses the standard library. HTTP/1.1 only, and POST only (a
response to HEAD cannot be told from its headers alone).

Timeouts come from the request's `timeout` extension, as httpx sets it: connect, write
and read (per read), and a pool wait bounded by the caller's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.providers.http1 import PIECE, ResponseReader


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

    def __init__(self, transport: LeanTransport, key: tuple[str, str, int], conn: _Conn,
                 response: ResponseReader) -> None:
        self._t, self._key, self._conn, self._response = transport, key, conn, response
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for piece in self._response.body():
                yield piece
        finally:
            self._release(self._response.reusable)

    def _release(self, reusable: bool) -> None:
        if not self._released:
            self._released = True
            self._t._release(self._key, self._conn, reusable)

    async def aclose(self) -> None:
        self._release(False)  # closed before the end: the connection's state is unknown


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
                    host, port, ssl=self._ssl_context() if scheme == "https" else None, limit=PIECE)
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
            response = ResponseReader(conn.reader, read_t)
            answer = await response.read_head()
        except BaseException:
            self._release(key, conn, False)
            raise
        return httpx.Response(answer.status, headers=answer.headers, stream=_LazyBody(self, key, conn, response),
                              request=request, extensions={"http_version": b"HTTP/1.1", "reason_phrase": answer.reason})

    async def aclose(self) -> None:
        for pool in self._pools.values():
            while pool.idle:
                pool.idle.pop().close()
        self._pools.clear()

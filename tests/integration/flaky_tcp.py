"""A TCP proxy a test can cut, to put a real network fault between a worker and Postgres.

While cut, open connections are closed and new ones are closed as soon as they are accepted:
to the client this is a database that went away (a restart, a failover, a broken network),
which is what the worker must survive without calling a provider twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class FlakyTcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._down = False
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._cut_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        """From now on, until `restore`: every connection through the proxy fails."""
        self._down = True
        self._cut_all()

    def restore(self) -> None:
        self._down = False

    def _cut_all(self) -> None:
        for w in list(self._writers):
            w.close()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._down:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def flaky_proxy(target_host: str, target_port: int) -> AsyncIterator[FlakyTcpProxy]:
    proxy = FlakyTcpProxy(target_host, target_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()

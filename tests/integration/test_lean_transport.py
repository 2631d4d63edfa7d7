"""The lean HTTP/1.1 transport against a raw socket server that answers exactly as told."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.providers.fastpath import LeanTransport

pytestmark = pytest.mark.integration


class Server:
    """Serves canned raw responses in order, on persistent connections; counts connections."""

    def __init__(self, responses: list[bytes]) -> None:
        self.responses = list(responses)
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.responses:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                self.requests.append(head + await reader.readexactly(length))
                raw = self.responses.pop(0)
                if raw == b"<close>":
                    writer.close()
                    return
                writer.write(raw)
                await writer.drain()
                if b"Connection: close" in raw:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass


@pytest.fixture
async def serve() -> AsyncIterator:
    servers = []

    async def start(responses: list[bytes]) -> tuple[Server, str]:
        s = Server(responses)
        srv = await asyncio.start_server(s.handle, "127.0.0.1", 0)
        servers.append(srv)
        return s, f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"

    yield start
    for srv in servers:
        srv.close()


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + \
        b"\r\n" + extra + b"\r\n" + body


async def test_keep_alive_reuses_one_connection(serve):
    server, url = await serve([ok(b'{"n":1}'), ok(b'{"n":2}')])
    async with httpx.AsyncClient(transport=LeanTransport()) as c:
        assert (await c.post(url + "/x", content=b"abc")).json() == {"n": 1}
        assert (await c.post(url + "/x", content=b"abc")).json() == {"n": 2}
    assert server.connections == 1
    assert server.requests[0].startswith(b"POST /x HTTP/1.1\r\n") and server.requests[0].endswith(b"abc")


async def test_chunked_and_gzip_bodies(serve):
    data = gzip.compress(b'{"hello":"world"}')
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
               + f"{len(data[:5]):x}\r\n".encode() + data[:5] + b"\r\n"
               + f"{len(data[5:]):x}\r\n".encode() + data[5:] + b"\r\n0\r\n\r\n")
    _, url = await serve([chunked])
    async with httpx.AsyncClient(transport=LeanTransport()) as c:
        r = await c.post(url, content=b"{}")
    assert r.json() == {"hello": "world"}


async def test_connection_close_is_honoured(serve):
    server, url = await serve([ok(b"{}", b"Connection: close\r\n"), ok(b"{}")])
    async with httpx.AsyncClient(transport=LeanTransport()) as c:
        await c.post(url, content=b"")
        await c.post(url, content=b"")
    assert server.connections == 2


async def test_a_server_that_closes_without_answering_is_a_protocol_error(serve):
    _, url = await serve([b"<close>"])
    async with httpx.AsyncClient(transport=LeanTransport()) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.post(url, content=b"")


async def test_a_body_cut_short_fails_when_read_not_when_sent(serve):
    _, url = await serve([b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\nConnection: close\r\n\r\n{\"partial\""])
    async with httpx.AsyncClient(transport=LeanTransport()) as c:
        response = await c.send(c.build_request("POST", url, content=b""), stream=True)
        assert response.status_code == 200
        with pytest.raises(httpx.ReadError):
            await response.aread()


async def test_a_slow_answer_times_out(serve):
    async def never(reader, writer):
        await asyncio.sleep(5)

    srv = await asyncio.start_server(never, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
    try:
        async with httpx.AsyncClient(transport=LeanTransport(), timeout=httpx.Timeout(0.2)) as c:
            with pytest.raises(httpx.ReadTimeout):
                await c.post(url, content=b"")
    finally:
        srv.close()


async def test_refused_connections_are_connect_errors():
    async with httpx.AsyncClient(transport=LeanTransport()) as c:
        with pytest.raises(httpx.ConnectError):
            await c.post("http://127.0.0.1:1/x", content=b"")


async def test_the_pool_limit_queues_requests_instead_of_opening_more(serve):
    server, url = await serve([ok(b"{}") for _ in range(6)])
    async with httpx.AsyncClient(transport=LeanTransport(max_connections_per_host=1)) as c:
        await asyncio.gather(*(c.post(url, content=b"") for _ in range(6)))
    assert server.connections == 1


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "httpx"])
async def test_a_connection_lost_after_the_request_was_sent_is_not_retried(serve, lean):
    # The provider read the whole request, then the connection broke before any answer: it may
    # have done (and billed) the work, so sending it again could buy the same answer twice.
    from shared.errors import UpstreamConnectionLost
    from shared.providers.openai_chat import OpenAIChatAdapter
    from shared.providers.transport import RetryPolicy, send
    from shared.providers.types import UpstreamRequest

    server, url = await serve([b"<close>", ok(b"{}"), ok(b"{}")])
    policy = RetryPolicy(connect_timeout_s=2, read_timeout_s=2, deadline_s=5, max_retries=2, retry_after_cap_s=1,
                         backoff_base_s=0.01)
    request = UpstreamRequest(url=url, headers={"Content-Type": "application/json"}, body=b'{"model": "m"}')
    async with httpx.AsyncClient(transport=LeanTransport() if lean else None) as client:
        with pytest.raises(UpstreamConnectionLost) as caught:
            await send(client, OpenAIChatAdapter(), request, policy=policy)
    assert caught.value.attempts == 1 and len(server.requests) == 1


async def test_an_idle_connection_is_not_reused_past_its_keepalive_expiry(serve):
    # A server closing idle connections races a request written into one; past the expiry the
    # pool opens a fresh connection instead of risking a request that fails after it was sent.
    server, url = await serve([ok(b"{}"), ok(b"{}"), ok(b"{}")])
    async with httpx.AsyncClient(transport=LeanTransport(keepalive_expiry_s=0.2)) as c:
        await c.post(url, content=b"")
        await c.post(url, content=b"")  # within the expiry: the same connection
        assert server.connections == 1
        await asyncio.sleep(0.3)
        await c.post(url, content=b"")
    assert server.connections == 2

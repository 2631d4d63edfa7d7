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


async def _one_answer(head: bytes, parts: list[bytes], gate: asyncio.Event | None = None):
    """A server that answers one request with `head` and then `parts`, waiting for `gate` between the
    first part and the rest; returns (server, url)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in request.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        writer.write(head + parts[0])
        await writer.drain()
        if gate is not None:
            await gate.wait()
        for part in parts[1:]:
            writer.write(part)
            await writer.drain()
        await reader.read()  # until the client closes

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    return srv, f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
async def test_a_body_is_handed_on_as_it_arrives(framing):
    # The second half is sent only once the client has read the first: a transport that waited for
    # the whole body would never finish.
    gate = asyncio.Event()
    if framing == "chunked":
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        parts = [b"5\r\nfirst\r\n", b"6\r\nsecond\r\n0\r\n\r\n"]
    else:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"
        parts = [b"first", b"second"]
    srv, url = await _one_answer(head, parts, gate)
    try:
        async with httpx.AsyncClient(transport=LeanTransport()) as c, c.stream("POST", url, content=b"{}") as response:
            pieces = response.aiter_raw()
            assert await anext(pieces) == b"first"
            gate.set()
            assert b"".join([piece async for piece in pieces]) == b"second"
    finally:
        srv.close()


@pytest.mark.parametrize("coding", [b"chunked", b"Chunked", b"chunked "])
async def test_chunked_is_recognised_as_the_only_transfer_coding(serve, coding):
    _, url = await serve([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + coding + b"\r\n\r\n2\r\n{}\r\n0\r\n\r\n"])
    async with httpx.AsyncClient(transport=LeanTransport()) as c:
        assert (await c.post(url, content=b"")).json() == {}


def _policy(**overrides):
    from shared.providers.transport import RetryPolicy

    return RetryPolicy(**{"connect_timeout_s": 2, "read_timeout_s": 2, "deadline_s": 10, "max_retries": 2,
                          "retry_after_cap_s": 1, "backoff_base_s": 0.01, **overrides})


def _request(url: str):
    from shared.providers.types import UpstreamRequest

    return UpstreamRequest(url=url, headers={"Content-Type": "application/json"}, body=b'{"model": "m"}')


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "httpx"])
async def test_an_answer_over_the_size_limit_is_refused_and_not_read_to_its_end(lean):
    # The provider would send 64 MiB; the client stops at its 1 MiB limit and drops the connection.
    from shared.errors import UpstreamResponseTooLarge
    from shared.providers.openai_chat import OpenAIChatAdapter
    from shared.providers.transport import send

    sent = 0
    stopped = asyncio.Event()

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
        try:
            for _ in range(1024):
                writer.write(piece)
                await writer.drain()
                sent += 0x10000
        except ConnectionError:
            pass
        finally:
            stopped.set()

    srv = await asyncio.start_server(endless, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
    try:
        async with httpx.AsyncClient(transport=LeanTransport() if lean else None) as client:
            with pytest.raises(UpstreamResponseTooLarge) as caught:
                await send(client, OpenAIChatAdapter(), _request(url), policy=_policy(max_response_bytes=1024 * 1024))
        await stopped.wait()
    finally:
        srv.close()
    assert caught.value.attempts == 1
    assert sent < 64 * 1024 * 1024


async def test_a_declared_length_over_the_size_limit_is_refused_at_once(serve):
    from shared.errors import UpstreamResponseTooLarge
    from shared.providers.openai_chat import OpenAIChatAdapter
    from shared.providers.transport import send

    server, url = await serve([b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n{"])
    async with httpx.AsyncClient(transport=LeanTransport()) as client:
        with pytest.raises(UpstreamResponseTooLarge):
            await send(client, OpenAIChatAdapter(), _request(url), policy=_policy(max_response_bytes=1024))
    assert len(server.requests) == 1


async def test_a_request_the_server_stopped_reading_is_retried():
    # The server reads the head and hangs up with most of a large body unread: the request never
    # reached it whole, so the provider cannot be working on it, and sending it again is safe.
    # (httpx's own transport reads for an early answer instead and reports the connection lost.)
    import socket

    from shared.providers.openai_chat import OpenAIChatAdapter
    from shared.providers.transport import send
    from shared.providers.types import UpstreamRequest

    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        head = await reader.readuntil(b"\r\n\r\n")
        if connections == 1:
            writer.close()  # unread data: the kernel answers with a reset
            return
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        await reader.readexactly(length)
        writer.write(ok(b'{"id": "x", "model": "m", "usage": {"prompt_tokens": 1, "completion_tokens": 1}, '
                        b'"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, '
                        b'"finish_reason": "stop"}]}'))
        await writer.drain()

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # so the body cannot all fit in buffers
    sock.bind(("127.0.0.1", 0))
    srv = await asyncio.start_server(handle, sock=sock)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    request = UpstreamRequest(url=url, headers={"Content-Type": "application/json"},
                              body=b'{"model": "m", "pad": "' + b"x" * (8 * 1024 * 1024) + b'"}')
    try:
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            result = await send(client, OpenAIChatAdapter(), request, policy=_policy())
    finally:
        srv.close()
    assert result.attempts == 2 and connections == 2


_CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("raw", [
    pytest.param(b"<close>", id="closed-without-answering"),
    pytest.param(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", id="informational"),
    pytest.param(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
                 id="upgrade"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}", id="ends-when-the-connection-does"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (80 * 1024) + b"\r\nContent-Length: 2\r\n\r\n{}",
                 id="head-too-large"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent Type: x\r\n\r\n{}", id="space-in-a-name"),
    pytest.param(b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\n{}", id="status-not-a-number"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", id="two-lengths"),
    *(pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + coding + b"\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                   id=f"coding-{coding.decode()}")
      for coding in (b"gzip, chunked", b"chunked, gzip", b"xchunked", b"identity")),
    *(pytest.param(_CHUNKED + chunks, id=f"chunk-{i}") for i, chunks in enumerate(
        (b"5\r\nhelloXX\r\n0\r\n\r\n", b"-5\r\nhello\r\n0\r\n\r\n", b"0x5\r\nhello\r\n0\r\n\r\n",
         b"5_0\r\nhello\r\n0\r\n\r\n", b"\r\n0\r\n\r\n"))),
])
async def test_answers_that_are_protocol_errors(serve, raw):
    # Malformed, or what an upstream call never needs and would otherwise have to trust.
    _, url = await serve([raw])
    async with httpx.AsyncClient(transport=LeanTransport()) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.post(url, content=b"")


async def test_endless_trailers_are_refused(serve):
    trailers = b"".join(b"X-T%d: %s\r\n" % (i, b"v" * 1000) for i in range(100))
    _, url = await serve([_CHUNKED + b"2\r\n{}\r\n0\r\n" + trailers + b"\r\n"])
    async with httpx.AsyncClient(transport=LeanTransport()) as c:
        with pytest.raises(httpx.RemoteProtocolError, match="trailers"):
            await c.post(url, content=b"")


async def test_bytes_after_an_answer_spoil_the_connection_not_the_answer(serve):
    server, url = await serve([ok(b'{"n":1}') + b"garbage that starts no response", ok(b'{"n":2}')])
    async with httpx.AsyncClient(transport=LeanTransport()) as c:
        assert (await c.post(url, content=b"")).json() == {"n": 1}
        assert (await c.post(url, content=b"")).json() == {"n": 2}
    assert server.connections == 2  # the first connection was not put back in the pool

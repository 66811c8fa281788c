"""The gateway's HTTP/1.1 client (`upstream_http`) against servers that answer as scripted, on 127.0.0.1.

The fake Anthropic API drives it in every other gateway test; these cover what the fake never does: bodies
framed three ways, a server that closes a kept-alive connection while it is idle, bytes nobody asked for,
a body larger than the flow-control window, and header values that would split the request."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.gateway_support import chunked, read_request
from switchboard.gateway.upstream_http import (
    HIGH_WATER,
    ConnectFailed,
    ConnectionLost,
    HttpClient,
    MalformedResponse,
    ReadTimedOut,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
SSE = b"event: ping\ndata: {}\n\n"


class Server:
    """A server on 127.0.0.1 whose `handler` answers each connection; counts connections and requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.closed = 0  # connections the client closed
        self.requests: list[bytes] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.closed += 1
        finally:
            writer.close()

    async def request(self, reader: asyncio.StreamReader) -> bytes:
        """One request, its head and its body (by Content-Length)."""
        request = await read_request(reader)
        self.requests.append(request)
        return request


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[tuple[Server, HttpClient]]:
    server = Server(handler)
    listener = await asyncio.start_server(server, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    client = HttpClient(f"http://127.0.0.1:{port}", connect_timeout=5, read_timeout=5, keepalive=5)
    try:
        yield server, client
    finally:
        await client.aclose()
        listener.close()
        await listener.wait_closed()


def answer(body: bytes, *, close: bool = False) -> bytes:
    connection = b"connection: close\r\n" if close else b""
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), connection, body)


async def test_a_kept_alive_connection_serves_the_next_request_and_the_request_is_as_sent() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.request(reader)
            writer.write(answer(b'{"ok":true}'))

    async with serving(handler) as (server, client):
        for _ in range(3):
            response = await client.post("/v1/messages", b'{"a":1}', {"x-api-key": "k"})
            assert (response.status, await response.read()) == (200, b'{"ok":true}')
        assert server.connections == 1
        request = server.requests[0]
        assert request.startswith(b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1:")
        assert b'\r\nx-api-key: k\r\ncontent-length: 7\r\n\r\n{"a":1}' in request


async def test_a_chunked_stream_arrives_piece_by_piece_as_it_is_sent() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        head, first, second, end = chunked(SSE, SSE.replace(b"ping", b"pong"))
        writer.write(head + first)
        await release.wait()  # the second piece only once the first was read
        writer.write(second + end)

    async with serving(handler) as (server, client):
        response = await client.post("/v1/messages", b"{}", {})
        assert response.headers["content-type"] == "text/event-stream"
        pieces: list[bytes] = []
        async for piece in response.chunks():
            pieces.append(piece)
            release.set()
        assert b"".join(pieces) == SSE + SSE.replace(b"ping", b"pong") and len(pieces) == 2
        assert response.at_eof()


async def test_the_chunks_of_one_read_arrive_as_one_piece() -> None:
    """Anthropic sends an event an HTTP chunk; those that came together go on together (one write on)."""
    release = asyncio.Event()
    events = [SSE.replace(b"ping", name) for name in (b"one", b"two", b"three")]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        head, *pieces, end = chunked(*events, SSE)
        writer.write(head + b"".join(pieces[:3]))  # three chunks in one write
        await release.wait()
        writer.write(pieces[3] + end)

    async with serving(handler) as (server, client):
        response = await client.post("/v1/messages", b"{}", {})
        pieces: list[bytes] = []
        async for piece in response.chunks():
            pieces.append(piece)
            release.set()
        assert pieces == [b"".join(events), SSE]


async def test_a_body_without_a_length_ends_with_the_connection_which_is_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it")

    async with serving(handler) as (server, client):
        for _ in range(2):
            response = await client.post("/v1/messages", b"{}", {})
            assert await response.read() == b"all of it"
        assert server.connections == 2


async def test_connection_close_is_honoured() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(answer(b"one", close=True))
        await writer.drain()

    async with serving(handler) as (server, client):
        assert await (await client.post("/", b"", {})).read() == b"one"
        assert await (await client.post("/", b"", {})).read() == b"one"
        assert server.connections == 2


async def test_a_connection_the_server_closed_while_idle_is_not_used_again() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(answer(b"ok"))
        await writer.drain()  # then the handler returns and the connection is closed, as an idle timeout does

    async with serving(handler) as (server, client):
        assert await (await client.post("/", b"", {})).read() == b"ok"
        await asyncio.sleep(0.2)  # the close reaches the client
        assert await (await client.post("/", b"", {})).read() == b"ok"
        assert server.connections == 2


async def test_a_connection_idle_past_keepalive_is_not_used_again() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.request(reader)
            writer.write(answer(b"ok"))

    async with serving(handler) as (server, client):
        client.keepalive = 0.1
        await (await client.post("/", b"", {})).read()
        await asyncio.sleep(0.2)
        await (await client.post("/", b"", {})).read()
        assert server.connections == 2


async def test_a_bursts_extra_connections_are_closed_once_idle_past_keepalive() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.request(reader)
            await asyncio.sleep(0.05)  # the burst's requests overlap
            writer.write(answer(b"ok"))

    async with serving(handler) as (server, client):
        client.keepalive = 0.3
        burst = [client.post("/", b"", {}) for _ in range(5)]
        for response in await asyncio.gather(*burst):
            await response.read()
        assert server.connections == 5
        for _ in range(6):  # steady traffic afterwards: one connection serves it, the idle rest are closed
            await asyncio.sleep(0.1)
            await (await client.post("/", b"", {})).read()
        await asyncio.sleep(0.1)
        assert (server.connections, server.closed) == (5, 4)


async def test_a_stream_cut_mid_body_fails_and_its_connection_is_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        head, first, *_ = chunked(SSE, SSE)
        writer.write(head + first)
        await writer.drain()
        writer.transport.abort()

    async with serving(handler) as (server, client):
        response = await client.post("/", b"", {})
        received: list[bytes] = []
        with pytest.raises(ConnectionLost):
            async for piece in response.chunks():
                received.append(piece)
        assert received == [SSE]
        response.close()
        assert await (await client.post("/", b"", {})).chunks().__anext__() == SSE
        assert server.connections == 2


async def test_a_connection_dropped_before_the_answer_fails_the_request() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.transport.abort()

    async with serving(handler) as (server, client):
        with pytest.raises(ConnectionLost):
            await client.post("/", b"{}", {})


async def test_a_server_that_stops_answering_times_out_between_reads() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        head, first, *_ = chunked(SSE, SSE)
        writer.write(head + first)
        await asyncio.sleep(30)

    async with serving(handler) as (server, client):
        client.read_timeout = 0.3
        response = await client.post("/", b"", {})
        started = asyncio.get_running_loop().time()
        with pytest.raises(ReadTimedOut):
            async for _ in response.chunks():
                pass
        assert 0.25 < asyncio.get_running_loop().time() - started < 3


async def test_a_slow_reader_is_not_timed_out_for_its_own_pauses() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        head, first, second, end = chunked(SSE, SSE)
        writer.write(head + first)
        await asyncio.sleep(0.5)
        writer.write(second + end)

    async with serving(handler) as (server, client):
        client.read_timeout = 0.3
        response = await client.post("/", b"", {})
        pieces = response.chunks()
        assert await pieces.__anext__() == SSE
        await asyncio.sleep(0.4)  # longer than the timeout, yet the server's next piece is due in 0.1 s
        assert await pieces.__anext__() == SSE


async def test_an_unreachable_origin_fails_to_connect() -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    client = HttpClient(f"http://127.0.0.1:{port}", connect_timeout=2, read_timeout=2, keepalive=5)
    with pytest.raises(ConnectFailed):
        await client.post("/", b"", {})


async def test_a_body_beyond_the_flow_control_window_arrives_whole_to_a_slow_reader() -> None:
    body = bytes(range(256)) * (HIGH_WATER // 64)  # four windows

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(answer(body))
        await writer.drain()

    async with serving(handler) as (server, client):
        response = await client.post("/", b"", {})
        await asyncio.sleep(0.3)  # the server writes it all meanwhile; the client stops reading at the window
        held = response._buffered  # pyright: ignore[reportPrivateUsage]
        assert HIGH_WATER < held <= HIGH_WATER + 256 * 1024 < len(body)  # past the window by one read at most
        received = bytearray()
        async for piece in response.chunks():
            received += piece
        assert bytes(received) == body


async def test_a_body_beyond_the_flow_control_window_is_read_whole() -> None:
    """A non-streamed answer larger than the window (a long answer, or one with big tool inputs)."""
    body = bytes(range(256)) * (HIGH_WATER // 64)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(answer(body))
        await writer.drain()

    async with serving(handler) as (server, client):
        client.read_timeout = 2  # a read stalled by the window would time out here
        response = await client.post("/", b"", {})
        await asyncio.sleep(0.3)  # the window fills before the caller asks for the whole body
        assert await response.read() == body


async def test_a_response_that_is_not_http_fails_as_malformed() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await asyncio.sleep(1)

    async with serving(handler) as (server, client):
        with pytest.raises(MalformedResponse):
            await client.post("/", b"", {})


@pytest.mark.parametrize("value", ["a\r\nx-injected: 1", "a\nb", "a\x00b"])
async def test_a_header_value_that_would_split_the_request_is_refused(value: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)

    async with serving(handler) as (server, client):
        with pytest.raises(ValueError, match="line break"):
            await client.post("/", b"", {"anthropic-beta": value})
        assert server.requests == []


async def test_a_stream_closed_after_its_last_event_lets_the_rest_arrive_and_keeps_the_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.request(reader)
            head, first, end = chunked(SSE)
            writer.write(head + first)
            await asyncio.sleep(0.1)
            writer.write(end)

    async with serving(handler) as (server, client):
        for _ in range(2):
            response = await client.post("/", b"", {})
            assert await response.chunks().__anext__() == SSE
            response.close_when_complete(2.0)  # the chunked terminator is still to come
            await asyncio.sleep(0.3)
        assert server.connections == 1


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for `localhost` (and 127.0.0.1), signed by its own key: the test's only authority."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize("trusted", [True, False])
async def test_an_https_origin_is_verified_against_the_systems_authorities(
    trusted: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS as the client does it for Anthropic: the default context, which reads the system's authorities
    (here the test's own, named by SSL_CERT_FILE as an operator would); an untrusted server is refused."""
    cert_path, key_path = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_path, key_path)
    if trusted:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(answer(b"over tls"))
        await writer.drain()

    server = Server(handler)
    listener = await asyncio.start_server(server, "127.0.0.1", 0, ssl=server_tls)
    port = listener.sockets[0].getsockname()[1]
    client = HttpClient(f"https://127.0.0.1:{port}", connect_timeout=5, read_timeout=5, keepalive=5)
    try:
        if trusted:
            assert await (await client.post("/v1/messages", b"{}", {})).read() == b"over tls"
            assert server.requests[0].startswith(b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1:")
        else:
            with pytest.raises(ConnectFailed, match="SSLCertVerificationError"):
                await client.post("/v1/messages", b"{}", {})
            assert server.requests == []
    finally:
        await client.aclose()
        listener.close()
        await listener.wait_closed()

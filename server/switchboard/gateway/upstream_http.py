"""HTTP/1.1 to the Anthropic API: kept-alive connections on asyncio, responses parsed by httptools.

The gateway only ever POSTs a JSON body to one origin and reads the answer whole or as it arrives, so this
is all the client it needs. It replaced aiohttp on the hot path: aiohttp's request and response machinery
cost a replica 0.27 ms of CPU per turn when warm and about 0.5 ms as the time-to-first-token probe met it
(docs/performance.md); here a request is one write and each read one parser call.

What it keeps of a full client:
- Connections are reused most recently used first, never after `keepalive` seconds idle (the server may
  have dropped them) nor after one the server closed or asked to close. A POST is never retried on
  another connection (RFC 9112 §9.3.1: it is not idempotent); the failure is reported instead.
- TLS through asyncio's `ssl` with the system's certificate authorities, for `https` origins.
- A read timeout: no byte from the server for `read_timeout` seconds while the caller waits.
- Flow control: reading from the server pauses while more than `HIGH_WATER` bytes wait for the caller
  (besides the piece it is passing on: it takes all that waits at once).
- Header names and values are checked for line breaks, so no header can be smuggled into the request.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools

HIGH_WATER = 256 * 1024


class HttpFailure(Exception):
    """The request could not be sent or its answer broke off; `str()` never holds a header or body."""


class ConnectFailed(HttpFailure):
    pass


class ConnectionLost(HttpFailure):
    pass


class ReadTimedOut(HttpFailure):
    pass


class MalformedResponse(HttpFailure):
    pass


class Origin:
    """Where requests go: the scheme, host and port of a base URL, and the path prefix it may carry."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        default_port = 443 if self.tls else 80
        self.port = parts.port or default_port
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if self.port == default_port else f"{host}:{self.port}"
        self.prefix = parts.path.rstrip("/")


class HttpClient:
    def __init__(
        self, base_url: str, *, connect_timeout: float, read_timeout: float, keepalive: float
    ) -> None:
        self.origin = Origin(base_url)
        self.connect_timeout, self.read_timeout, self.keepalive = connect_timeout, read_timeout, keepalive
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if self.origin.tls else None
        self._idle: collections.deque[_Connection] = collections.deque()  # the most recently used last
        self._open: set[_Connection] = set()

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse:
        """POST `body` to `path` on the origin: the response once its status and headers came."""
        head = _request_head(self.origin, path, headers, len(body))
        connection = self._reusable() or await self._connect()
        response = connection.send(head + body, self.read_timeout, self._done_with)
        try:
            await response.headers_received()
        except BaseException:
            connection.abort()
            raise
        return response

    def _reusable(self) -> _Connection | None:
        now = asyncio.get_running_loop().time()
        while self._idle:
            connection = self._idle.pop()
            if connection.open and now - connection.idle_since < self.keepalive:
                return connection
            connection.abort()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        origin = self.origin
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop),
                    origin.host,
                    origin.port,
                    ssl=self._ssl,
                    server_hostname=origin.host if self._ssl else None,
                )
        except (OSError, TimeoutError) as error:
            raise ConnectFailed(f"could not connect ({type(error).__name__})") from error
        self._open.add(connection)
        connection.on_lost = self._open.discard
        return connection

    def _done_with(self, connection: _Connection, reusable: bool) -> None:
        if not reusable or not connection.open:
            connection.abort()
            return
        now = connection.idle_since = asyncio.get_running_loop().time()
        self._idle.append(connection)
        # The least recently used go once too old or closed, so a burst's connections do not stay open.
        while self._idle and (not self._idle[0].open or now - self._idle[0].idle_since >= self.keepalive):
            self._idle.popleft().abort()

    async def aclose(self) -> None:
        for connection in list(self._open):
            connection.abort()
        self._idle.clear()


def _request_head(origin: Origin, path: str, headers: Mapping[str, str], length: int) -> bytes:
    lines = [f"POST {origin.prefix}{path} HTTP/1.1", f"host: {origin.host_header}"]
    for name, value in headers.items():
        if _UNSAFE.intersection(name) or _UNSAFE.intersection(value) or ":" in name:
            raise ValueError(f"the header {name.split(chr(10))[0][:40]!r} holds a line break or a colon")
        lines.append(f"{name}: {value}")
    lines.append(f"content-length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_UNSAFE = frozenset("\r\n\0")
Release = Callable[["_Connection", bool], None]


class HttpResponse:
    """One response, its body read whole (`read`) or as it arrives (`chunks`); `close` when done with it."""

    def __init__(self, connection: _Connection, read_timeout: float, release: Release) -> None:
        self._connection, self._release, self._timeout = connection, release, read_timeout
        self._loop = connection.loop
        self.status = 0
        self.headers: dict[str, str] = {}
        self._started = False  # status and headers came
        self.complete = False  # the whole body came
        self._error: HttpFailure | None = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._last_heard = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._discard = False  # closed before the end: what still comes is dropped, then the connection kept
        self._framed = False  # the end is marked (a length, or chunks); else the connection ends the body
        self._body: bytes | None = None
        self._whole = False  # read whole (`read`): no flow control, the caller takes it all at once
        self._give_up_timer: asyncio.TimerHandle | None = None

    # --- what the caller uses ---------------------------------------------------------------------

    async def headers_received(self) -> None:
        while not self._started:
            await self._wait()

    async def read(self) -> bytes:
        """The whole body (kept: a second call answers the same); the connection is released."""
        if self._body is None:
            self._whole = True
            self._connection.resume()
            while not self.complete:
                await self._wait()
            self._body = b"".join(self._chunks)
            self.close()
        return self._body

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, each piece all that came since the last one: a read usually holds several
        HTTP chunks (Anthropic sends an event a chunk), and they go on together, not one at a time."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
                self._chunks.clear()
                self._buffered = 0
                self._connection.resume()
                yield chunk
            elif self.complete:
                return
            else:
                await self._wait()

    def at_eof(self) -> bool:
        return self.complete and not self._chunks

    def close(self) -> None:
        """Done with the response: its connection goes back to the client if the body came whole."""
        if self._closed:
            return
        self._closed = True
        self._chunks.clear()
        self._cancel_timer()
        if self._give_up_timer is not None:
            self._give_up_timer.cancel()
        self._release(self._connection, self.complete and self._error is None and self._connection.reusable)

    def close_when_complete(self, within: float) -> None:
        """Done with the response, but let the rest of its body arrive (dropped) for `within` seconds so its
        connection can serve another request; past that it is closed."""
        if self.complete or self._error is not None:
            self.close()
            return
        self._discard = True
        self._chunks.clear()
        self._buffered = 0
        self._connection.resume()
        self._cancel_timer()
        self._give_up_timer = self._loop.call_later(within, self._give_up)

    # --- what the connection reports --------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text
        if key in ("content-length", "transfer-encoding"):
            self._framed = True

    def on_headers_complete(self, status: int) -> None:
        self.status = status
        self._started = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._discard:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._whole:
            self._connection.pause()
        self._wake()

    def on_complete(self) -> None:
        self.complete = True
        self._cancel_timer()
        self._wake()
        if self._discard:
            self.close()

    def fail(self, error: HttpFailure) -> None:
        if self.complete or self._error is not None:
            return
        if isinstance(error, ConnectionLost) and self._started and not self._framed:
            self.on_complete()  # a body without a length or chunks ends when the connection does
            return
        self._error = error
        self._cancel_timer()
        self._wake()
        if self._discard:
            self.close()

    # --- waiting ------------------------------------------------------------------------------------

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        self._waiter = self._loop.create_future()
        self._last_heard = self._loop.time()
        if self._timer is None:
            self._timer = self._loop.call_at(self._last_heard + self._timeout, self._check_timeout)
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self._error is not None:
            raise self._error

    def _wake(self) -> None:
        self._last_heard = self._loop.time()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _check_timeout(self) -> None:
        """A read timeout without a timer per read: one timer, moved on when bytes came meanwhile."""
        self._timer = None
        if self._waiter is None or self._closed:
            return
        due = self._last_heard + self._timeout
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._check_timeout)
            return
        self.fail(ReadTimedOut(f"no answer for {self._timeout:g} s"))
        self._connection.abort()

    def _give_up(self) -> None:
        self._give_up_timer = None
        self._connection.abort()
        self.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.reusable = True  # the server did not ask to close it after the current response
        self.idle_since = 0.0
        self.on_lost: Callable[[_Connection], None] | None = None
        self._response: HttpResponse | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._paused = False

    def send(self, request: bytes, read_timeout: float, release: Release) -> HttpResponse:
        response = HttpResponse(self, read_timeout, release)
        self._response = response
        assert self.transport is not None
        self.transport.write(request)
        return response

    @property
    def open(self) -> bool:
        return not self.lost and self.transport is not None and not self.transport.is_closing()

    def abort(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.abort()

    def pause(self) -> None:
        if not self._paused and self.transport is not None and not self.lost:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self.transport is not None and not self.lost:
            self._paused = False
            self.transport.resume_reading()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._response is None or self._response.complete:
            self.reusable = False  # bytes nobody asked for: this connection cannot be trusted
            self.abort()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self.reusable = False
            self._response.fail(MalformedResponse(f"the answer is not HTTP/1.1 ({type(error).__name__})"))
            self.abort()

    def eof_received(self) -> bool | None:
        self.lost = True  # before `connection_lost`, which follows: no request may go out on it meanwhile
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._response is not None:
            self._response.fail(ConnectionLost("the connection was closed before the answer ended"))
        if self.on_lost is not None:
            self.on_lost(self)

    # httptools' callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._response is not None
        self._response.on_header(name, value)

    def on_headers_complete(self) -> None:
        assert self._response is not None
        self.reusable = self._parser.should_keep_alive()
        self._response.on_headers_complete(self._parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        assert self._response is not None
        self._response.on_body(body)

    def on_message_complete(self) -> None:
        assert self._response is not None
        self.reusable = self.reusable and self._parser.should_keep_alive()
        self._response.on_complete()

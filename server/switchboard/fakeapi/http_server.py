"""The HTTP/1.1 server under a fake: an asyncio event loop (uvloop when installed) on a thread of its own,
requests parsed by httptools, loopback only, and able to stop mid-stream.

One loop serves every connection, so a slow stream costs a timer between deltas, not a sleeping thread."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import cast

import httptools

from switchboard.fakeapi.errors import ApiError, error_body
from switchboard.fakeapi.handler import Request
from switchboard.fakeapi.transport import Pause, Response
from switchboard.listening import listening_socket

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024
# A kept-alive connection left idle this long is closed. Clients' pools drop idle connections sooner
# (httpx: 5 s), so they never send on one the fake is closing.
IDLE_CONNECTION_SECONDS = 60.0
IDLE_SWEEP_SECONDS = 5.0
# Benchmarks open many connections at once; a short backlog would drop SYNs (1 s retransmits).
BACKLOG = 128

Handle = Callable[[Request], Response]


def loopback_address(host: str) -> str:
    """`host` as a loopback IP address; ValueError for anything that is not loopback."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"the fake Anthropic API only binds loopback addresses, not {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"the fake Anthropic API only binds loopback addresses, not {host!r}")
    return str(address)


class FakeHTTPServer:
    """Binds at once (so a taken port fails in the caller); `start` serves on a background thread."""

    def __init__(self, host: str, port: int, handle: Handle) -> None:
        self.handle = handle
        self._socket = _listen(host, port)
        self.port: int = self._socket.getsockname()[1]
        self._loop = _new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"fake-anthropic-{self.port}", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self.connections: set[Connection] = set()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self._loop).result()

    def stop(self) -> None:
        """Stop serving and cut off every connection, streams in progress and stalled requests included."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._shut_down)
            self._thread.join()
        self._socket.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
            # Let the aborted connections see connection_lost before the loop goes.
            self._loop.run_until_complete(asyncio.sleep(0))
        finally:
            self._loop.close()

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), sock=self._socket, backlog=BACKLOG)
        self._sweeper = loop.call_later(IDLE_SWEEP_SECONDS, self._sweep)

    def _shut_down(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in list(self.connections):
            connection.abort()
        self._loop.stop()

    def _sweep(self) -> None:
        idle_since = self._loop.time() - IDLE_CONNECTION_SECONDS
        for connection in list(self.connections):
            connection.close_if_idle(idle_since)
        self._sweeper = self._loop.call_later(IDLE_SWEEP_SECONDS, self._sweep)


class Connection(asyncio.Protocol):
    """One client connection: parses its requests and plays their responses one after another."""

    def __init__(self, server: FakeHTTPServer) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._body_size = 0
        self._refused = False  # a request was refused unread: ignore whatever the client sends next
        # Requests received while a response is playing (and a refusal ready to send after them).
        self._queue: deque[Request | Response] = deque()
        self._response: Response | None = None
        self._step = 0
        self._timer: asyncio.TimerHandle | None = None
        self._writable = True
        self._last_active = self._loop.time()

    # --- the transport's side ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._response = None
        self._queue.clear()

    def data_received(self, data: bytes) -> None:
        self._last_active = self._loop.time()
        if self._refused:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # Upgrade is not offered: the request was answered as a plain one
        except httptools.HttpParserError as error:
            self._refuse_malformed(error)

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        if self._response is not None and self._timer is None:
            self._play()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def close_if_idle(self, idle_since: float) -> None:
        if self._response is None and self._last_active < idle_since and self._transport is not None:
            self._transport.close()

    # --- httptools callbacks ---

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        declared = self._headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > MAX_BODY_BYTES:
            self._refuse_too_large()

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body_size += len(body)
        if self._body_size > MAX_BODY_BYTES:
            self._refuse_too_large()
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            self._receive(b"".join(self._body), self._parser.should_keep_alive())

    # --- requests and responses ---

    def _refuse_too_large(self) -> None:
        """Answer 413 without reading the body, then close (as http.server did)."""
        message = f"Request exceeds the maximum allowed number of bytes ({MAX_BODY_BYTES})"
        self._receive(b"", keep_alive=False, refusal=ApiError(413, message))
        self._refused = True

    def _refuse_malformed(self, error: Exception) -> None:
        """Answer 400 (after the requests before it), then close: nothing after it can be parsed."""
        self._refused = True
        response = Response(close=True)
        payload = error_body("invalid_request_error", f"Malformed HTTP request: {error}")
        response.send_json(400, payload, {})
        self._queue_or_start(response)

    def _receive(self, body: bytes, keep_alive: bool, refusal: ApiError | None = None) -> None:
        method = self._parser.get_method().decode("ascii", "replace")
        url = self._url.decode("latin-1")
        self._queue_or_start(Request(method, url, self._headers, body, keep_alive, refusal))

    def _queue_or_start(self, next_up: Request | Response) -> None:
        if self._response is None:
            self._start(self._answer(next_up))
        else:
            self._queue.append(next_up)

    def _answer(self, request: Request | Response) -> Response:
        if isinstance(request, Response):
            return request
        try:
            return self._server.handle(request)
        except Exception:
            log.exception("fake Anthropic API: error while answering %s %s", request.method, request.target)
            response = Response(close=True)
            response.send_json(500, error_body("api_error", "Internal error in the fake Anthropic API"), {})
            return response

    def _start(self, response: Response) -> None:
        self._response, self._step = response, 0
        self._play()

    def _play(self) -> None:
        """Write the response's steps up to its next pause (a timer calls back) or its end."""
        self._timer = None
        response, transport = self._response, self._transport
        if response is None or transport is None:
            return
        steps = response.steps
        while self._step < len(steps):
            if transport.is_closing():
                return
            if not self._writable:
                return  # resume_writing plays on
            step = steps[self._step]
            self._step += 1
            if isinstance(step, bytearray):
                transport.write(step)
            elif isinstance(step, Pause):
                self._timer = self._loop.call_later(step.seconds, self._play)
                return
            else:
                self._drop(transport)
                return
        self._finished(response, transport)

    def _finished(self, response: Response, transport: asyncio.Transport) -> None:
        self._response = None
        self._last_active = self._loop.time()
        if response.close:
            self._drop(transport)
        elif self._queue:
            self._start(self._answer(self._queue.popleft()))

    def _drop(self, transport: asyncio.Transport) -> None:
        """Close after what was written goes out; whatever the client sends next is ignored."""
        self._refused = True
        self._response = None
        self._queue.clear()
        transport.close()


def _listen(host: str, port: int) -> socket.socket:
    sock = listening_socket(host, port, BACKLOG)
    sock.setblocking(False)
    return sock


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (the gateway extra brings it): each write and timer costs less than asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()

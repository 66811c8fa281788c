"""Low-level HTTP I/O on a request handler: request bodies, JSON responses, chunked SSE streams, and
abrupt closes.

Connections are kept alive (HTTP/1.1's default), as Anthropic's are: a client's pool reuses them, so a turn
does not pay a TCP connection and a new thread. A client that sends `Connection: close` gets it closed."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler

from switchboard.fakeapi.errors import ApiError, invalid

MAX_BODY_BYTES = 32 * 1024 * 1024


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        return _read_chunked(handler)
    try:
        length = int(handler.headers.get("Content-Length") or 0)
    except ValueError:
        raise invalid("Invalid Content-Length header") from None
    if length > MAX_BODY_BYTES:
        handler.close_connection = True
        raise ApiError(413, f"Request exceeds the maximum allowed number of bytes ({MAX_BODY_BYTES})")
    return handler.rfile.read(length) if length > 0 else b""


def parse_json(raw: bytes) -> object:
    try:
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        return None


def send_bytes(
    handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str, headers: Mapping[str, str]
) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
    handler.wfile.flush()


def send_json(
    handler: BaseHTTPRequestHandler, status: int, payload: object, headers: Mapping[str, str]
) -> None:
    send_bytes(handler, status, json_bytes(payload), "application/json", headers)


def json_bytes(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def abort_connection(handler: BaseHTTPRequestHandler) -> None:
    """Close the connection at once: the client sees the body (or the whole response) cut off."""
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.wfile.flush()
        handler.connection.shutdown(socket.SHUT_RDWR)


class ChunkedStream:
    """A `text/event-stream` response in chunked encoding, one chunk per event, flushed at once."""

    def __init__(self, handler: BaseHTTPRequestHandler, headers: Mapping[str, str]) -> None:
        self._handler = handler
        handler.send_response(200)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

    def send(self, data: bytes) -> None:
        self._handler.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
        self._handler.wfile.flush()

    def finish(self) -> None:
        self._handler.wfile.write(b"0\r\n\r\n")
        self._handler.wfile.flush()

    def drop(self) -> None:
        """End without the terminating chunk, so the client's HTTP layer reports an incomplete body."""
        abort_connection(self._handler)


def _read_chunked(handler: BaseHTTPRequestHandler) -> bytes:
    body = bytearray()
    while True:
        size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            handler.rfile.readline()
            return bytes(body)
        if len(body) + size > MAX_BODY_BYTES:
            handler.close_connection = True
            raise ApiError(413, f"Request exceeds the maximum allowed number of bytes ({MAX_BODY_BYTES})")
        body += handler.rfile.read(size)
        handler.rfile.readline()

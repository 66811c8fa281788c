"""What a response is on the wire, before the event loop plays it: HTTP/1.1 heads, JSON bodies, chunked SSE
streams, pauses and abrupt closes, as a list of steps.

Endpoints build a `Response` without blocking or touching a socket; the connection (http_server.py) writes
its bytes, waits out its pauses on the event loop and closes the connection where it says so. Connections
are kept alive (HTTP/1.1's default), as Anthropic's are: a client's pool reuses them."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus

SERVER_NAME = "FakeAnthropic/1.0"
# One encoder for every body and event: json.dumps with options builds a new one per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))
_REASONS = {status.value: status.phrase for status in HTTPStatus}


@dataclass(frozen=True)
class Pause:
    """Send nothing for `seconds` (a stall, or the pace of a slow stream)."""

    seconds: float


class Drop:
    """Close the connection at once, after what was written so far: the client sees the body (or the whole
    response) cut off."""


DROP = Drop()
# Bytes written back to back are one step (one write, one system call): a stream without pauses is one.
Step = bytearray | Pause | Drop


@dataclass
class Response:
    """The steps of one response, in order. `close`: close the connection once it is sent."""

    steps: list[Step] = field(default_factory=list[Step])
    close: bool = False

    def write(self, data: bytes) -> None:
        last = self.steps[-1] if self.steps else None
        if isinstance(last, bytearray):
            last += data
        else:
            self.steps.append(bytearray(data))

    def pause(self, seconds: float) -> None:
        if seconds > 0:
            self.steps.append(Pause(seconds))

    def drop(self) -> None:
        self.steps.append(DROP)

    def send_bytes(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str]) -> None:
        fields = {**headers, "Content-Type": content_type, "Content-Length": str(len(body))}
        self.write(head(status, fields, close=self.close) + body)

    def send_json(self, status: int, payload: object, headers: Mapping[str, str]) -> None:
        self.send_bytes(status, json_bytes(payload), "application/json", headers)


def head(status: int, headers: Mapping[str, str], *, close: bool = False) -> bytes:
    """The status line and header block of a response (with `Server` and `Date`, as http.server sent)."""
    status_line = f"HTTP/1.1 {status} {_REASONS.get(status, '')}"
    lines = [status_line, f"Server: {SERVER_NAME}", f"Date: {_http_date()}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def compact_json(payload: object) -> str:
    return _COMPACT.encode(payload)


def json_bytes(payload: object) -> bytes:
    return _COMPACT.encode(payload).encode()


def parse_json(raw: bytes) -> object:
    try:
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        return None


class ChunkedStream:
    """A `text/event-stream` response in chunked encoding, one chunk per event."""

    def __init__(self, response: Response, headers: Mapping[str, str]) -> None:
        self._response = response
        fields = {
            **headers,
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "Transfer-Encoding": "chunked",
        }
        response.write(head(200, fields, close=response.close))

    def send(self, data: bytes) -> None:
        self._response.write(b"%X\r\n%s\r\n" % (len(data), data))

    def pause(self, seconds: float) -> None:
        self._response.pause(seconds)

    def finish(self) -> None:
        self._response.write(b"0\r\n\r\n")

    def drop(self) -> None:
        """End without the terminating chunk, so the client's HTTP layer reports an incomplete body."""
        self._response.drop()


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The `Date` header value, formatted once a second (it only has second resolution)."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]

"""Reading LSP frames from stdin robustly, in place of pygls' reader loop.

pygls' loop trusts its peer: a header in another case, a wrong `Content-Length` or a huge one leaves it
deaf for the rest of the session (or out of memory), and any JSON it cannot turn into a message is only
logged, so the client waits forever. An editor must never hang on its language server, so this loop:

- finds `Content-Length` in any case and spacing, caps it, and resynchronises on the next header after
  a frame that does not parse;
- answers every request it cannot dispatch: `-32700` for unreadable JSON, `-32600` for something that is
  not a single JSON-RPC message (batches included), with `"id": null` unless the message has a valid id
  (JSON-RPC 2.0, section 5);
- applies the LSP lifecycle (`switchboard.lifecycle_gate`) before any handler, so a request before
  `initialize` or after `shutdown` is refused whatever its method;
- decodes only the top-level message (pygls decoded every nested object as if it were a message);
- lets the event loop run after a message that moved the lifecycle on, so what its handler scheduled
  (the features, loaded right after `initialize` is answered) is in place before the next message, even
  one that came in the same read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.protocol import JsonRPCProtocol

from switchboard.lifecycle_gate import LifecycleGate
from switchboard.rpc import internal_error

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024
_HEADER = re.compile(rb"content-length[ \t]*:[ \t]*(\d{1,20})[ \t]*\r?\n", re.IGNORECASE)
_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")
# Only to answer a frame that is too deep to parse: the request id, when it is near the start.
_ID = re.compile(rb'^\s*\{[^{\[]*?"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,200}")')
PARSE_ERROR = lsp.ErrorCodes.ParseError
INVALID_REQUEST = lsp.ErrorCodes.InvalidRequest
INVALID_PARAMS = lsp.ErrorCodes.InvalidParams


class FrameReader:
    """Splits a byte stream into frame bodies; bytes that are not a frame are skipped."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def next_body(self) -> bytes | None:
        while True:
            header = _HEADER.search(self.buffer)
            if header is None:
                self._keep_tail()
                return None
            end = _END_OF_HEADERS.search(self.buffer, header.end() - 2)
            if end is None:
                del self.buffer[: header.start()]
                return None
            length = int(header.group(1))
            if length > MAX_BODY_BYTES:
                log.warning("Skipping a frame that claims %d bytes", length)
                del self.buffer[: end.end()]
                continue
            if len(self.buffer) < end.end() + length:
                del self.buffer[: header.start()]
                return None
            body = bytes(self.buffer[end.end() : end.end() + length])
            del self.buffer[: end.end() + length]
            return body

    def resync_within(self, body: bytes) -> None:
        """A body that did not parse may have swallowed the next frames: put back what follows a header."""
        nested = _HEADER.search(body, 1)
        if nested is not None:
            self.buffer[:0] = body[nested.start() :]

    def _keep_tail(self) -> None:
        # Bytes that cannot start a header are dropped, except a tail that may be a header's beginning.
        if len(self.buffer) > 64:
            del self.buffer[:-64]


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


class MessagePump:
    """Decodes frame bodies and hands well-formed messages to pygls; answers the rest itself."""

    def __init__(self, protocol: JsonRPCProtocol) -> None:
        self.protocol = protocol
        self.gate = LifecycleGate()

    def handle(self, body: bytes) -> bool:
        """Returns False when the body was not JSON (the caller may resynchronise)."""
        try:
            data = json.loads(body)
        except ValueError:
            self._error(None, PARSE_ERROR, "The message is not valid JSON.")
            return False
        except RecursionError:
            self._error(_leading_id(body), INVALID_REQUEST, "The message is nested too deeply to read.")
            return True
        self._dispatch(data)
        return True

    def _dispatch(self, data: Any) -> None:
        if isinstance(data, list):
            self._error(
                None, INVALID_REQUEST, "Batch requests are not supported by the Language Server Protocol."
            )
            return
        if not isinstance(data, dict) or data.get("jsonrpc") != "2.0":
            self._error(None, INVALID_REQUEST, "Not a JSON-RPC 2.0 message.")
            return
        message = cast(dict[str, Any], data)
        problem = _shape_problem(message)
        if problem is not None:
            self._refuse_malformed(message, *problem)
        elif "method" in message:
            self._admit(message)
        else:
            self._deliver(message, is_request=False)  # the client's answer to a request of the server

    def _refuse_malformed(self, data: dict[str, Any], code: int, message: str) -> None:
        if "method" not in data and ("result" in data or "error" in data):
            # A broken answer is not answered back: a peer that answers errors too would never stop.
            log.warning("Ignoring a malformed response: %s", message)
            return
        self._error(data["id"] if _valid_id(data.get("id")) else None, code, message)

    def _admit(self, data: dict[str, Any]) -> None:
        method: str = data["method"]
        is_request = "id" in data
        if not is_request:
            if self.gate.admits_notification(method):
                self._deliver(data, is_request=False)
            else:
                log.info("Dropped the notification %.80r: the server is %s", method, self.gate.stage.value)
            return
        refusal = self.gate.refuse_request(method)
        if refusal is not None:
            self._error(data["id"], refusal.code, refusal.message)
        else:
            self._deliver(data, is_request=True)

    def _deliver(self, data: dict[str, Any], is_request: bool) -> None:
        try:
            message = self.protocol.structure_message(data)
        except JsonRpcException as exc:
            if is_request:
                self._error(data["id"], exc.code, exc.message or "Invalid params.")
            return
        except Exception:
            log.exception("Could not decode %s", data.get("method"))
            if is_request:
                self._error(data["id"], INVALID_REQUEST, "The message could not be decoded.")
            return
        if is_request:
            self.gate.handing_on(data["method"])
        try:
            self.protocol.handle_message(cast(Any, message))
        except Exception as exc:
            log.exception("Could not handle %s", data.get("method"))
            if is_request:
                error = internal_error(data["id"], repr(exc))
                self._error(data["id"], error.code, error.message, error.data)

    def _error(self, msg_id: Any, code: int, message: str, data: Any = None) -> None:
        error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        frame = {"jsonrpc": "2.0", "id": msg_id, "error": error}
        self.protocol._send_data(frame)  # pyright: ignore[reportPrivateUsage]


def _leading_id(body: bytes) -> Any:
    match = _ID.match(body)
    if match is None:
        return None
    try:
        return json.loads(match.group(1))
    except ValueError:
        return None


def _shape_problem(data: dict[str, Any]) -> tuple[int, str] | None:
    if "method" in data:
        if not isinstance(data["method"], str):
            return INVALID_REQUEST, "`method` must be a string."
        if "id" in data and not _valid_id(data["id"]):
            return INVALID_REQUEST, "`id` must be a string or an integer."
        if "params" in data and data["params"] is not None and not isinstance(data["params"], dict | list):
            return INVALID_PARAMS, "`params` must be an object or an array."
        return None
    if "id" in data and ("result" in data or "error" in data):
        return None
    return INVALID_REQUEST, "A message needs a `method`, or an `id` with a `result` or `error`."


def _raw_reader(stdin: BinaryIO) -> Callable[[int], bytes]:
    try:
        fd = stdin.fileno()
    except (OSError, ValueError, AttributeError):
        return stdin.read  # an in-memory stream (tests): no lock problem at exit
    return lambda size: os.read(fd, size)


async def serve(stop: threading.Event, stdin: BinaryIO, protocol: JsonRPCProtocol) -> None:
    """Reads frames until stdin closes or `stop` is set."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()

    def pump_stdin() -> None:
        # os.read on the descriptor takes no Python-level lock: a daemon thread blocked in a buffered
        # read would make the interpreter abort at exit ("could not acquire lock ... at shutdown").
        read = _raw_reader(stdin)
        while True:
            try:
                data = read(65536)
            except (OSError, ValueError):
                data = b""
            loop.call_soon_threadsafe(chunks.put_nowait, data)
            if not data:
                return

    threading.Thread(target=pump_stdin, name="stdin", daemon=True).start()
    frames, pump = FrameReader(), MessagePump(protocol)
    while not stop.is_set():
        data = await chunks.get()
        if not data:
            return
        frames.feed(data)
        while (body := frames.next_body()) is not None:
            stage = pump.gate.stage
            if not pump.handle(body):
                frames.resync_within(body)
            if pump.gate.stage is not stage:
                await asyncio.sleep(0)

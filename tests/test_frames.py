"""Malformed frames on the server's stdin: bad headers, wrong lengths, bad bytes, odd JSON, a flood.

What a peer may expect: the server never crashes, never writes anything but frames to stdout, answers
every well-formed request (with an id it can read) with a result or a JSON-RPC error, and after a broken
frame finds the next well-formed one (losing at most the frame a wrong length ran into).

`QuietServer` (used by the other byte-level test files too) drains the server's stderr as it is written:
tracebacks of refused requests would otherwise fill the pipe and block the server.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import server_env
from rawlsp import RawServer

# Generous: the machine is shared and loaded; a healthy server answers these in milliseconds.
ANSWER_WITHIN = 5.0
MODELS = "switchboard/models"


class QuietServer(RawServer):
    """A RawServer that indexes answers by any JSON id."""

    def __init__(self, env: dict[str, str], command: list[str] | None = None) -> None:
        super().__init__(env, command)
        self._answers: dict[str, dict[str, Any]] = {}
        self._indexed = 0

    @staticmethod
    def key(msg_id: Any) -> str:
        return json.dumps(msg_id, sort_keys=True)

    def _index(self) -> None:
        for item in self.frames[self._indexed :]:
            if isinstance(item, dict) and "id" in item and ("result" in item or "error" in item):
                self._answers.setdefault(self.key(item["id"]), item)
        self._indexed = len(self.frames)

    def answered(self, msg_id: Any) -> dict[str, Any] | None:
        with self._cond:
            self._index()
            return self._answers.get(self.key(msg_id))

    def wait_for(self, msg_id: Any, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._index()
                if (answer := self._answers.get(self.key(msg_id))) is not None:
                    return answer
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no answer to {msg_id!r} within {timeout}s")
                self._cond.wait(remaining)

    def wait_for_answers(self, count: int, timeout: float) -> int:
        """Waits until `count` distinct ids are answered; returns how many are."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._index()
                remaining = deadline - time.monotonic()
                if len(self._answers) >= count or remaining <= 0:
                    return len(self._answers)
                self._cond.wait(remaining)

    def initialize(self, workspace: str, timeout: float = 60) -> dict[str, Any]:
        self.request(0, "initialize", {"processId": None, "rootUri": workspace, "capabilities": {}})
        answer = self.wait_for(0, timeout)
        self.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        return answer

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> int:
        self.proc.kill()
        code = self.proc.wait()
        self._finish()
        return code

    def close(self, timeout: float = 30) -> int:
        try:
            self.request("bye", "shutdown")
            self.wait_for("bye", timeout)
            self.send({"jsonrpc": "2.0", "method": "exit"})
            code = self.proc.wait(timeout)
        except Exception:
            self.proc.kill()
            code = self.proc.wait()
        self._finish()
        return code

    def _finish(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        self._reader.join(timeout=10)
        self._drain.join(timeout=10)
        self.stderr = bytes(self.stderr_bytes)


def frame(body: bytes | Any, header: bytes | None = None) -> bytes:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (header if header is not None else b"Content-Length: %d\r\n\r\n" % len(data)) + data


def request(msg_id: Any, method: str = MODELS, params: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": {} if params is None else params}


IDS = itertools.count(1_000)


def dicts(frames: list[Any]) -> list[dict[str, Any]]:
    return [f for f in frames if isinstance(f, dict)]


def start(state_dir: Path, workspace: str) -> QuietServer:
    proc = QuietServer(server_env(state_dir, None))
    proc.initialize(workspace)
    return proc


def stop(proc: QuietServer) -> None:
    if proc.alive:
        proc.close(timeout=5)
    else:
        proc.kill()


@pytest.fixture
def server(state_dir: Path, workspace: str) -> Iterator[QuietServer]:
    """A process of its own, for input that breaks the framing."""
    proc = start(state_dir, workspace)
    yield proc
    stop(proc)


@pytest.fixture(scope="module")
def _shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[QuietServer]]:
    holder: list[QuietServer] = []
    yield holder
    for proc in holder:
        stop(proc)


@pytest.fixture
def shared(_shared: list[QuietServer], tmp_path_factory: pytest.TempPathFactory) -> QuietServer:
    """One process for input that keeps the framing intact; replaced if an earlier test killed it."""
    if not _shared or not _shared[-1].alive:
        root = tmp_path_factory.mktemp("frames")
        (root / "state").mkdir()
        _shared.append(start(root / "state", (root / "project").as_uri()))
    return _shared[-1]


def assert_healthy(server: QuietServer) -> None:
    """The server is alive, answers a well-formed request, and has written only frames to stdout."""
    msg_id = next(IDS)
    server.send(request(msg_id))
    answer = server.wait_for(msg_id, ANSWER_WITHIN)
    assert "result" in answer, answer
    assert server.alive
    assert server.stray == [], f"stdout carried non-frame bytes: {server.stray[:3]!r}"


def assert_no_internal_errors(server: QuietServer, since: int = 0) -> None:
    internal = [f for f in dicts(server.frames[since:]) if (f.get("error") or {}).get("code") == -32603]
    assert internal == [], f"bad input answered as an internal error: {json.dumps(internal)[:500]}"


# --- headers and lengths (a process each) ---------------------------------------------------------------

BODY = json.dumps(request(1)).encode()

RESYNC_CASES = {
    "lowercase-header-name": b"content-length: %d\r\n\r\n" % len(BODY) + BODY,
    "no-space-after-colon": b"Content-Length:%d\r\n\r\n" % len(BODY) + BODY,
    "missing-content-length": b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n" + BODY,
    "non-numeric-length": b"Content-Length: twelve\r\n\r\n" + BODY,
    "negative-length": b"Content-Length: -5\r\n\r\n" + BODY,
    "length-too-short": b"Content-Length: %d\r\n\r\n" % (len(BODY) - 7) + BODY,
    "garbage-line-before-header": b"hello there\r\n" + frame(BODY),
}


@pytest.mark.parametrize("bad", list(RESYNC_CASES.values()), ids=list(RESYNC_CASES))
def test_the_server_finds_the_next_frame_after_a_broken_header(server: QuietServer, bad: bytes) -> None:
    server.send_bytes(bad)
    # The next frames follow at once, as a client writing back to back sends them.
    server.send_bytes(frame(request(2)) + frame(request(3)))
    for msg_id in (2, 3):
        assert "result" in server.wait_for(msg_id, ANSWER_WITHIN), f"request {msg_id} after the bad frame"
    assert_healthy(server)


def test_a_length_that_runs_into_the_next_frame_loses_only_that_frame(server: QuietServer) -> None:
    server.send_bytes(b"Content-Length: %d\r\n\r\n" % (len(BODY) + 20) + BODY)
    server.send_bytes(frame(request(2)) + frame(request(3)) + frame(request(4)))
    for msg_id in (3, 4):
        assert "result" in server.wait_for(msg_id, ANSWER_WITHIN), f"request {msg_id} after the bad frame"
    assert_healthy(server)


def test_an_absurd_content_length_does_not_crash_the_server(server: QuietServer) -> None:
    server.send_bytes(b"Content-Length: 99999999999\r\n\r\n" + BODY)
    server.send_bytes(frame(request(2)))
    with contextlib.suppress(TimeoutError):
        server.wait_for(2, ANSWER_WITHIN)
    assert server.alive, f"the server died: {server.stderr_bytes.decode(errors='replace')[-600:]}"
    assert_healthy(server)


def test_a_truncated_body_then_end_of_input_exits_cleanly(server: QuietServer) -> None:
    server.send_bytes(b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY[:20])
    assert server.proc.stdin is not None
    server.proc.stdin.close()
    assert server.proc.wait(ANSWER_WITHIN) in (0, 1), "the server exits when its input ends"
    server.kill()
    assert server.stray == []
    assert b"MemoryError" not in server.stderr


def test_a_root_uri_with_a_lone_surrogate_is_not_an_internal_error_later(state_dir: Path) -> None:
    """The root URI becomes the default workspace, a key in SQLite: it must be refused or ignored, never
    reach SQLite and fail every later request that falls back to it."""
    proc = QuietServer(server_env(state_dir, None))
    try:
        proc.request(0, "initialize", {"processId": None, "rootUri": "file:///x\ud800", "capabilities": {}})
        proc.wait_for(0, 60)
        proc.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        proc.request(1, MODELS, {})
        proc.request(
            2, "workspace/executeCommand", {"command": "switchboard.newConversation", "arguments": []}
        )
        for msg_id in (1, 2):
            answer = proc.wait_for(msg_id, ANSWER_WITHIN)
            assert answer.get("error", {}).get("code") in (None, -32602), answer
    finally:
        stop(proc)


# --- framing intact (one shared process) ----------------------------------------------------------------


def test_a_frame_split_into_single_bytes_is_answered(shared: QuietServer) -> None:
    msg_id = next(IDS)
    for byte in frame(request(msg_id)):
        shared.send_bytes(bytes([byte]))
    assert "result" in shared.wait_for(msg_id, ANSWER_WITHIN)


def test_many_frames_in_one_write_are_all_answered(shared: QuietServer) -> None:
    ids = [next(IDS) for _ in range(50)]
    shared.send_bytes(b"".join(frame(request(i)) for i in ids))
    for msg_id in ids:
        assert "result" in shared.wait_for(msg_id, ANSWER_WITHIN)


UNREADABLE_BODIES = {
    "invalid-utf8-in-a-string": BODY.replace(b'"params": {}', b'"params": {"x": "\xff\xfe"}'),
    "invalid-utf8-lead-byte": b"\xc3\x28" + BODY,
    "not-json": b"this is not json",
    "truncated-json": BODY[:-9],
    "number": b"42",
    "string": b'"hello"',
    "null": b"null",
    "true": b"true",
    "empty-array": b"[]",
    "array-of-numbers": b"[1, 2, 3]",
    "empty-object": b"{}",
    "nan": b"NaN",
    "batch": json.dumps([request(1), request(11)]).encode(),
    "no-jsonrpc-member": json.dumps({"id": 1, "method": MODELS, "params": {}}).encode(),
    "jsonrpc-1.0": json.dumps({"jsonrpc": "1.0", "id": 1, "method": MODELS, "params": {}}).encode(),
    "bom-prefixed": b"\xef\xbb\xbf" + BODY,
}


@pytest.mark.parametrize("body", list(UNREADABLE_BODIES.values()), ids=list(UNREADABLE_BODIES))
def test_an_unreadable_or_non_object_body_is_survived(shared: QuietServer, body: bytes) -> None:
    """No id can be relied on here (LSP has no batches): the server may answer with id null or not at all,
    but it must keep serving, keep stdout clean, and never answer with an internal error."""
    since = len(shared.frames)
    shared.send_bytes(frame(body))
    assert_healthy(shared)
    mine = shared.frames[since:]
    assert all(isinstance(f, dict) for f in mine), "a batch reply, though LSP has no batches"
    for answer in [f for f in dicts(mine) if "error" in f]:
        assert answer["id"] is None and answer["error"]["code"] in (-32700, -32600), answer
    assert_no_internal_errors(shared, since)


# Each with the error codes acceptable for it (a result is never acceptable). `ID` is replaced
# by a fresh id. (An invalid id is answered with id null: see the rows of test_conformance.py.)
ID = object()
MALFORMED_REQUESTS: dict[str, tuple[dict[str, Any], set[int | None]]] = {
    "method-is-a-number": ({"jsonrpc": "2.0", "id": ID, "method": 42}, {-32600, -32601}),
    "method-is-null": ({"jsonrpc": "2.0", "id": ID, "method": None}, {-32600, -32601}),
    "params-is-a-string": ({"jsonrpc": "2.0", "id": ID, "method": MODELS, "params": "x"}, {-32602}),
    "params-is-an-array": ({"jsonrpc": "2.0", "id": ID, "method": MODELS, "params": [1]}, {-32602}),
    "execute-command-arguments-not-a-list": (
        request(ID, "workspace/executeCommand", {"command": "switchboard.newConversation", "arguments": 5}),
        {-32602},
    ),
    "execute-command-without-command": (request(ID, "workspace/executeCommand", {"arguments": []}), {-32602}),
    "notification-method-sent-as-request": (
        request(ID, "window/workDoneProgress/cancel", {}),
        {-32600, -32601, -32602},
    ),
}


@pytest.mark.parametrize(
    ("message", "acceptable"), list(MALFORMED_REQUESTS.values()), ids=list(MALFORMED_REQUESTS)
)
def test_a_malformed_request_with_a_readable_id_gets_an_error_not_silence(
    shared: QuietServer, message: dict[str, Any], acceptable: set[int | None]
) -> None:
    if message["id"] is ID:
        message = {**message, "id": next(IDS)}
    shared.send(message)
    answer = shared.wait_for(message["id"], ANSWER_WITHIN)
    code = answer["error"]["code"] if "error" in answer else None
    assert code in acceptable, answer
    assert_healthy(shared)


@pytest.mark.parametrize("depth", [100, 900, 5_000, 100_000])
def test_deeply_nested_params_are_answered(shared: QuietServer, depth: int) -> None:
    msg_id = next(IDS)
    body = b'{"jsonrpc":"2.0","id":%d,"method":"switchboard/models","params":{"workspaceUri":%s%s}}' % (
        msg_id,
        b"[" * depth,
        b"]" * depth,
    )
    shared.send_bytes(frame(body))
    answer = shared.wait_for(msg_id, ANSWER_WITHIN)
    assert answer.get("error", {}).get("code") in (-32600, -32602), answer
    assert_healthy(shared)


LOOKALIKES = {
    "error-message": {"jsonrpc": "2.0", "id": 1, "error": "boom"},
    "response": {"jsonrpc": "2.0", "id": 1, "result": 1},
    "notification": {"jsonrpc": "2.0", "method": 5},
    "lsp-request": {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": 5},
}


@pytest.mark.parametrize("lookalike", list(LOOKALIKES.values()), ids=list(LOOKALIKES))
def test_params_holding_an_object_that_looks_like_a_jsonrpc_message_are_answered(
    shared: QuietServer, lookalike: dict[str, Any]
) -> None:
    msg_id = next(IDS)
    shared.send(request(msg_id, MODELS, {"workspaceUri": lookalike}))
    answer = shared.wait_for(msg_id, ANSWER_WITHIN)
    assert answer.get("error", {}).get("code") == -32602, answer
    assert_healthy(shared)


def test_unknown_methods_are_method_not_found_and_unknown_notifications_are_ignored(
    shared: QuietServer,
) -> None:
    since = len(shared.frames)
    for method in ["switchboard/nope", "$/nope", "rpc.discover", "", "x" * 10_000]:
        msg_id = next(IDS)
        shared.send(request(msg_id, method))
        answer = shared.wait_for(msg_id, ANSWER_WITHIN)
        assert answer["error"]["code"] == -32601, answer
    shared.send({"jsonrpc": "2.0", "method": "switchboard/nope", "params": {}})
    shared.send({"jsonrpc": "2.0", "method": "$/nope", "params": {}})
    shared.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": "never-sent"}})
    assert_healthy(shared)
    assert [f for f in dicts(shared.frames[since:]) if f.get("id") is None and "error" in f] == []


# --- a flood (a process of its own) ---------------------------------------------------------------------

FLOOD = 10_000
FLOOD_METHODS = (MODELS, "switchboard/conversations", "switchboard/usage", "switchboard/nope")


def test_a_flood_of_10000_pipelined_requests_is_all_answered(server: QuietServer, workspace: str) -> None:
    frames = []
    for msg_id in range(1, FLOOD + 1):
        method = FLOOD_METHODS[msg_id % len(FLOOD_METHODS)]
        frames.append(frame(request(msg_id, method, {"workspaceUri": workspace})))
    writer = threading.Thread(target=server.send_bytes, args=(b"".join(frames),))
    began = time.monotonic()
    writer.start()
    answered = server.wait_for_answers(FLOOD + 1, timeout=300)
    writer.join(timeout=60)
    took = time.monotonic() - began
    assert answered == FLOOD + 1, f"{FLOOD + 1 - answered} requests never answered"
    print(f"{FLOOD} pipelined requests answered in {took:.1f}s")

    for msg_id in range(1, FLOOD + 1):
        answer = server.answered(msg_id)
        assert answer is not None
        expect_error = FLOOD_METHODS[msg_id % len(FLOOD_METHODS)] == "switchboard/nope"
        assert ("error" in answer) is expect_error, answer
    answers = [f for f in dicts(server.frames) if "id" in f and ("result" in f or "error" in f)]
    assert len(answers) == FLOOD + 1, "every request answered exactly once"
    assert_no_internal_errors(server)
    assert_healthy(server)

"""JSON-RPC 2.0 and LSP conformance of the real server process over stdio: one table, one row per case.

Each row sends bytes to a server at one stage of its session (not initialized, running, shut down) and
states every frame the server writes in reply, exactly and in order; a row that ends the process states
its exit code too. The rows come from:

- every example in section 7 of the JSON-RPC 2.0 specification, sent verbatim (`subtract`, `update`,
  `foobar`, `sum`... are not Switchboard methods, so a request of one is an unknown method here, and a
  batch gets the one answer documented in docs/protocol.md: LSP has no batches);
- JSON-RPC section 5 (an invalid id is answered with `"id": null`) and the LSP base protocol (headers,
  `$/` methods);
- the LSP lifecycle (`initialize`, `shutdown`, `exit`, end of input).

After a row that leaves the server running, a probe request follows: its answer proves that every frame
written in reply to the row has been read (the server answers in order what it refuses itself).
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from conftest import server_env
from test_frames import QuietServer, frame, start, stop

Stage = Literal["not initialized", "running", "shut down"]
WITHIN = 30.0  # generous for a loaded machine and a cold start; a healthy server answers in milliseconds
WORKSPACE = "file:///conformance/project"  # a key for the server, never opened
PROBES = itertools.count(1)


@dataclass(frozen=True)
class Row:
    stage: Stage
    send: bytes
    answers: tuple[dict[str, Any], ...] = ()
    exit_code: int | None = None  # the row ends the process with this code
    own_process: bool = False  # the row changes the stage, so it cannot share a process
    close_stdin: bool = False


def error(msg_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    return {"jsonrpc": "2.0", "id": msg_id, "error": body}


def result(msg_id: Any, value: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "result": value}


def message(**fields: Any) -> bytes:
    return frame({"jsonrpc": "2.0", **fields})


def parse_error() -> dict[str, Any]:
    return error(None, -32700, "The message is not valid JSON.")


def unknown(msg_id: Any, method: str) -> dict[str, Any]:
    return error(msg_id, -32601, f"Method Not Found: {method}")


BATCH = error(None, -32600, "Batch requests are not supported by the Language Server Protocol.")
BAD_ID = "`id` must be a string or an integer."
NOT_INITIALIZED = "The server is not initialized: send `initialize` first."
SHUTTING_DOWN = "The server is shutting down: only `exit` is accepted."
INITIALIZE = {"processId": None, "rootUri": WORKSPACE, "capabilities": {}}
# The answer documented in docs/protocol.md ("initialize result (real)").
INITIALIZE_RESULT = {
    "capabilities": {
        "positionEncoding": "utf-16",
        "textDocumentSync": {"openClose": True, "change": 2, "save": False},
        "executeCommandProvider": {"commands": ["switchboard.selectModel", "switchboard.newConversation"]},
        "workspace": {
            "workspaceFolders": {"supported": True, "changeNotifications": True},
            "fileOperations": {},
        },
    },
    "serverInfo": {"name": "switchboard", "version": "0.1.0"},
}
# A request only a loaded feature answers, the same way every time.
DELETE_NOPE = {"workspaceUri": WORKSPACE, "conversationId": "nope"}
NO_CONVERSATION = (1005, "No conversation 'nope' in this workspace.", {"conversationId": "nope"})
DID_OPEN = {"textDocument": {"uri": f"{WORKSPACE}/a.py", "languageId": "python", "version": 1, "text": ""}}
BODY = json.dumps({"jsonrpc": "2.0", "id": "cl", "method": "$/nope"}).encode()

JSON_RPC_SECTION_7: dict[str, Row] = {
    "7-call-positional-params": Row(
        "running",
        frame(b'{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}'),
        (unknown(1, "subtract"),),
    ),
    "7-call-positional-params-swapped": Row(
        "running",
        frame(b'{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}'),
        (unknown(2, "subtract"),),
    ),
    "7-call-named-params": Row(
        "running",
        frame(
            b'{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}'
        ),
        (unknown(3, "subtract"),),
    ),
    "7-call-named-params-reordered": Row(
        "running",
        frame(
            b'{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}'
        ),
        (unknown(4, "subtract"),),
    ),
    "7-notification-with-params": Row(
        "running", frame(b'{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}')
    ),
    "7-notification-without-params": Row("running", frame(b'{"jsonrpc": "2.0", "method": "foobar"}')),
    "7-non-existent-method": Row(
        "running", frame(b'{"jsonrpc": "2.0", "method": "foobar", "id": "1"}'), (unknown("1", "foobar"),)
    ),
    "7-invalid-json": Row(
        "running", frame(b'{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]'), (parse_error(),)
    ),
    "7-invalid-request-object": Row(
        "running",
        frame(b'{"jsonrpc": "2.0", "method": 1, "params": "bar"}'),
        (error(None, -32600, "`method` must be a string."),),
    ),
    "7-batch-invalid-json": Row(
        "running",
        frame(
            b'[\n  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},\n'
            b'  {"jsonrpc": "2.0", "method"\n]'
        ),
        (parse_error(),),
    ),
    "7-batch-empty-array": Row("running", frame(b"[]"), (BATCH,)),
    "7-batch-not-empty-but-invalid": Row("running", frame(b"[1]"), (BATCH,)),
    "7-batch-invalid": Row("running", frame(b"[1,2,3]"), (BATCH,)),
    # Not one of the calls runs: `foo.get` (id "5") would be answered -32601 at once.
    "7-batch-mixed": Row(
        "running",
        frame(
            b'[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},'
            b'{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},'
            b'{"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},'
            b'{"foo": "boo"},'
            b'{"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},'
            b'{"jsonrpc": "2.0", "method": "get_data", "id": "9"}]'
        ),
        (BATCH,),
    ),
    "7-batch-all-notifications": Row(
        "running",
        frame(
            b'[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},'
            b'{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]'
        ),
        (BATCH,),
    ),
}

JSON_RPC_MORE: dict[str, Row] = {
    "id-object": Row(
        "running",
        message(id={"a": 1}, method="switchboard/models", params={}),
        (error(None, -32600, BAD_ID),),
    ),
    "id-empty-object": Row("running", message(id={}, method="$/nope"), (error(None, -32600, BAD_ID),)),
    "id-array": Row("running", message(id=[1], method="switchboard/models"), (error(None, -32600, BAD_ID),)),
    "id-true": Row("running", message(id=True, method="switchboard/models"), (error(None, -32600, BAD_ID),)),
    "id-false": Row(
        "running", message(id=False, method="switchboard/models"), (error(None, -32600, BAD_ID),)
    ),
    "id-fraction": Row(
        "running", message(id=1.5, method="switchboard/models"), (error(None, -32600, BAD_ID),)
    ),
    "id-null": Row("running", message(id=None, method="switchboard/models"), (error(None, -32600, BAD_ID),)),
    "id-string-is-echoed": Row(
        "running",
        message(id="x", method="switchboard/models", params="bar"),
        (error("x", -32602, "`params` must be an object or an array."),),
    ),
    "id-integer-past-2-63-is-echoed": Row(
        "running", message(id=2**64, method="$/nope"), (unknown(2**64, "$/nope"),)
    ),
    "only-jsonrpc-member": Row(
        "running",
        frame(b'{"jsonrpc": "2.0"}'),
        (error(None, -32600, "A message needs a `method`, or an `id` with a `result` or `error`."),),
    ),
    "response-without-id-is-not-answered": Row("running", frame(b'{"jsonrpc": "2.0", "result": 1}')),
    "request-with-a-result-member-is-still-a-request": Row(
        "running", message(id={}, method="$/nope", result=1), (error(None, -32600, BAD_ID),)
    ),
    "not-jsonrpc-2.0": Row(
        "running", frame(b'{"id": 7}'), (error(None, -32600, "Not a JSON-RPC 2.0 message."),)
    ),
    "invalid-params-not-structured": Row(
        "running",
        message(id=10, method="switchboard/models", params="bar"),
        (error(10, -32602, "`params` must be an object or an array."),),
    ),
    "invalid-params-array-for-named": Row(
        "running",
        message(id=11, method="switchboard/models", params=[42, 23]),
        (
            error(
                11,
                -32602,
                "Params must be a JSON object, not list.",
                {"modelId": None, "errors": ["params: expected an object"]},
            ),
        ),
    ),
    "invalid-params-value": Row(
        "running",
        message(
            id=12, method="switchboard/selectModel", params={"workspaceUri": WORKSPACE, "modelId": "gpt-5"}
        ),
        (
            error(
                12,
                -32602,
                "Unknown model 'gpt-5'. Choose one of: auto, claude-haiku-4.5, claude-sonnet-4.0, "
                "claude-sonnet-4.5, claude-opus-4.5.",
                {"modelId": "gpt-5", "errors": []},
            ),
        ),
    ),
}

LSP_BASE_PROTOCOL: dict[str, Row] = {
    "content-type-before-content-length": Row(
        "running",
        b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: %d\r\n\r\n" % len(BODY)
        + BODY,
        (unknown("cl", "$/nope"),),
    ),
    "content-length-in-lowercase": Row(
        "running", b"content-length: %d\r\n\r\n" % len(BODY) + BODY, (unknown("cl", "$/nope"),)
    ),
    # Without a length the body cannot be delimited: it is skipped up to the next header, unanswered.
    "content-length-missing": Row(
        "running", b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n" + BODY
    ),
    "content-length-not-a-number": Row("running", b"Content-Length: twelve\r\n\r\n" + BODY),
    "content-length-too-short": Row(
        "running", b"Content-Length: %d\r\n\r\n" % (len(BODY) - 5) + BODY, (parse_error(),)
    ),
    # The body runs into the next frame, whose header is then lost with it; the frame after is read.
    "content-length-too-long": Row(
        "running",
        b"Content-Length: %d\r\n\r\n" % (len(BODY) + 5) + BODY + message(id="lost", method="$/nope"),
        (parse_error(),),
    ),
    "unknown-dollar-notification-is-ignored": Row("running", message(method="$/nope", params={})),
    "unknown-dollar-request-is-method-not-found": Row(
        "running", message(id=20, method="$/nope", params={}), (unknown(20, "$/nope"),)
    ),
    "cancel-of-an-unknown-request-is-ignored": Row(
        "running", message(method="$/cancelRequest", params={"id": "never-sent"})
    ),
}

LIFECYCLE: dict[str, Row] = {
    "request-before-initialize": Row(
        "not initialized",
        message(id=30, method="switchboard/models", params={}),
        (error(30, -32002, NOT_INITIALIZED),),
    ),
    "standard-request-before-initialize": Row(
        "not initialized",
        message(id=31, method="workspace/executeCommand", params={"command": "switchboard.newConversation"}),
        (error(31, -32002, NOT_INITIALIZED),),
    ),
    "unknown-request-before-initialize": Row(
        "not initialized", message(id=32, method="foobar"), (error(32, -32002, NOT_INITIALIZED),)
    ),
    "shutdown-before-initialize": Row(
        "not initialized", message(id=33, method="shutdown"), (error(33, -32002, NOT_INITIALIZED),)
    ),
    "notifications-before-initialize-are-dropped": Row(
        "not initialized",
        message(method="initialized", params={})
        + message(method="textDocument/didOpen", params=DID_OPEN)
        + message(method="$/cancelRequest", params={"id": 30})
        + message(method="switchboard/nope", params={}),
    ),
    "malformed-request-before-initialize-is-still-malformed": Row(
        "not initialized", message(id=[34], method="switchboard/models"), (error(None, -32600, BAD_ID),)
    ),
    "exit-before-initialize": Row("not initialized", message(method="exit"), exit_code=1),
    # A client that does not wait for the initialize answer (Neovim's) sends both in one write.
    "initialize-then-a-request-in-one-write": Row(
        "not initialized",
        message(id=0, method="initialize", params=INITIALIZE)
        + message(id=35, method="switchboard/deleteConversation", params=DELETE_NOPE),
        (result(0, INITIALIZE_RESULT), error(35, *NO_CONVERSATION)),
        own_process=True,
    ),
    "initialize-refused-for-its-params-can-be-retried": Row(
        "not initialized",
        message(id=0, method="initialize", params={"capabilities": 5})
        + message(id=1, method="initialize", params=INITIALIZE),
        (error(0, -32602, "Invalid Params"), result(1, INITIALIZE_RESULT)),
        own_process=True,
    ),
    "second-initialize": Row(
        "running",
        message(id=36, method="initialize", params=INITIALIZE),
        (error(36, -32600, "The server is already initialized."),),
    ),
    "initialize-or-shutdown-as-notification-is-dropped": Row(
        "running", message(method="initialize", params=INITIALIZE) + message(method="shutdown")
    ),
    "exit-without-shutdown": Row("running", message(method="exit"), exit_code=1),
    "exit-after-shutdown": Row(
        "running",
        message(id=37, method="shutdown") + message(method="exit"),
        (result(37, None),),
        exit_code=0,
    ),
    "end-of-input-ends-the-server": Row("running", b"", exit_code=0, close_stdin=True),
    "end-of-input-before-initialize-ends-the-server": Row(
        "not initialized", b"", exit_code=0, close_stdin=True
    ),
    "request-after-shutdown": Row(
        "shut down",
        message(id=38, method="switchboard/models", params={}),
        (error(38, -32600, SHUTTING_DOWN),),
    ),
    "initialize-after-shutdown": Row(
        "shut down",
        message(id=39, method="initialize", params=INITIALIZE),
        (error(39, -32600, SHUTTING_DOWN),),
    ),
    "notification-after-shutdown-is-dropped": Row(
        "shut down", message(method="textDocument/didOpen", params=DID_OPEN)
    ),
}

ROWS = {**JSON_RPC_SECTION_7, **JSON_RPC_MORE, **LSP_BASE_PROTOCOL, **LIFECYCLE}


def launch(root: Path, stage: Stage) -> QuietServer:
    state = root / "state"
    state.mkdir()
    if stage == "not initialized":
        return QuietServer(server_env(state, None))
    server = start(state, WORKSPACE)
    if stage == "shut down":
        server.request("down", "shutdown")
        assert server.wait_for("down", WITHIN) == result("down", None)
    return server


@pytest.fixture(scope="module")
def shared_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[Stage, QuietServer]]:
    """One process per stage for the rows that leave the stage as it is; started when first needed."""
    servers: dict[Stage, QuietServer] = {}
    yield servers
    for server in servers.values():
        if server.alive:
            server.request("bye", "shutdown")
            with contextlib.suppress(TimeoutError):
                server.wait_for("bye", WITHIN)
            server.send({"jsonrpc": "2.0", "method": "exit"})
        server.kill()


@pytest.fixture
def server_for(
    request: pytest.FixtureRequest,
    shared_servers: dict[Stage, QuietServer],
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[QuietServer]:
    row: Row = request.param
    if row.own_process or row.exit_code is not None:
        server = launch(tmp_path, row.stage)
        yield server
        stop(server)
        return
    if row.stage not in shared_servers or not shared_servers[row.stage].alive:
        shared_servers[row.stage] = launch(tmp_path_factory.mktemp("conformance"), row.stage)
    yield shared_servers[row.stage]


def replies_since(server: QuietServer, since: int, expected: tuple[dict[str, Any], ...]) -> list[Any]:
    """What the server wrote after `since`, once a probe request sent now is answered."""
    probe = f"probe-{next(PROBES)}"
    server.send({"jsonrpc": "2.0", "id": probe, "method": "$/probe"})
    server.wait_for(probe, WITHIN)
    for answer in expected:  # a result computed by a feature may come after the probe's answer
        if answer["id"] is not None:
            server.wait_for(answer["id"], WITHIN)
    return [f for f in server.frames_from(since) if f.get("id") != probe]


@pytest.mark.parametrize(
    ("server_for", "row"), [(row, row) for row in ROWS.values()], ids=list(ROWS), indirect=["server_for"]
)
def test_conformance(server_for: QuietServer, row: Row) -> None:
    server = server_for
    since = len(server.frames)
    server.send_bytes(row.send)
    if row.close_stdin:
        assert server.proc.stdin is not None
        server.proc.stdin.close()
    if row.exit_code is not None:
        assert server.proc.wait(WITHIN) == row.exit_code
        server.kill()  # only collects what it wrote: the process has ended
        assert server.frames_from(since) == list(row.answers)
    else:
        assert replies_since(server, since, row.answers) == list(row.answers)
        assert server.alive
    assert server.stray == [], f"stdout carried non-frame bytes: {server.stray[:3]!r}"

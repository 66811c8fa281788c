"""Property-based fuzzing of every method's params against ONE long-lived server and the fake API.

Hypothesis draws params per method from a valid shape and then breaks them, one family at a time: wrong
types, missing and extra fields, nulls, huge strings, odd Unicode (lone surrogates escaped in JSON, NUL,
bidi controls), deep nesting and absurd numbers. The oracle is the method's own params model: what it
refuses must come back as `-32602`; what it accepts may succeed or fail with a Switchboard error. Never
`-32603`, never silence: every request is answered within `ANSWER_WITHIN` (chats that really run get
`CHAT_WITHIN`), stdout carries only frames, and a conversation stored before fuzzing is intact after.

`SWITCHBOARD_LONG_TESTS=1` runs many more examples per method.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from conftest import server_env
from switchboard.catalog import CATALOG
from switchboard.fakeapi import FakeAnthropic
from switchboard.features.base import parse_params
from switchboard.protocol import methods
from switchboard.protocol.errors import InvalidParams
from test_frames import QuietServer

LONG = os.environ.get("SWITCHBOARD_LONG_TESTS") == "1"
EXAMPLES = 400 if LONG else 60
# The bound for an answer (result or error); a healthy server needs a few milliseconds.
ANSWER_WITHIN = 1.0
CHAT_WITHIN = 30.0
DOMAIN_ERRORS = {-32602, 1001, 1002, 1003, 1004, 1005, 1006}
TEN_MB = 10 * 1024 * 1024
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@dataclass
class Target:
    server: QuietServer
    workspace: str
    other_workspace: str
    conversation_id: str
    answer_id: str
    turns_before: list[dict[str, Any]]
    state_dir: Path
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1000))
    outcomes: Counter[tuple[str, str, str]] = field(default_factory=Counter[tuple[str, str, str]])
    slowest: dict[str, float] = field(default_factory=dict[str, float])

    def call(self, method: str, params: Any, within: float) -> dict[str, Any]:
        msg_id = next(self.ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}
        body = json.dumps(message).encode()  # lone surrogates go out as \\udXXX escapes
        self.server.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        sent = time.monotonic()
        try:
            answer = self.server.wait_for(msg_id, within)
        except TimeoutError:
            alive = "alive" if self.server.alive else f"dead ({self.server.proc.poll()})"
            raise AssertionError(f"{method}: no answer within {within}s (server {alive})") from None
        took = time.monotonic() - sent
        self.slowest[method] = max(self.slowest.get(method, 0.0), took)
        return answer


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    root = tmp_path_factory.mktemp("fuzz")
    state_dir = root / "state"
    state_dir.mkdir()
    workspace = (root / "project").as_uri()
    with FakeAnthropic(host="127.0.0.1", port=0) as fake:
        server = QuietServer(server_env(state_dir, fake))
        server.initialize(workspace)
        server.request(1, "switchboard/chat", {"workspaceUri": workspace, "prompt": "Seed question one"})
        first = server.wait_for(1, CHAT_WITHIN)["result"]
        conversation = first["conversationId"]
        server.request(
            2,
            "switchboard/chat",
            {"workspaceUri": workspace, "prompt": "Seed question two", "conversationId": conversation},
        )
        second = server.wait_for(2, CHAT_WITHIN)["result"]
        server.request(
            3, "switchboard/conversation", {"workspaceUri": workspace, "conversationId": conversation}
        )
        turns = server.wait_for(3, CHAT_WITHIN)["result"]["turns"]
        yield Target(
            server=server,
            workspace=workspace,
            other_workspace=(root / "other").as_uri(),
            conversation_id=conversation,
            answer_id=second["turnId"],
            turns_before=turns,
            state_dir=state_dir,
        )
        server.close()


# --- strategies ----------------------------------------------------------------------------------------

# Dict keys never include "jsonrpc": an object with that key inside params is a known, separately tested
# failure (test_frames.py::test_params_holding_an_object_that_looks_like_a_jsonrpc_message_are_answered).
KEYS = st.text(max_size=12).filter(lambda key: key != "jsonrpc")
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)
ODD_STRINGS = st.sampled_from(
    [
        "\ud800",
        "\udfff",
        "a\ud83d",  # half of an emoji's surrogate pair
        "\udc00\ud800",  # a reversed pair
        "\x00",
        "nul\x00inside",
        "\u202eevil\u202c",
        "\ufeffbom",
        "line\u2028sep",
        "e\u0301\u0301\u0301",
        "\U0001f600" * 50,
        "\uffff\ufffe",
        "%00%2e%2e%2f",
        "../../../../etc/passwd",
        "'; DROP TABLE turns; --",
        "file:///tmp/project/%00",
        "\\\\?\\C:\\x",
        "",
        " ",
    ]
) | st.text(alphabet=st.characters(codec=None, categories=["Cs", "Cc", "Cf", "Co", "Mn"]), min_size=1)
HUGE_STRINGS = st.tuples(
    st.sampled_from(["x", "é", "\U0001f600", "\ud800", "\n"]), st.integers(4096, 1_000_000)
).map(lambda pair: pair[0] * pair[1])
ABSURD_NUMBERS = st.sampled_from(
    [
        0,
        -1,
        -(2**31),
        2**31,
        2**53 + 1,
        2**63,
        2**64,
        10**30,
        -(10**30),
        1e308,
        -1e308,
        5e-324,
        -0.0,
        0.5,
        float("inf"),
        float("-inf"),
        float("nan"),
    ]
)


def nested(depth: int, kind: str) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


NESTED = st.builds(nested, st.integers(1, 200), st.sampled_from(["list", "dict"]))


def field_values(target: Target, method: str) -> dict[str, st.SearchStrategy[Any]]:
    """Plausible values for each params field (by wire name): the starting point before breaking them."""
    conversations = [target.conversation_id, "nope", "0" * 32, "../conversations"]
    if method == methods.DELETE_CONVERSATION.method:
        conversations.remove(target.conversation_id)  # the seeded conversation must survive
    text = st.text(min_size=1, max_size=40)
    context_item = st.fixed_dictionaries(
        {"uri": st.sampled_from([target.workspace + "/a.py", "untitled:1"]), "text": st.text(max_size=200)},
        optional={
            "languageId": st.sampled_from(["python", "rust"]),
            "range": st.fixed_dictionaries(
                {
                    "start": st.fixed_dictionaries(
                        {"line": st.integers(0, 50), "character": st.integers(0, 80)}
                    ),
                    "end": st.fixed_dictionaries(
                        {"line": st.integers(0, 50), "character": st.integers(0, 80)}
                    ),
                }
            ),
        },
    )
    return {
        "workspaceUri": st.sampled_from([target.workspace, target.workspace + "/", target.other_workspace])
        | text,
        "prompt": st.sampled_from(["Explain this [[fake:words=5]]", "hi"]) | text,
        "conversationId": st.sampled_from(conversations) | text,
        "modelId": st.sampled_from([*CATALOG, "gpt-4", "AUTO", "claude-opus-4.5 "]) | text,
        "context": st.lists(context_item, max_size=3),
        "thinking": st.fixed_dictionaries({"budgetTokens": st.integers(1024, 4096)}),
        "workDoneToken": st.text(min_size=1, max_size=20) | st.integers(0, 2**31),
        "turnId": st.sampled_from([target.answer_id, "nope"]) | text,
        "enabled": st.booleans(),
        "budgetUsd": st.floats(0.01, 1_000_000),
        "token": st.sampled_from(["not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIn0.e30."]) | text,
    }


FAMILIES = (
    "valid",
    "wrong-type",
    "missing",
    "extra",
    "null",
    "huge",
    "unicode",
    "nesting",
    "numbers",
    "not-object",
)


@st.composite
def fuzzed_params(draw: st.DrawFn, target: Target, request: methods.Request) -> tuple[str, Any]:
    values = field_values(target, request.method)
    fields = {f.alias or name: f for name, f in request.params.model_fields.items()}
    params: dict[str, Any] = {}
    for name, info in fields.items():
        if info.is_required() or draw(st.booleans()):
            params[name] = draw(values.get(name, JSON_VALUES))
    family = draw(st.sampled_from(FAMILIES))
    names = sorted(fields)
    pick = draw(st.sampled_from(names)) if names else None
    if family == "not-object":
        return family, draw(JSON_VALUES.filter(lambda v: not isinstance(v, dict)))
    if family == "missing" and params:
        for name in draw(st.lists(st.sampled_from(sorted(params)), min_size=1, unique=True)):
            del params[name]
    elif family == "extra":
        params.update(draw(st.dictionaries(KEYS, JSON_VALUES, min_size=1, max_size=5)))
    elif pick is None:
        family = "valid"
    elif family == "wrong-type":
        params[pick] = draw(JSON_VALUES.filter(lambda v: type(v) is not type(params.get(pick))))
    elif family == "null":
        for name in draw(st.lists(st.sampled_from(names), min_size=1, unique=True)):
            params[name] = None
    elif family == "huge":
        params[pick] = draw(HUGE_STRINGS)
    elif family == "unicode":
        params[pick] = draw(ODD_STRINGS)
    elif family == "nesting":
        params[pick] = draw(NESTED)
    elif family == "numbers":
        params[pick] = draw(ABSURD_NUMBERS)
    return family, params


def refused_locally(request: methods.Request, params: Any) -> bool:
    """Whether the method's params model refuses `params` as the server will receive them."""
    try:
        parse_params(request.params, json.loads(json.dumps(params)))
    except InvalidParams:
        return True
    return False


def check_answer(target: Target, request: methods.Request, family: str, params: Any) -> None:
    invalid = refused_locally(request, params)
    runs = not invalid and request.method in (methods.CHAT.method, methods.RETRY.method)
    answer = target.call(request.method, params, CHAT_WITHIN if runs else ANSWER_WITHIN)
    code = answer["error"]["code"] if "error" in answer else None
    target.outcomes[(request.method, family, str(code or "result"))] += 1
    event(f"{family} -> {code or 'result'}")
    assert code != -32603, f"bad input answered as an internal error: {answer['error']}"
    if invalid:
        assert code == -32602, f"params the model refuses must be -32602, got {answer}"
    else:
        assert code is None or code in DOMAIN_ERRORS, answer
    if code is not None:
        error = answer["error"]
        assert isinstance(error.get("message"), str) and error["message"], error
        assert "Traceback" not in error["message"]
    assert target.server.alive
    assert target.server.stray == [], f"stdout carried non-frame bytes: {target.server.stray[:3]!r}"


# --- the properties ------------------------------------------------------------------------------------


@pytest.mark.parametrize("request_type", methods.REQUESTS, ids=[r.method for r in methods.REQUESTS])
def test_every_method_answers_fuzzed_params_with_a_result_or_a_proper_error(
    target: Target, request_type: methods.Request
) -> None:
    @FUZZ_SETTINGS
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        family, params = data.draw(fuzzed_params(target, request_type), label="params")
        check_answer(target, request_type, family, params)

    run()


COMMAND_ARGUMENTS = st.lists(JSON_VALUES | ODD_STRINGS | NESTED | ABSURD_NUMBERS, max_size=3)


def test_execute_command_answers_fuzzed_arguments(target: Target) -> None:
    @FUZZ_SETTINGS
    @given(
        command=st.sampled_from([methods.COMMAND_SELECT_MODEL, methods.COMMAND_NEW_CONVERSATION]),
        arguments=COMMAND_ARGUMENTS
        | st.lists(st.fixed_dictionaries({"workspaceUri": JSON_VALUES, "modelId": JSON_VALUES}), max_size=1),
    )
    # Always tried, whatever hypothesis draws: a lone surrogate reaches SQLite through this command.
    @example(command=methods.COMMAND_NEW_CONVERSATION, arguments=["\ud800"])
    @example(command=methods.COMMAND_NEW_CONVERSATION, arguments=[{"workspaceUri": "a\udfff"}])
    @example(command=methods.COMMAND_SELECT_MODEL, arguments=["\ud800", "auto"])
    def run(command: str, arguments: list[Any]) -> None:
        answer = target.call(
            "workspace/executeCommand", {"command": command, "arguments": arguments}, ANSWER_WITHIN
        )
        code = answer["error"]["code"] if "error" in answer else None
        target.outcomes[("workspace/executeCommand", command, str(code or "result"))] += 1
        assert code is None or code in DOMAIN_ERRORS, answer
        assert target.server.stray == []

    run()


@pytest.mark.parametrize(
    ("method", "params", "expected"),
    [
        ("switchboard/chat", {"prompt": "x" * TEN_MB}, 1006),
        ("switchboard/chat", {"prompt": "é" * (TEN_MB // 6), "modelId": "claude-haiku-4.5"}, 1006),
        ("switchboard/chat", {"prompt": "hi", "context": [{"uri": "a", "text": "y" * TEN_MB}]}, 1006),
        ("switchboard/estimate", {"prompt": "x" * TEN_MB}, None),
        ("switchboard/signIn", {"token": "x" * TEN_MB}, -32602),
        ("switchboard/conversations", {"workspaceUri": "x" * TEN_MB}, -32602),
        ("switchboard/selectModel", {"modelId": "x" * TEN_MB}, -32602),
    ],
    ids=[
        "chat-prompt",
        "chat-prompt-2-byte-chars",
        "chat-context",
        "estimate",
        "sign-in",
        "conversations",
        "select",
    ],
)
def test_ten_megabyte_strings_are_answered_within_the_bound(
    target: Target, method: str, params: dict[str, Any], expected: int | None
) -> None:
    params = {"workspaceUri": target.workspace, **params}
    began = time.monotonic()
    answer = target.call(method, params, ANSWER_WITHIN)
    code = answer["error"]["code"] if "error" in answer else None
    assert code == expected, answer
    print(f"{method} with 10 MB answered in {time.monotonic() - began:.2f}s")
    if method == "switchboard/chat":
        assert "Attach less context" in answer["error"]["message"]


def test_after_fuzzing_the_server_is_usable_and_nothing_was_lost(target: Target) -> None:
    """Runs last in this module (pytest keeps file order)."""
    server = target.server
    assert server.alive and server.stray == []
    opened = target.call(
        "switchboard/conversation",
        {"workspaceUri": target.workspace, "conversationId": target.conversation_id},
        ANSWER_WITHIN,
    )["result"]
    kept = [(t["id"], t["role"], t["text"], t["status"]) for t in opened["turns"][: len(target.turns_before)]]
    assert kept == [(t["id"], t["role"], t["text"], t["status"]) for t in target.turns_before]
    follow = target.call(
        "switchboard/chat",
        {
            "workspaceUri": target.workspace,
            "prompt": "Still there? [[fake:words=5]]",
            "conversationId": target.conversation_id,
            "modelId": "claude-haiku-4.5",
        },
        CHAT_WITHIN,
    )
    assert "result" in follow or follow["error"]["code"] == 1002, follow  # Free credits may be spent
    usage = target.call("switchboard/usage", {}, ANSWER_WITHIN)["result"]
    db = sqlite3.connect(target.state_dir / "ledger.sqlite3")
    try:
        (charged,) = db.execute("SELECT COALESCE(SUM(credits), 0) FROM turns WHERE charged = 1").fetchone()
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    assert round(usage["usedCredits"] * 100) == charged, "the report and the ledger agree"
    conversations = sqlite3.connect(target.state_dir / "conversations.sqlite3")
    try:
        assert conversations.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conversations.close()

    summary = Counter[tuple[str, str]]()
    for (method, family, outcome), count in target.outcomes.items():
        summary[(family, outcome)] += count
        del method
    print("\nfuzz outcomes (family, outcome): count")
    for (family, outcome), count in sorted(summary.items()):
        print(f"  {family:12} {outcome:8} {count}")
    print("slowest answer per method:", {m: round(s, 3) for m, s in sorted(target.slowest.items())})

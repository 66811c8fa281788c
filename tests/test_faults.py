"""The fault matrix: every way the upstream API fails, through the real server and the real SDK.

Each case asserts what the user sees (an answer after a retry, or a `1003` saying what to do), what was
stored (the turn's status and text) and what was metered (nothing for a failed turn, exactly one charge
for a turn answered after retries, consumed tokens only for a cancelled one). Every request is bounded
by `asyncio.wait_for`, so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException

from conftest import Session, SessionFactory
from switchboard.catalog import CATALOG
from switchboard.fakeapi import FakeAnthropic, Fault
from switchboard.plans import credits_for
from switchboard.protocol.messages import Usage
from switchboard.store.conversations import INTERRUPTED

# Seconds of upstream silence before the server gives up (SWITCHBOARD_REQUEST_TIMEOUT), and its retries.
STALL_TIMEOUT = 1.5
RETRIES = 1
# A stall far longer than the timeout; the fake cuts it short when it stops at the end of the test.
LONG_STALL = 60.0
MODEL = "claude-haiku-4.5"
PROMPT = "Explain the retry policy [[fake:words=40]]"
# Upper bound on any one chat here: (retries + 1) stalls, the SDK's backoff, and a loaded machine.
CHAT_BOUND = 30.0
FREE_MODELS = {"claude-haiku-4.5", "claude-sonnet-4.0", "claude-sonnet-4.5"}


@dataclass(frozen=True)
class Case:
    name: str
    faults: tuple[Fault, ...]
    attempts: int  # requests the fake API receives for the chat
    answered: bool = False
    status: int | None = None
    type: str = ""
    retryable: bool = True
    partial: bool = False  # text streamed before the failure
    refused: bool = False  # ANTHROPIC_BASE_URL points at a closed port


def status(code: int, count: int | None, **kwargs: Any) -> Fault:
    return Fault(kind="status", status=code, count=count, **kwargs)


TRANSIENT = [
    Case("429-retry-after", (status(429, 1, retry_after=0.6),), attempts=2, answered=True),
    Case("500", (status(500, 1),), attempts=2, answered=True),
    Case("529-overloaded", (status(529, 1),), attempts=2, answered=True),
    Case("stall-before-headers", (Fault(kind="stall", seconds=LONG_STALL),), attempts=2, answered=True),
]

PERSISTENT = [
    Case("429", (status(429, None, retry_after=0.2),), 2, status=429, type="rate_limit_error"),
    Case("500", (status(500, None),), 2, status=500, type="api_error"),
    Case("529-overloaded", (status(529, None),), 2, status=529, type="overloaded_error"),
    Case("400-invalid", (status(400, None),), 1, status=400, type="invalid_request_error", retryable=False),
    # Anthropic's `x-should-retry` overrides the status, for the SDK's retries and for the advice to the user.
    Case(
        "500-retry-no",
        (status(500, None, should_retry=False),),
        1,
        status=500,
        type="api_error",
        retryable=False,
    ),
    Case(
        "400-retry-yes", (status(400, None, should_retry=True),), 2, status=400, type="invalid_request_error"
    ),
    Case("connection-refused", (), 0, type="connection_error", refused=True),
    Case(
        "dropped-mid-stream", (Fault(kind="drop", after_deltas=3),), 1, type="connection_error", partial=True
    ),
    Case(
        "stall-before-headers",
        (Fault(kind="stall", seconds=LONG_STALL, count=None),),
        2,
        type="timeout",
    ),
    Case(
        "stall-mid-stream",
        (Fault(kind="stall", seconds=LONG_STALL, after_deltas=3),),
        1,
        type="timeout",
        partial=True,
    ),
    Case(
        "malformed-sse",
        (Fault(kind="malformed_sse", after_deltas=3),),
        1,
        type="malformed_response",
        partial=True,
    ),
    # On a streaming request the fake sends the truncated JSON as an event's data, then goes on.
    Case(
        "truncated-json",
        (Fault(kind="truncated_json", after_deltas=3),),
        1,
        type="malformed_response",
        partial=True,
    ),
    Case(
        "error-event-mid-stream",
        (Fault(kind="error_event", after_deltas=3),),
        1,
        type="overloaded_error",
        partial=True,
    ),
]


# --- helpers -------------------------------------------------------------------------------------------


@pytest.fixture
def closed_port_url() -> Iterator[str]:
    """A loopback URL nothing listens on for the whole test: connecting to it is refused at once. The port
    stays bound (not listening) until the test ends, so no other test or worker is handed it meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def message_attempts(fake: FakeAnthropic) -> list[Any]:
    return [r for r in fake.received() if r.path == "/v1/messages"]


def ledger_rows(state_dir: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(state_dir / "ledger.sqlite3")
    db.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in db.execute("SELECT * FROM turns ORDER BY created_at")]
    finally:
        db.close()


def hundredths(credits: float | Decimal) -> int:
    return int(Decimal(str(credits)) * 100)


async def outcome(session: Session, params: dict[str, Any], bound: float = CHAT_BOUND) -> Any:
    """The chat's result, or the JsonRpcException it failed with; a hang fails the test."""
    params = {"workspaceUri": session.workspace, **params}
    try:
        return await asyncio.wait_for(
            session.client.protocol.send_request_async("switchboard/chat", params), bound
        )
    except JsonRpcException as exc:
        return exc


async def last_conversation(session: Session) -> dict[str, Any]:
    listed = (await session.request("switchboard/conversations", {"workspaceUri": session.workspace}))[
        "conversations"
    ]
    assert listed, "the chat stored a conversation"
    return await session.request(
        "switchboard/conversation", {"workspaceUri": session.workspace, "conversationId": listed[0]["id"]}
    )


async def start(start_server: SessionFactory, fake: FakeAnthropic, **env: str) -> Session:
    return await start_server(
        fake,
        SWITCHBOARD_REQUEST_TIMEOUT=str(STALL_TIMEOUT),
        SWITCHBOARD_MAX_RETRIES=str(RETRIES),
        **env,
    )


def route_reports(session: Session, token: str) -> list[dict[str, Any]]:
    return [r for r in session.reports(token) if r.get("type") == "route"]


# --- the matrix ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", TRANSIENT, ids=[c.name for c in TRANSIENT])
async def test_a_transient_fault_is_retried_and_charged_once(
    start_server: SessionFactory, fake_api: FakeAnthropic, state_dir: Path, case: Case
) -> None:
    session = await start(start_server, fake_api)
    for fault in case.faults:
        fake_api.add_fault(fault)
    token = session.new_token()
    result = await outcome(session, {"prompt": PROMPT, "modelId": MODEL, "workDoneToken": token})

    assert not isinstance(result, JsonRpcException), f"{case.name}: {result!r}"
    assert result["text"] and result["stopReason"] == "end_turn"
    assert session.streamed_text(token) == result["text"], "the failed attempt streamed nothing extra"
    attempts = message_attempts(fake_api)
    assert len(attempts) == case.attempts
    if case.name == "429-retry-after":
        assert attempts[1].time - attempts[0].time >= 0.55, "the retry waited for retry-after"

    conversation = await last_conversation(session)
    assert [(t["role"], t["status"]) for t in conversation["turns"]] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    answer = conversation["turns"][1]
    assert answer["text"] == result["text"] and answer["credits"] == result["credits"]

    rows = ledger_rows(state_dir)
    assert [(r["turn_id"], r["charged"]) for r in rows] == [(result["turnId"], 1)], "exactly one charge"
    assert rows[0]["credits"] == hundredths(result["credits"]) > 0
    assert Decimal(str(result["credits"])) == credits_for(MODEL, Usage.model_validate(result["usage"]))
    usage = await session.request("switchboard/usage", {})
    assert usage["usedCredits"] == result["credits"]
    assert [m["turns"] for m in usage["byModel"]] == [1]


@pytest.mark.parametrize("case", PERSISTENT, ids=[c.name for c in PERSISTENT])
async def test_a_failure_is_a_clear_1003_stored_as_failed_and_not_charged(
    start_server: SessionFactory, fake_api: FakeAnthropic, state_dir: Path, case: Case, closed_port_url: str
) -> None:
    env = {"ANTHROPIC_BASE_URL": closed_port_url} if case.refused else {}
    session = await start(start_server, fake_api, **env)
    for fault in case.faults:
        fake_api.add_fault(fault)
    token = session.new_token()
    began = time.monotonic()
    error = await outcome(session, {"prompt": PROMPT, "modelId": MODEL, "workDoneToken": token})
    took = time.monotonic() - began

    assert isinstance(error, JsonRpcException), f"{case.name} was answered: {error!r}"
    assert error.code == 1003, error
    assert error.data["status"] == case.status
    assert error.data["type"] == case.type
    assert error.data["retryable"] is case.retryable
    what_to_do = "Try again in a moment." if case.retryable else "This request cannot succeed as sent."
    assert what_to_do in error.message
    assert "Traceback" not in error.message and "Error(" not in error.message
    assert len(message_attempts(fake_api)) == case.attempts
    if case.type == "timeout":
        assert took >= STALL_TIMEOUT, "gave up only after the configured silence"
    reports = session.reports(token)
    assert reports[-1] == {"kind": "end", "message": "Failed"}

    conversation = await last_conversation(session)
    user, answer = conversation["turns"]
    assert (user["status"], answer["status"]) == ("complete", "failed")
    streamed = session.streamed_text(token)
    assert answer["text"] == streamed, "the stored text is what the user saw"
    assert bool(streamed) is case.partial
    assert answer["error"] and answer["error"] != INTERRUPTED
    assert answer["credits"] == 0

    rows = ledger_rows(state_dir)
    assert [(r["turn_id"], r["charged"], r["credits"]) for r in rows] == [(answer["id"], 0, 0)]
    assert (await session.request("switchboard/usage", {}))["usedCredits"] == 0
    assert not session.notified("switchboard/usageChanged"), "nothing was charged, so nothing changed"

    # The failure left nothing behind: the same conversation goes on and is charged normally.
    fake_api.clear_faults()
    if not case.refused:
        follow = await outcome(
            session,
            {"prompt": "And now? [[fake:words=10]]", "modelId": MODEL, "conversationId": conversation["id"]},
        )
        assert not isinstance(follow, JsonRpcException), follow
        rows = ledger_rows(state_dir)
        assert sorted((r["turn_id"], r["charged"]) for r in rows) == sorted(
            [(answer["id"], 0), (follow["turnId"], 1)]
        )


# --- cancellation -------------------------------------------------------------------------------------


# As long as a request's answer may take: a first chat imports the SDK, slow when the suite runs in parallel.
async def _wait_until(predicate: Any, bound: float = 30.0) -> None:
    deadline = time.monotonic() + bound
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def _send_chat(session: Session, token: str, prompt: str) -> asyncio.Future[Any]:
    return asyncio.wrap_future(
        session.client.protocol.send_request(
            "switchboard/chat",
            {"workspaceUri": session.workspace, "prompt": prompt, "modelId": MODEL, "workDoneToken": token},
            msg_id=f"request-{token}",
        )
    )


async def _cancelled(future: asyncio.Future[Any]) -> None:
    with pytest.raises(JsonRpcException) as caught:
        await asyncio.wait_for(future, 10)
    assert caught.value.code == -32800


async def test_a_cancelled_turn_is_charged_for_the_tokens_it_consumed_only(
    start_server: SessionFactory, fake_api: FakeAnthropic, state_dir: Path
) -> None:
    session = await start(start_server, fake_api)
    fake_api.add_fault(Fault(kind="slow", seconds=0.05))
    token = session.new_token()
    future = _send_chat(session, token, "Write a long essay [[fake:words=400]]")
    await _wait_until(lambda: len(session.streamed_text(token)) > 40)
    session.client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=f"request-{token}"))
    await _cancelled(future)

    answer = (await last_conversation(session))["turns"][1]
    assert answer["status"] == "cancelled"
    assert answer["text"] == session.streamed_text(token)
    assert len(answer["text"]) < 1500, "the stream stopped at the cancel"
    (row,) = ledger_rows(state_dir)
    assert row["turn_id"] == answer["id"] and row["charged"] == 1
    consumed = Usage(
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cache_read_input_tokens=row["cache_read_tokens"],
        cache_creation_input_tokens=row["cache_write_tokens"],
    )
    assert 0 < consumed.output_tokens <= len(answer["text"]), "output as streamed, not the whole answer"
    assert consumed.input_tokens > 0
    assert row["credits"] == hundredths(credits_for(MODEL, consumed)) == hundredths(answer["credits"])
    assert (await session.request("switchboard/usage", {}))["usedCredits"] == answer["credits"]


async def test_a_chat_cancelled_before_the_api_answered_costs_nothing(
    start_server: SessionFactory, fake_api: FakeAnthropic, state_dir: Path
) -> None:
    session = await start_server(fake_api, SWITCHBOARD_REQUEST_TIMEOUT="30")
    fake_api.add_fault(Fault(kind="stall", seconds=LONG_STALL))
    token = session.new_token()
    future = _send_chat(session, token, "hello")
    await _wait_until(lambda: len(message_attempts(fake_api)) == 1)
    session.client.protocol.notify(
        lsp.WINDOW_WORK_DONE_PROGRESS_CANCEL, lsp.WorkDoneProgressCancelParams(token=token)
    )
    await _cancelled(future)

    answer = (await last_conversation(session))["turns"][1]
    assert (answer["status"], answer["text"], answer["credits"]) == ("cancelled", "", 0)
    assert [(r["turn_id"], r["charged"], r["credits"]) for r in ledger_rows(state_dir)] == [
        (answer["id"], 0, 0)
    ]
    assert (await session.request("switchboard/usage", {}))["usedCredits"] == 0


async def test_a_cancel_during_the_retry_wait_stops_retrying(
    start_server: SessionFactory, fake_api: FakeAnthropic, state_dir: Path
) -> None:
    retry_after = 2.0
    session = await start_server(fake_api, SWITCHBOARD_MAX_RETRIES="3")
    fake_api.add_fault(status(429, None, retry_after=retry_after))
    token = session.new_token()
    future = _send_chat(session, token, "hello")
    await _wait_until(lambda: len(message_attempts(fake_api)) == 1)
    first = message_attempts(fake_api)[0].time
    session.client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=f"request-{token}"))
    await _cancelled(future)
    assert time.time() - first < retry_after, "the cancel did not wait out the retry-after"

    # Proving that no retry follows needs the retry-after to pass: wait it out, with a margin.
    await asyncio.sleep(max(0.0, first + retry_after + 1.0 - time.time()))
    assert len(message_attempts(fake_api)) == 1, "no request after the cancel"
    answer = (await last_conversation(session))["turns"][1]
    assert answer["status"] == "cancelled"
    assert [(r["charged"], r["credits"]) for r in ledger_rows(state_dir)] == [(0, 0)]


# --- Auto's fallback ----------------------------------------------------------------------------------


async def _auto_routes_to(session: Session, prompt: str) -> str:
    """Which model Auto picks for `prompt` in a fresh conversation (asked in a throwaway workspace)."""
    probe = await session.request(
        "switchboard/chat",
        {"workspaceUri": session.workspace + "-probe", "prompt": prompt},
        timeout=CHAT_BOUND,
    )
    return probe["routedModel"]


def _anthropic(model_id: str) -> str:
    anthropic_model = CATALOG[model_id].anthropic_model
    assert anthropic_model is not None
    return anthropic_model


@pytest.mark.parametrize("busy", [529, 429])
async def test_auto_falls_back_to_another_model_when_the_routed_one_is_busy(
    start_server: SessionFactory, fake_api: FakeAnthropic, state_dir: Path, busy: int
) -> None:
    session = await start(start_server, fake_api)
    prompt = "Summarise this design [[fake:words=30]]"
    routed = await _auto_routes_to(session, prompt)
    probe_rows = len(ledger_rows(state_dir))
    fake_api.reset()
    fake_api.add_fault(status(busy, None, retry_after=0.1, model=_anthropic(routed)))
    token = session.new_token()
    result = await outcome(session, {"prompt": prompt, "workDoneToken": token})

    assert not isinstance(result, JsonRpcException), f"Auto did not fall back: {result!r}"
    fallback = result["routedModel"]
    assert fallback != routed and fallback in FREE_MODELS
    routes = route_reports(session, token)
    assert [(r["routedModel"], r["fallback"]) for r in routes] == [(routed, False), (fallback, True)]
    reports = session.reports(token)
    after = reports.index(routes[1])
    assert not [r for r in reports[:after] if r.get("type") == "text"], "nothing streamed before it"
    assert "".join(r["text"] for r in reports[after:] if r.get("type") == "text") == result["text"]
    sent = [r.model for r in message_attempts(fake_api)]
    assert sent == [_anthropic(routed)] * (RETRIES + 1) + [_anthropic(fallback)]

    answer = (await last_conversation(session))["turns"][1]
    assert (answer["status"], answer["routedModel"], answer["text"]) == ("complete", fallback, result["text"])
    rows = ledger_rows(state_dir)[probe_rows:]
    assert [(r["turn_id"], r["charged"], r["routed_model"]) for r in rows] == [
        (result["turnId"], 1, fallback)
    ], "charged once, for the model that answered"
    assert rows[0]["credits"] == hundredths(credits_for("auto", Usage.model_validate(result["usage"])))


async def test_auto_fallback_in_a_continued_conversation_sends_the_same_history(
    start_server: SessionFactory, fake_api: FakeAnthropic
) -> None:
    session = await start(start_server, fake_api)
    first = await outcome(session, {"prompt": "Name a prime [[fake:words=5]]", "modelId": "auto"})
    fake_api.reset()
    fake_api.add_fault(status(529, RETRIES + 1, retry_after=0.1))  # every attempt of the first model
    params = {"prompt": "And another one [[fake:words=5]]", "conversationId": first["conversationId"]}
    result = await outcome(session, {**params, "modelId": "auto", "workDoneToken": session.new_token()})

    assert not isinstance(result, JsonRpcException), f"Auto did not fall back: {result!r}"
    bodies = [r.body for r in message_attempts(fake_api)]
    assert len(bodies) == RETRIES + 2 and bodies[-1]["model"] != bodies[0]["model"]
    assert bodies[-1]["messages"] == bodies[0]["messages"], "the fallback sends the conversation unchanged"
    assert first["text"] in json.dumps(bodies[-1]["messages"]), "the earlier answer is in the history"


async def test_auto_falls_back_when_an_overloaded_error_event_comes_before_any_text(
    start_server: SessionFactory, fake_api: FakeAnthropic, state_dir: Path
) -> None:
    session = await start(start_server, fake_api)
    prompt = "Plan the migration [[fake:words=30]]"
    routed = await _auto_routes_to(session, prompt)
    fake_api.reset()
    fake_api.add_fault(Fault(kind="error_event", after_deltas=0, count=None, model=_anthropic(routed)))
    token = session.new_token()
    result = await outcome(session, {"prompt": prompt, "workDoneToken": token})

    assert not isinstance(result, JsonRpcException), f"Auto did not fall back: {result!r}"
    assert result["routedModel"] != routed
    assert [r["fallback"] for r in route_reports(session, token)] == [False, True]
    assert session.streamed_text(token) == result["text"]
    charged = [r for r in ledger_rows(state_dir) if r["turn_id"] == result["turnId"]]
    assert [(r["charged"], r["routed_model"]) for r in charged] == [(1, result["routedModel"])]


async def test_auto_does_not_fall_back_once_text_has_streamed(
    start_server: SessionFactory, fake_api: FakeAnthropic, state_dir: Path
) -> None:
    session = await start(start_server, fake_api)
    fake_api.add_fault(Fault(kind="error_event", after_deltas=3, count=None))
    token = session.new_token()
    error = await outcome(session, {"prompt": PROMPT, "workDoneToken": token})

    assert isinstance(error, JsonRpcException) and error.code == 1003
    assert error.data["type"] == "overloaded_error" and error.data["status"] is None
    assert [r["fallback"] for r in route_reports(session, token)] == [False], "no silent second answer"
    assert len(message_attempts(fake_api)) == 1
    answer = (await last_conversation(session))["turns"][1]
    assert answer["status"] == "failed" and answer["text"] == session.streamed_text(token) != ""
    assert [(r["charged"], r["credits"]) for r in ledger_rows(state_dir)] == [(0, 0)]


async def test_auto_fallback_gives_up_with_1003_when_every_model_is_busy(
    start_server: SessionFactory, fake_api: FakeAnthropic, state_dir: Path
) -> None:
    session = await start(start_server, fake_api)
    fake_api.add_fault(status(529, None))
    token = session.new_token()
    error = await outcome(session, {"prompt": "hello", "workDoneToken": token})

    assert isinstance(error, JsonRpcException) and error.code == 1003
    assert error.data["status"] == 529 and error.data["retryable"] is True
    routes = route_reports(session, token)
    tried = [r["routedModel"] for r in routes]
    assert len(tried) == len(set(tried)), "no model is tried twice"
    assert set(tried) <= FREE_MODELS
    assert len(message_attempts(fake_api)) == len(tried) * (RETRIES + 1), "bounded: retries per model"
    answer = (await last_conversation(session))["turns"][1]
    assert answer["status"] == "failed" and answer["text"] == ""
    assert [(r["charged"], r["credits"]) for r in ledger_rows(state_dir)] == [(0, 0)]


@pytest.mark.parametrize("busy", [529, 429])
async def test_an_explicit_model_that_is_busy_fails_with_a_suggested_model(
    start_server: SessionFactory, fake_api: FakeAnthropic, state_dir: Path, busy: int
) -> None:
    session = await start(start_server, fake_api)
    chosen = "claude-sonnet-4.5"
    fake_api.add_fault(status(busy, None, retry_after=0.1, model=_anthropic(chosen)))
    token = session.new_token()
    error = await outcome(session, {"prompt": "hello", "modelId": chosen, "workDoneToken": token})

    assert isinstance(error, JsonRpcException) and error.code == 1003
    suggested = error.data.get("suggestedModel")
    assert suggested in FREE_MODELS - {chosen}, error.data
    assert CATALOG[suggested].name in error.message, "the message says what to switch to"
    assert {r.model for r in message_attempts(fake_api)} == {_anthropic(chosen)}, "no silent fallback"
    assert [r["fallback"] for r in route_reports(session, token)] == [False]
    assert [(r["charged"], r["credits"]) for r in ledger_rows(state_dir)] == [(0, 0)]


async def test_an_explicit_model_that_fails_for_another_reason_suggests_nothing(
    start_server: SessionFactory, fake_api: FakeAnthropic
) -> None:
    session = await start(start_server, fake_api)
    fake_api.add_fault(status(500, None))
    error = await outcome(session, {"prompt": "hello", "modelId": "claude-sonnet-4.5"})
    assert isinstance(error, JsonRpcException) and error.code == 1003
    assert error.data.get("suggestedModel") is None

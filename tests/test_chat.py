"""Streamed chat through the real server and the real SDK against the fake Anthropic API."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException

from conftest import TEST_KEY, Session, SessionFactory
from switchboard.fakeapi import FakeAnthropic, Fault


def user_texts(body: dict[str, Any]) -> list[str]:
    """Every text block the API received from the user side, in order."""
    texts: list[str] = []
    for message in body["messages"]:
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        texts += [b["text"] for b in blocks if b["type"] == "text" and message["role"] == "user"]
    return texts


def message_requests(fake: FakeAnthropic) -> list[dict[str, Any]]:
    return [r.body for r in fake.received() if r.path == "/v1/messages" and r.body is not None]


async def test_chat_streams_route_then_text_then_end(
    start_server: SessionFactory, fake_api: FakeAnthropic
) -> None:
    session = await start_server(fake_api)
    token = session.new_token()
    result = await session.chat("What does HTTP 404 mean?", modelId="claude-haiku-4.5", workDoneToken=token)

    reports = session.reports(token)
    assert reports[0]["kind"] == "begin" and reports[0]["cancellable"] is True
    route = reports[1]
    assert route == {
        "kind": "report",
        "type": "route",
        "modelId": "claude-haiku-4.5",
        "routedModel": "claude-haiku-4.5",
        "routeReason": route["routeReason"],
        "message": route["message"],
        "fallback": False,
        "conversationId": result["conversationId"],
        "turnId": result["turnId"],
    }
    texts = [r for r in reports[2:-1] if r["type"] == "text"]
    assert len(texts) >= 2, "the answer should arrive in several deltas"
    assert reports[-1]["kind"] == "end"
    assert session.streamed_text(token) == result["text"]
    assert "What does HTTP 404 mean?" in result["text"]

    assert result["modelId"] == "claude-haiku-4.5" and result["routedModel"] == "claude-haiku-4.5"
    assert result["stopReason"] == "end_turn"
    assert result["usage"]["inputTokens"] > 0 and result["usage"]["outputTokens"] > 0
    assert result["droppedTurns"] == 0
    sent = message_requests(fake_api)
    assert [b["model"] for b in sent] == ["claude-haiku-4-5-20251001"]
    assert sent[0]["stream"] is True
    assert "Switchboard" in sent[0]["system"][0]["text"]


async def test_context_is_kept_across_a_model_switch(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str
) -> None:
    session = await start_server(fake_api)
    await session.request(
        "switchboard/selectModel", {"workspaceUri": workspace, "modelId": "claude-haiku-4.5"}
    )
    first = await session.chat(
        "Remember the codeword PELICAN.",
        context=[{"uri": f"{workspace}/a.py", "text": "def a():\n    return 1\n", "languageId": "python"}],
    )
    await session.request(
        "switchboard/selectModel", {"workspaceUri": workspace, "modelId": "claude-sonnet-4.5"}
    )
    second = await session.chat("What was the codeword?", conversationId=first["conversationId"])

    assert second["conversationId"] == first["conversationId"]
    assert second["routedModel"] == "claude-sonnet-4.5"
    first_body, second_body = message_requests(fake_api)
    assert first_body["model"] == "claude-haiku-4-5-20251001"
    assert second_body["model"] == "claude-sonnet-4-5-20250929"
    roles = [m["role"] for m in second_body["messages"]]
    assert roles == ["user", "assistant", "user"]
    assert "Remember the codeword PELICAN." in user_texts(second_body)
    assert any("def a():" in text for text in user_texts(second_body)), "attached context is replayed"
    assert second_body["messages"][1]["content"][-1]["text"] == first["text"]

    conversation = await session.request(
        "switchboard/conversation", {"workspaceUri": workspace, "conversationId": first["conversationId"]}
    )
    assert [(t["role"], t["status"]) for t in conversation["turns"]] == [
        ("user", "complete"),
        ("assistant", "complete"),
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert [t["routedModel"] for t in conversation["turns"] if t["role"] == "assistant"] == [
        "claude-haiku-4.5",
        "claude-sonnet-4.5",
    ]
    assert conversation["turns"][0]["context"][0]["uri"].endswith("a.py")


async def test_conversations_persist_across_restart_and_stay_in_their_workspace(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str, tmp_path: Path
) -> None:
    session = await start_server(fake_api)
    first = await session.chat("Explain the build\nwith details")
    await session.chat("And the tests?", conversationId=first["conversationId"])
    second = await session.chat("A separate question")
    await session.client.shutdown_session()

    again = await start_server(fake_api)
    listed = (await again.request("switchboard/conversations", {"workspaceUri": workspace}))["conversations"]
    assert [c["id"] for c in listed] == [second["conversationId"], first["conversationId"]]
    assert listed[1]["title"] == "Explain the build"
    assert listed[1]["turnCount"] == 4
    opened = await again.request(
        "switchboard/conversation",
        {"workspaceUri": workspace + "/", "conversationId": first["conversationId"]},
    )
    assert opened["turns"][1]["text"] == first["text"]

    other = (tmp_path / "elsewhere").as_uri()
    assert (await again.request("switchboard/conversations", {"workspaceUri": other}))["conversations"] == []
    leak = await again.error(
        "switchboard/conversation", {"workspaceUri": other, "conversationId": first["conversationId"]}
    )
    assert leak.code == 1005
    cross_chat = await again.error(
        "switchboard/chat", {"workspaceUri": other, "prompt": "hi", "conversationId": first["conversationId"]}
    )
    assert cross_chat.code == 1005

    await again.request(
        "switchboard/deleteConversation",
        {"workspaceUri": workspace, "conversationId": first["conversationId"]},
    )
    remaining = (await again.request("switchboard/conversations", {"workspaceUri": workspace}))[
        "conversations"
    ]
    assert [c["id"] for c in remaining] == [second["conversationId"]]
    gone = await again.error(
        "switchboard/deleteConversation",
        {"workspaceUri": workspace, "conversationId": first["conversationId"]},
    )
    assert gone.code == 1005


async def _start_slow_chat(session: Session, fake: FakeAnthropic) -> tuple[str, asyncio.Future[Any]]:
    fake.add_fault(Fault(kind="slow", seconds=0.05, count=1))
    token = session.new_token()
    future = asyncio.wrap_future(
        session.client.protocol.send_request(
            "switchboard/chat",
            {
                "workspaceUri": session.workspace,
                "prompt": "Write a long essay [[fake:words=400]]",
                "workDoneToken": token,
            },
            msg_id=f"request-{token}",
        )
    )
    for _ in range(1500):  # generous: a loaded machine may take seconds to import the SDK
        if len(session.streamed_text(token)) > 20:
            break
        await asyncio.sleep(0.02)
    return token, future


@pytest.mark.parametrize("how", ["cancelRequest", "workDoneProgressCancel"])
async def test_cancel_stops_the_stream_and_keeps_the_partial_answer(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str, how: str
) -> None:
    session = await start_server(fake_api)
    token, future = await _start_slow_chat(session, fake_api)
    partial = session.streamed_text(token)
    assert partial, "the answer started streaming"
    if how == "cancelRequest":
        session.client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=f"request-{token}"))
    else:
        session.client.protocol.notify(
            lsp.WINDOW_WORK_DONE_PROGRESS_CANCEL, lsp.WorkDoneProgressCancelParams(token=token)
        )
    with pytest.raises(JsonRpcException) as caught:
        await asyncio.wait_for(future, 5)
    assert caught.value.code == -32800

    conversation = await _wait_for_status(session, workspace, "cancelled")
    answer = conversation["turns"][-1]
    assert answer["text"].startswith(partial)
    assert len(answer["text"]) < 1500, "the upstream stream stopped instead of running to the end"
    assert session.reports(token)[-1]["kind"] == "end"


async def _wait_for_status(session: Session, workspace: str, status: str) -> dict[str, Any]:
    for _ in range(100):
        conversations = (await session.request("switchboard/conversations", {"workspaceUri": workspace}))[
            "conversations"
        ]
        if conversations:
            conversation = await session.request(
                "switchboard/conversation",
                {"workspaceUri": workspace, "conversationId": conversations[0]["id"]},
            )
            if conversation["turns"][-1]["status"] == status:
                return conversation
        await asyncio.sleep(0.05)
    raise AssertionError(f"no turn reached status {status}")


async def test_other_requests_are_answered_while_chats_stream(
    start_server: SessionFactory, fake_api: FakeAnthropic
) -> None:
    session = await start_server(fake_api)
    fake_api.add_fault(Fault(kind="slow", seconds=0.03, count=2))
    chats = [asyncio.ensure_future(session.chat("Long answer please [[fake:words=150]]")) for _ in range(2)]
    await asyncio.sleep(0.3)
    models = await session.request("switchboard/models", {}, timeout=2)
    assert models["models"]
    assert not any(chat.done() for chat in chats), "models answered while both chats were still streaming"
    results = await asyncio.gather(*chats)
    assert results[0]["conversationId"] != results[1]["conversationId"]


async def test_missing_key_is_auth_required(start_server: SessionFactory, fake_api: FakeAnthropic) -> None:
    session = await start_server(fake_api, ANTHROPIC_API_KEY=None)
    error = await session.error("switchboard/chat", {"workspaceUri": session.workspace, "prompt": "hi"})
    assert error.code == 1004 and error.data == {"reason": "missing_key", "gatewayUrl": None}
    assert "ANTHROPIC_API_KEY" in error.message and "sign in" not in error.message.lower()
    assert message_requests(fake_api) == []


async def test_missing_key_with_a_gateway_configured_offers_signing_in_to_it(
    start_server: SessionFactory, fake_api: FakeAnthropic
) -> None:
    """Not signed in to the configured gateway and no key: signing in is the other way to chat, so the
    message says so and the data names the gateway (the editor offers "Sign in" before "Set API key")."""
    gateway = "http://127.0.0.1:9"  # never reached: nothing is signed in
    session = await start_server(fake_api, ANTHROPIC_API_KEY=None, SWITCHBOARD_GATEWAY_URL=gateway)
    error = await session.error("switchboard/chat", {"workspaceUri": session.workspace, "prompt": "hi"})
    assert error.code == 1004 and error.data == {"reason": "missing_key", "gatewayUrl": gateway}
    assert "sign in" in error.message.lower() and gateway in error.message
    assert "ANTHROPIC_API_KEY" in error.message
    assert message_requests(fake_api) == []


async def test_key_from_initialization_options_is_used(start_server: SessionFactory, tmp_path: Path) -> None:
    with FakeAnthropic(host="127.0.0.1", port=0, api_key="sk-editor-secret-store-key") as fake:
        session = await start_server(
            fake, ANTHROPIC_API_KEY=None, init_options={"apiKey": "sk-editor-secret-store-key"}
        )
        result = await session.chat("hello")
        assert result["text"]
        headers = fake.received()[-1].headers
        sent_key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
        assert sent_key == "sk-editor-secret-store-key"


async def test_rejected_key_is_auth_required(start_server: SessionFactory, tmp_path: Path) -> None:
    with FakeAnthropic(host="127.0.0.1", port=0, api_key="sk-the-only-good-key") as fake:
        session = await start_server(fake)
        error = await session.error("switchboard/chat", {"workspaceUri": session.workspace, "prompt": "hi"})
        assert error.code == 1004 and error.data == {"reason": "rejected_key", "gatewayUrl": None}
        assert TEST_KEY not in error.message


async def test_overloaded_after_retries_is_upstream_failure(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str
) -> None:
    session = await start_server(fake_api, SWITCHBOARD_MAX_RETRIES="1")
    fake_api.add_fault(Fault(kind="status", status=529, count=None))
    error = await session.error(
        "switchboard/chat", {"workspaceUri": workspace, "prompt": "hi", "modelId": "claude-sonnet-4.5"}
    )
    assert error.code == 1003
    assert (
        error.data["status"] == 529
        and error.data["type"] == "overloaded_error"
        and error.data["retryable"] is True
    )
    assert len(message_requests(fake_api)) == 2, "the SDK retried once before giving up"
    conversation = await _wait_for_status(session, workspace, "failed")
    assert conversation["turns"][-1]["text"] == ""


async def test_a_retry_that_succeeds_answers_normally(
    start_server: SessionFactory, fake_api: FakeAnthropic
) -> None:
    session = await start_server(fake_api)
    fake_api.add_fault(Fault(kind="status", status=500, count=1))
    result = await session.chat("hi", modelId="claude-haiku-4.5")
    assert result["text"]
    assert len(message_requests(fake_api)) == 2


@pytest.mark.parametrize("kind", ["error_event", "drop"])
async def test_a_stream_that_breaks_keeps_what_arrived(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str, kind: str
) -> None:
    session = await start_server(fake_api)
    first = await session.chat("First question")
    fake_api.add_fault(Fault(kind=kind, after_deltas=3, count=None))
    token = session.new_token()
    error = await session.error(
        "switchboard/chat",
        {
            "workspaceUri": workspace,
            "prompt": "Second [[fake:words=200]]",
            "conversationId": first["conversationId"],
            "workDoneToken": token,
        },
    )
    assert error.code == 1003
    assert error.data["status"] is None
    assert error.data["type"] == ("overloaded_error" if kind == "error_event" else "connection_error")
    conversation = await session.request(
        "switchboard/conversation", {"workspaceUri": workspace, "conversationId": first["conversationId"]}
    )
    assert [t["status"] for t in conversation["turns"]] == ["complete", "complete", "complete", "failed"]
    assert conversation["turns"][1]["text"] == first["text"], "nothing already stored is lost"
    failed = conversation["turns"][-1]
    assert failed["text"] and failed["text"] == session.streamed_text(token)
    assert failed["error"]


async def test_unknown_conversation_and_too_large_prompt(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str
) -> None:
    session = await start_server(fake_api)
    missing = await session.error(
        "switchboard/chat", {"workspaceUri": workspace, "prompt": "hi", "conversationId": "does-not-exist"}
    )
    assert missing.code == 1005 and missing.data == {"conversationId": "does-not-exist"}
    huge = await session.error(
        "switchboard/chat",
        {"workspaceUri": workspace, "prompt": "x" * 800_000, "modelId": "claude-haiku-4.5"},
    )
    assert huge.code == 1006
    assert huge.data["modelId"] == "claude-haiku-4.5" and huge.data["contextWindow"] == 200_000
    assert message_requests(fake_api) == []


async def test_oldest_turns_are_dropped_when_history_outgrows_the_window(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str
) -> None:
    session = await start_server(fake_api)
    big = "z = 1\n" * 45_000  # about 77k tokens by the server's estimate
    conversation_id = None
    results = []
    for index in range(3):
        params: dict[str, Any] = {"context": [{"uri": f"{workspace}/big{index}.py", "text": big}]}
        if conversation_id:
            params["conversationId"] = conversation_id
        result = await session.chat(f"Question {index}", modelId="claude-haiku-4.5", **params)
        conversation_id = result["conversationId"]
        results.append(result)
    assert [r["droppedTurns"] for r in results] == [0, 0, 2]
    last = message_requests(fake_api)[-1]
    texts = user_texts(last)
    assert "Question 0" not in texts and "Question 1" in texts and "Question 2" in texts


async def test_thinking_streams_and_is_never_replayed_to_another_model(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str
) -> None:
    session = await start_server(fake_api)
    token = session.new_token()
    first = await session.chat(
        "Think first", modelId="claude-sonnet-4.5", thinking={"budgetTokens": 2048}, workDoneToken=token
    )
    thinking = [r for r in session.reports(token) if r.get("type") == "thinking"]
    assert thinking and first["thinking"] == "".join(r["text"] for r in thinking)
    types_in_order = [r.get("type") for r in session.reports(token) if r["kind"] == "report"]
    assert types_in_order.index("thinking") < types_in_order.index("text")

    same = await session.chat(
        "Again",
        modelId="claude-sonnet-4.5",
        thinking={"budgetTokens": 2048},
        conversationId=first["conversationId"],
    )
    other = await session.chat(
        "Now Haiku",
        modelId="claude-haiku-4.5",
        thinking={"budgetTokens": 2048},
        conversationId=first["conversationId"],
    )
    assert same["text"] and other["text"]
    bodies = message_requests(fake_api)
    replayed_same = [b["type"] for b in bodies[1]["messages"][1]["content"]]
    replayed_other = [b["type"] for b in bodies[2]["messages"][1]["content"]]
    assert replayed_same == ["thinking", "text"]
    assert replayed_other == ["text"]
    stored = await session.request(
        "switchboard/conversation", {"workspaceUri": workspace, "conversationId": first["conversationId"]}
    )
    assert stored["turns"][1]["thinking"] == first["thinking"]

    bad_budget = await session.error(
        "switchboard/chat", {"workspaceUri": workspace, "prompt": "x", "thinking": {"budgetTokens": 10}}
    )
    assert bad_budget.code == -32602


async def test_state_database_is_wal_and_intact(
    start_server: SessionFactory, fake_api: FakeAnthropic, state_dir: Path
) -> None:
    session = await start_server(fake_api)
    await session.chat("hello")
    db = sqlite3.connect(state_dir / "conversations.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()

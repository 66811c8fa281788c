"""Models, selection, commands and the JSON-RPC surface of the real server process."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp

from conftest import SessionFactory, server_env
from rawlsp import RawServer
from switchboard.fakeapi import FakeAnthropic
from switchboard.protocol import methods
from switchboard.protocol.schema import render

REPO = Path(__file__).resolve().parents[1]


async def test_models_lists_the_catalog_with_auto_selected(start_server: SessionFactory) -> None:
    session = await start_server(None)
    result = await session.request("switchboard/models", {})
    assert result["selected"] == "auto"
    by_id = {m["id"]: m for m in result["models"]}
    assert result["models"][0]["id"] == "auto"
    assert {k: v["creditMultiplier"] for k, v in by_id.items()} == {
        "auto": 1.0,
        "claude-haiku-4.5": 0.4,
        "claude-sonnet-4.0": 1.3,
        "claude-sonnet-4.5": 1.3,
        "claude-opus-4.5": 2.2,
    }
    assert by_id["claude-sonnet-4.0"]["anthropicModel"] == "claude-sonnet-4-20250514"
    for model in result["models"]:
        assert model["name"] and model["description"] and model["contextWindow"] > 0
        assert isinstance(model["supportsThinking"], bool)


async def test_selection_is_per_workspace_and_survives_restart(
    start_server: SessionFactory, workspace: str, tmp_path: Path
) -> None:
    other = (tmp_path / "other").as_uri()
    session = await start_server(None)
    result = await session.request(
        "switchboard/selectModel", {"workspaceUri": workspace, "modelId": "claude-haiku-4.5"}
    )
    assert result["selected"] == "claude-haiku-4.5"
    assert session.notified("switchboard/modelChanged")[-1]["selected"] == "claude-haiku-4.5"
    assert (await session.request("switchboard/models", {"workspaceUri": other}))["selected"] == "auto"
    await session.client.shutdown_session()

    again = await start_server(None)
    assert (await again.request("switchboard/models", {"workspaceUri": workspace}))[
        "selected"
    ] == "claude-haiku-4.5"
    # Without a workspace, the first workspace folder's selection applies.
    assert (await again.request("switchboard/models", {}))["selected"] == "claude-haiku-4.5"


async def test_unknown_and_malformed_params_are_invalid_params(
    start_server: SessionFactory, workspace: str
) -> None:
    session = await start_server(None)
    error = await session.error("switchboard/selectModel", {"workspaceUri": workspace, "modelId": "gpt-5"})
    assert error.code == -32602
    assert error.data["modelId"] == "gpt-5"
    assert "claude-haiku-4.5" in error.message

    missing = await session.error("switchboard/selectModel", {"modelId": "auto"})
    assert missing.code == -32602 and "workspaceUri" in missing.message

    wrong_type = await session.error("switchboard/chat", {"workspaceUri": workspace, "prompt": 42})
    assert wrong_type.code == -32602 and "prompt" in wrong_type.message

    not_object = await session.error("switchboard/conversations", [workspace])
    assert not_object.code == -32602

    # Booleans are JSON's true/false only: "yes", 1 or "false" are a client's bug, not a setting to guess.
    for loose in ("yes", 1, "false"):
        not_bool = await session.error("switchboard/setOverage", {"enabled": loose})
        assert not_bool.code == -32602 and "enabled" in not_bool.message, loose
    assert (await session.request("switchboard/usage", {}))["overage"]["enabled"] is False

    unknown_chat_model = await session.error(
        "switchboard/chat", {"workspaceUri": workspace, "prompt": "hi", "modelId": "claude-9"}
    )
    assert unknown_chat_model.code == -32602 and unknown_chat_model.data["modelId"] == "claude-9"
    # The server is still fine afterwards.
    assert (await session.request("switchboard/models", {}))["selected"] == "auto"


async def test_execute_command_select_model_and_new_conversation(
    start_server: SessionFactory, workspace: str
) -> None:
    session = await start_server(None)
    selected = await session.request(
        "workspace/executeCommand",
        lsp.ExecuteCommandParams(
            command="switchboard.selectModel", arguments=[workspace, "claude-sonnet-4.0"]
        ),
    )
    assert selected["selected"] == "claude-sonnet-4.0"
    assert (await session.request("switchboard/models", {"workspaceUri": workspace}))[
        "selected"
    ] == "claude-sonnet-4.0"

    created = await session.request(
        "workspace/executeCommand",
        lsp.ExecuteCommandParams(
            command="switchboard.newConversation", arguments=[{"workspaceUri": workspace}]
        ),
    )
    listed = await session.request("switchboard/conversations", {"workspaceUri": workspace})
    assert [c["id"] for c in listed["conversations"]] == [created["conversationId"]]

    bad = await session.error(
        "workspace/executeCommand",
        lsp.ExecuteCommandParams(command="switchboard.selectModel", arguments=[workspace, "nope"]),
    )
    assert bad.code == -32602


def test_malformed_frames_get_errors_and_stdout_carries_only_frames(
    state_dir: Path, workspace: str, fake_api: FakeAnthropic
) -> None:
    server = RawServer(server_env(state_dir, fake_api))
    try:
        assert server.initialize(workspace)["result"]["serverInfo"]["name"] == "switchboard"
        body = b'{"jsonrpc": "2.0", "id": 1, "method": '
        server.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        server.request(2, "switchboard/nonexistent", {})
        server.request(3, "switchboard/models", "not an object")
        server.request(4, "switchboard/models", {})
        assert server.wait_for(2)["error"]["code"] == -32601
        assert server.wait_for(3)["error"]["code"] == -32602
        assert server.wait_for(4)["result"]["selected"] == "auto"
    finally:
        assert server.close() == 0
    assert server.stray == []
    assert b"Traceback" not in server.stdout_bytes


def test_absent_null_and_empty_array_params_all_mean_no_params(
    state_dir: Path, workspace: str, fake_api: FakeAnthropic
) -> None:
    """Neovim sends `[]` for an empty Lua table: every method takes it as no params. A method whose params
    are all optional answers; one with a required field names the field, not the params' JSON type."""
    server = RawServer(server_env(state_dir, fake_api))
    try:
        server.initialize(workspace)
        for request in methods.REQUESTS:
            required = [f.alias or name for name, f in request.params.model_fields.items() if f.is_required()]
            frames = [server.call(request.method, [])]
            frames.append(server.call(request.method))  # no "params" member
            server.send({"jsonrpc": "2.0", "id": request.method, "method": request.method, "params": None})
            frames.append(server.wait_for(request.method))
            for frame in frames:
                if required:
                    assert frame["error"]["code"] == -32602, (request.method, frame)
                    assert required[0] in frame["error"]["message"], (request.method, frame)
                elif request.method == "switchboard/signIn":
                    # No params starts the device flow, which needs a gateway this server does not have.
                    assert frame["error"]["data"] == {"reason": "no_gateway", "gatewayUrl": None}, frame
                else:
                    assert "result" in frame, (request.method, frame)
        assert server.result("switchboard/usage", [])["plan"] == "free"
        not_empty = server.call("switchboard/usage", [workspace])
        assert not_empty["error"]["code"] == -32602
        assert "must be a JSON object" in not_empty["error"]["message"]
    finally:
        assert server.close() == 0
    assert server.stray == []


def test_protocol_schema_is_current() -> None:
    committed = (REPO / "docs" / "protocol.schema.json").read_text(encoding="utf-8")
    assert committed == render(), "run `switchboard schema --out docs/protocol.schema.json`"


async def test_conversations_are_listed_newest_first_in_pages(
    start_server: SessionFactory, workspace: str
) -> None:
    session = await start_server(None)
    created = []
    for _ in range(5):
        result = await session.request(
            "workspace/executeCommand",
            lsp.ExecuteCommandParams(command="switchboard.newConversation", arguments=[workspace]),
        )
        created.append(result["conversationId"])
    first = await session.request("switchboard/conversations", {"workspaceUri": workspace, "limit": 2})
    rest = await session.request(
        "switchboard/conversations", {"workspaceUri": workspace, "limit": 10, "offset": 2}
    )
    assert first["hasMore"] is True and rest["hasMore"] is False
    listed = [c["id"] for c in first["conversations"] + rest["conversations"]]
    assert sorted(listed) == sorted(created) and len(listed) == 5
    everything = await session.request("switchboard/conversations", {"workspaceUri": workspace})
    assert [c["id"] for c in everything["conversations"]] == listed
    bad = await session.error("switchboard/conversations", {"workspaceUri": workspace, "limit": 0})
    assert bad.code == -32602
    # Offsets up to SQLite's largest integer page past the end; one more is refused, not an internal error.
    far = await session.request("switchboard/conversations", {"workspaceUri": workspace, "offset": 2**63 - 1})
    assert (far["conversations"], far["hasMore"]) == ([], False)
    too_far = await session.error("switchboard/conversations", {"workspaceUri": workspace, "offset": 2**63})
    assert too_far.code == -32602 and "offset" in too_far.message


def test_an_expected_error_is_logged_as_one_line_without_a_traceback() -> None:
    """pygls logs every error a handler raises with its traceback; a refusal is no failure."""
    import logging
    import sys

    from switchboard.logs import ExpectedErrors
    from switchboard.protocol.errors import AuthRequired, SwitchboardError
    from switchboard.protocol.messages import AuthErrorData

    def record(error: Exception) -> logging.LogRecord:
        try:
            raise error
        except Exception:
            info = sys.exc_info()
        return logging.LogRecord(
            "pygls.protocol.json_rpc",
            logging.ERROR,
            __file__,
            1,
            'Exception occurred for message "%s"',
            (7,),
            info,
        )

    refused = record(AuthRequired("The session ended.", AuthErrorData(reason="session_ended")))
    assert ExpectedErrors().filter(refused)
    assert refused.levelno == logging.INFO and refused.exc_info is None
    assert refused.getMessage() == (
        'Exception occurred for message "7": answered with error 1004 (The session ended.)'
    )
    broken = record(SwitchboardError("internal"))
    assert ExpectedErrors().filter(broken)
    assert broken.levelno == logging.ERROR and broken.exc_info is not None

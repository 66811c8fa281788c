"""`switchboard chat --gateway URL` against a stub gateway (no PostgreSQL): what a hostile gateway's text
can do to the terminal, and which failed resumes and sign-outs keep or delete the stored refresh token.
The refresh token lives in keyrings.alt's PlaintextKeyring under a temporary XDG_DATA_HOME, as in
tests/gateway/hosted/test_hosted_terminal.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from keyrings.alt.file import PlaintextKeyring

from test_terminal import ChatProcess, keyring_chat_env, one_shot

SERVICE = "switchboard"
STORED = "sbr_" + "7" * 40

# An OSC 8 hyperlink whose text says one address and whose target is another, then an OSC 52 clipboard
# write, then a BEL and a C1 CSI: what a hostile gateway could put in the text the terminal prints.
HOSTILE = (
    "\x1b]8;;https://evil.example/device\x1b\\https://cloud.example/device\x1b]8;;\x1b\\"
    "\x1b]52;c;ZXZpbA==\x07\x9b2J"
)

Handler = Callable[[str, str], tuple[int, dict[str, Any]] | None]


class StubGateway:
    """A gateway that answers what `answer(method, path)` says; None holds the request unanswered (until
    the test ends). `asked` is set at each request; `paths` lists them."""

    def __init__(self, answer: Handler) -> None:
        self.paths: list[str] = []
        self.asked = threading.Event()
        self._release = threading.Event()
        stub = self

        class Handle(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub._handle(self, "GET")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                stub._handle(self, "POST")

            def log_message(self, *_args: Any) -> None:
                return None

        self._answer = answer
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        self.paths.append(request.path)
        self.asked.set()
        answer = self._answer(method, request.path)
        if answer is None:
            self._release.wait(60)
            return
        status, body = answer
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "device_authorization_endpoint": self.url + "/oauth/device",
            "token_endpoint": self.url + "/oauth/token",
            "revocation_endpoint": self.url + "/oauth/revoke",
            "jwks_uri": self.url + "/.well-known/jwks.json",
        }

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def chat_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return keyring_chat_env(tmp_path, monkeypatch)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


@pytest.fixture
def closed_url() -> Iterator[str]:
    """A loopback URL nobody answers at (the port held bound, so no other test is handed it)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


def stored(url: str) -> str | None:
    return PlaintextKeyring().get_password(SERVICE, url)


def server_pid(chat: ChatProcess) -> int:
    """The `switchboard serve` the chat process started (its only child)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == chat.proc.pid:
            return int(entry.name)
    raise AssertionError("the chat process has no server process")


def test_text_from_a_hostile_gateway_cannot_drive_the_terminal(
    chat_env: dict[str, str], project: Path
) -> None:
    """The code to enter and the gateway's error description reach the terminal without their control
    characters: no hyperlink that hides its target, no clipboard write. (A link that is not an http(s) URL
    is refused by the server before it is shown: test_hosted_session.py.)"""

    def answer(method: str, path: str) -> tuple[int, dict[str, Any]] | None:
        if path == "/.well-known/oauth-authorization-server":
            return 200, gateway.metadata()
        if path == "/oauth/device":
            return 200, {
                "device_code": "dc",
                "user_code": "BCDF-GHJK" + HOSTILE,
                "verification_uri": gateway.url + "/device",
                "expires_in": 600,
                "interval": 1,
            }
        if path == "/oauth/token":
            return 400, {"error": "invalid_request", "error_description": "No." + HOSTILE}
        return 404, {}

    gateway = StubGateway(answer)
    chat = ChatProcess(["--gateway", gateway.url, "--workspace", str(project)], chat_env)
    try:
        chat.expect("/help for commands")
        chat.send("/signin")
        chat.expect(r"To sign in, open .*/device")
        chat.expect(r"enter the code BCDF-GHJK.*https://cloud\.example/device")
        chat.expect(r"refused the sign-in: No\..*evil\.example", timeout=30)
        chat.send("/quit")
        assert chat.finish() == 0
    finally:
        chat.kill()
        gateway.close()
    assert not any(char in chat.output for char in "\x1b\x07\x9b"), repr(chat.output)


def test_a_resume_the_server_does_not_finish_keeps_the_stored_session(
    chat_env: dict[str, str], project: Path
) -> None:
    """The server stops while it resumes (the gateway has not answered yet): nothing was said about the
    token, so it stays for the next start."""
    gateway = StubGateway(lambda _method, _path: None)  # never answers
    PlaintextKeyring().set_password(SERVICE, gateway.url, STORED)
    chat = ChatProcess(["--gateway", gateway.url, "--workspace", str(project)], chat_env)
    try:
        assert gateway.asked.wait(40), "the server did not ask the gateway"
        os.kill(server_pid(chat), signal.SIGKILL)
        chat.expect(r"Not signed in: The Switchboard server stopped unexpectedly", timeout=30)
        assert chat.finish() != 0
    finally:
        chat.kill()
        gateway.close()
    assert stored(gateway.url) == STORED, "a resume cut short cost the stored session"


def test_signout_deletes_the_stored_session_even_when_the_server_has_stopped(
    chat_env: dict[str, str], project: Path, closed_url: str
) -> None:
    PlaintextKeyring().set_password(SERVICE, closed_url, STORED)
    chat = ChatProcess(["--gateway", closed_url, "--workspace", str(project)], chat_env)
    try:
        chat.expect(r"Not signed in: .*did not answer", timeout=40)  # unreachable: the token is kept
        chat.expect("/help for commands")
        assert stored(closed_url) == STORED
        os.kill(server_pid(chat), signal.SIGKILL)
        chat.command("/signout", r"error: The Switchboard server stopped unexpectedly")
        assert chat.finish() != 0
    finally:
        chat.kill()
    assert stored(closed_url) is None, "/signout left the session to be resumed at the next start"


def test_no_key_with_a_gateway_configured_says_to_sign_in(
    chat_env: dict[str, str], project: Path, closed_url: str
) -> None:
    """Not signed in (here: nothing stored) with a gateway configured and no own key: the chat's 1004
    names the gateway and says how to sign in to it (/signin in the REPL; one shot has no /signin)."""
    chat = ChatProcess(["--gateway", closed_url, "--workspace", str(project)], chat_env)
    try:
        chat.expect("/help for commands")
        chat.send("hello")
        chat.expect(rf"error: Not signed in to Switchboard Cloud \({closed_url}\): /signin signs in\.")
        chat.send("/quit")
        assert chat.finish() == 0
    finally:
        chat.kill()
    assert "export ANTHROPIC_API_KEY" not in chat.output, chat.output

    result = one_shot(["--gateway", closed_url, "--workspace", str(project), "hello"], chat_env)
    assert result.returncode == 1
    assert f"sign in with /signin in `switchboard chat --gateway {closed_url}`" in result.stderr, (
        result.stderr
    )
    assert "/signin signs in" not in result.stderr

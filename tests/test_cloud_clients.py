"""The language server and the terminal client against a whole Switchboard Cloud (tests/hosted_stack.py): a
real gateway process on a throwaway PostgreSQL, the fake Anthropic API as its upstream, and the clients as
real processes (the server over stdio, `switchboard chat` over pipes or a pseudo-terminal)."""

from __future__ import annotations

import codecs
import contextlib
import os
import pty
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from keyrings.alt.file import PlaintextKeyring

from conftest import server_env
from gateway.gateway_support import current_period
from hosted_stack import HostedStack, running_stack
from rawlsp import RawServer
from switchboard.fakeapi import Fault
from test_terminal import CHAT, ChatProcess, keyring_chat_env

VSCODE = "switchboard-vscode"  # the client id of a server whose client does not name itself
TERMINAL = "switchboard-terminal"
SERVICE = "switchboard"  # the terminal's keyring service


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostedStack]:
    with running_stack(tmp_path_factory.mktemp("cloud")) as stack:
        yield stack


@pytest.fixture(autouse=True)
def _no_faults_left(cloud: HostedStack) -> Iterator[None]:
    yield
    cloud.upstream.clear_faults()


def cloud_server_env(home: Path, cloud: HostedStack) -> dict[str, str]:
    """The language server's environment: the gateway configured, no own key that could answer."""
    return server_env(
        home,
        None,
        SWITCHBOARD_GATEWAY_URL=cloud.url,
        SWITCHBOARD_REQUEST_TIMEOUT="10",
        ANTHROPIC_BASE_URL="http://127.0.0.1:9",
        ANTHROPIC_API_KEY=None,
    )


def test_a_vendor_key_the_upstream_refuses_is_not_worth_retrying(
    cloud: HostedStack, tmp_path: Path, workspace: str
) -> None:
    """The Anthropic API refuses the gateway's own key: the gateway answers 502 with `x-should-retry:
    false` (its key stays wrong until whoever runs it fixes it). The server does not retry it (the SDK
    honours the header) and must not advise the editor to (1003 `retryable` false), although 502 alone
    would be retryable."""
    server = RawServer(cloud_server_env(tmp_path / "ls", cloud))
    try:
        server.initialize(workspace)
        server.result("switchboard/signIn", {"refreshToken": cloud.refresh_token(VSCODE)}, timeout=30)
        before = len(cloud.upstream.received())
        cloud.upstream.add_fault(Fault("status", status=401, count=None, message="invalid x-api-key"))
        frame = server.call(
            "switchboard/chat",
            {"workspaceUri": workspace, "prompt": "hi", "modelId": "claude-haiku-4.5"},
            timeout=60,
        )
        error = frame.get("error")
        assert error is not None, frame
        assert error["code"] == 1003, error
        assert error["data"]["status"] == 502 and error["data"]["retryable"] is False, error
        assert "try again" not in error["message"].lower(), error["message"]
        assert len(cloud.upstream.received()) - before == 1  # nobody retried it
    finally:
        server.close()


# --- the terminal client ------------------------------------------------------------------------------


@pytest.fixture
def chat_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return keyring_chat_env(tmp_path, monkeypatch)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def stored(cloud: HostedStack) -> str | None:
    return PlaintextKeyring().get_password(SERVICE, cloud.url)


def refreshed(cloud: HostedStack, refresh_token: str) -> dict[str, Any]:
    """The token endpoint's answer to a refresh with `refresh_token` (an error for a revoked one)."""
    answer = cloud.http.post(
        cloud.metadata()["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": TERMINAL},
    )
    return answer.json()


def signed_in_chat(cloud: HostedStack, email: str, args: list[str], env: dict[str, str]) -> ChatProcess:
    """`switchboard chat` resuming a session of `email` kept in the keyring."""
    PlaintextKeyring().set_password(SERVICE, cloud.url, cloud.refresh_token(TERMINAL, email))
    chat = ChatProcess(["--gateway", cloud.url, *args], env)
    chat.expect(rf"Signed in to Switchboard Cloud as {re.escape(email)}", timeout=40)
    chat.expect("/help for commands")
    return chat


def used_up(cloud: HostedStack, plan: str, used_h: int) -> str:
    """A new account of `plan` that has used `used_h` hundredths of a credit this month: its email."""
    email = cloud.add_account(plan)
    cloud.sql(
        "INSERT INTO account_periods (account_id, period, used_h) SELECT id, %s, %s FROM accounts "
        "WHERE email = %s",
        (current_period(), used_h, email),
    )
    return email


def test_out_of_credits_advice_adds_only_what_the_message_does_not_say(
    cloud: HostedStack, chat_env: dict[str, str], project: Path
) -> None:
    """1002 on Free with no credits left: the gateway's message names the reset and the upgrade already, so
    the terminal does not say either again."""
    email = used_up(cloud, "free", 50 * 100)
    chat = signed_in_chat(cloud, email, ["--workspace", str(project)], chat_env)
    try:
        chat.send("hi")
        gone = chat.expect(r"error: .*").group(0)
        assert "upgrade to Pro" in gone, gone
        assert gone.lower().count("upgrade") == 1 and gone.lower().count("reset") == 1, gone
        chat.send("/quit")
        assert chat.finish() == 0
    finally:
        chat.kill()

    # Pro, overage off: the message says to enable overage or wait for the reset; the terminal adds only
    # where overage is turned on (it has no command for it).
    email = used_up(cloud, "pro", 1000 * 100)
    chat = signed_in_chat(cloud, email, ["--workspace", str(project)], chat_env)
    try:
        chat.send("hi")
        gone = chat.expect(r"error: .*").group(0)
        assert "Enable overage" in gone and "Switchboard: Enable Overage" in gone, gone
        assert gone.lower().count("reset") == 1 and gone.lower().count("turn on overage") == 0, gone
        chat.send("/quit")
        assert chat.finish() == 0
    finally:
        chat.kill()


def test_a_session_revoked_while_chatting_says_signed_out_and_the_repl_goes_on(
    cloud: HostedStack, chat_env: dict[str, str], project: Path
) -> None:
    """The operator revokes the account mid-run: the next message is refused, the refresh the server tries
    is refused too, and the session ends. The terminal says so once, with /signin, no traceback; the stored
    token is deleted, and the REPL keeps going (its commands answer; a message says to sign in)."""
    email = cloud.add_account("pro")
    chat = signed_in_chat(cloud, email, ["--workspace", str(project)], chat_env)
    try:
        chat.send("hello")
        chat.expect(r"credits? · [\d,]+ in")
        cloud.admin("accounts", "revoke", email)
        chat.send("hello again")
        chat.expect(r"session has ended.*", timeout=40)
        chat.expect(r"/signin")
        chat.command("/help", r"/signin +sign in")
        chat.send("one more")
        chat.expect(r"Not signed in to Switchboard Cloud \(.*\): /signin signs in")
        chat.send("/quit")
        assert chat.finish() == 0
    finally:
        chat.kill()
    assert "Traceback" not in chat.output, chat.output
    assert chat.output.count("session has ended") == 1, chat.output
    assert stored(cloud) is None


def test_signing_in_again_revokes_the_session_it_replaces(
    cloud: HostedStack, chat_env: dict[str, str], project: Path
) -> None:
    """/signin while signed in: once the new session is in hand, the one it replaces is revoked at the
    gateway (its refresh token refused), not left alive with nobody holding it."""
    email = cloud.add_account("pro")
    chat = signed_in_chat(cloud, email, ["--workspace", str(project)], chat_env)
    try:
        old = stored(cloud)
        assert old
        chat.send("/signin")
        code = chat.expect(r"enter the code ([A-Z0-9]{4}-[A-Z0-9]{4})").group(1)
        cloud.approve(code, email)
        chat.expect(rf"Signed in to Switchboard Cloud as {re.escape(email)}", timeout=40)
        new = stored(cloud)
        assert new and new != old
        chat.send("/quit")
        assert chat.finish() == 0
    finally:
        chat.kill()
    assert refreshed(cloud, old).get("error") == "invalid_grant"


class TerminalChat:
    """`switchboard chat` on a pseudo-terminal, as a person runs it: readline edits the line at the prompt,
    and what is typed is echoed."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [*CHAT, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "dumb", "NO_COLOR": "1"},
            start_new_session=True,
        )
        os.close(slave)
        self._master = master
        self.output = ""
        self._seen = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            try:
                chunk = os.read(self._master, 4096)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self.output += decoder.decode(chunk)

    def type(self, text: str) -> None:
        os.write(self._master, text.encode())

    def expect(self, pattern: str, timeout: float = 40) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                match = re.compile(pattern).search(self.output, self._seen)
            if match:
                self._seen = match.end()
                return match
            time.sleep(0.05)
        pytest.fail(f"no {pattern!r} within {timeout}s; output:\n{self.output!r}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self._master)


class SlowCharges:
    """A TCP proxy in front of the gateway that passes every byte on as it comes, but holds a request for a
    turn's charge (`GET /v1/switchboard/turns/…`) `delay` seconds: the figure of a stopped answer then
    comes well after the answer's ending was printed."""

    def __init__(self, upstream: str, delay: float) -> None:
        self._target = urlsplit(upstream)
        self._delay = delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection((self._target.hostname, self._target.port))
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, requests: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if requests and chunk.startswith(b"GET /v1/switchboard/turns/"):
                    time.sleep(self._delay)
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()


def test_a_charge_that_comes_while_at_the_prompt_draws_the_prompt_again(
    cloud: HostedStack, chat_env: dict[str, str], project: Path
) -> None:
    """A stopped answer's charge comes after the prompt is back (`charge pending`, then the figure): the
    line goes above the prompt, and the prompt, with what has been typed since, is drawn again after it."""
    email = cloud.add_account("pro")
    slow = SlowCharges(cloud.url, delay=3.0)
    PlaintextKeyring().set_password(SERVICE, slow.url, cloud.refresh_token(TERMINAL, email))
    chat = TerminalChat(["--gateway", slow.url, "--workspace", str(project)], chat_env)
    try:
        chat.expect(rf"Signed in to Switchboard Cloud as {re.escape(email)}")
        chat.expect("› ")
        chat.type("Write a long essay [[fake:words=600 slow=0.05]]\r")
        chat.expect("Simulated reply from", timeout=60)
        time.sleep(0.5)
        os.kill(chat.proc.pid, signal.SIGINT)
        ending = chat.expect(r"Cancelled · (charge pending|[\d.]+ credits?)\.")
        if ending.group(1) != "charge pending":
            pytest.skip("the gateway's charge came before the answer's ending was printed")
        chat.expect("› ")
        chat.type("and then")
        chat.expect(r"Charged for the stopped answer: [\d.]+ credits?\.")
        chat.expect(r"\r\n› and then", timeout=5)
    finally:
        chat.close()
        slow.close()

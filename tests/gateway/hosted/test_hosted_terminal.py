"""`switchboard chat --gateway URL`: device sign-in end to end, the refresh token in a real keyring backend
(keyrings.alt's PlaintextKeyring, with its data root in a temporary folder, chosen through
PYTHON_KEYRING_BACKEND as a user would), the session resumed at the next start, and sign-out."""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from keyrings.alt.file import PlaintextKeyring

from gateway.gateway_support import Replica, current_period
from gateway.hosted.hosted_support import TERMINAL, HostedGateway, serve_again, start_gateway
from gateway.signin.signin_support import OAuthClient, SignInAccounts
from test_terminal import ChatProcess, keyring_chat_env, one_shot

SERVICE = "switchboard"


@pytest.fixture
def chat_env(tmp_path: Path, hosted: HostedGateway, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return keyring_chat_env(tmp_path, monkeypatch)


def stored(url: str) -> str | None:
    return PlaintextKeyring().get_password(SERVICE, url)


class SlowUsage:
    """A pass-through proxy in front of the gateway that hands the usage report (the last step of a sign-in
    or resume, after the refresh token was rotated) on `delay` seconds late; `usage_asked` is set then."""

    def __init__(self, upstream: str, delay: float) -> None:
        self.usage_asked = threading.Event()
        proxy = self

        class Handle(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy._forward(self, None)

            def do_POST(self) -> None:
                proxy._forward(self, self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def log_message(self, *_args: Any) -> None:
                return None

        self._upstream = upstream
        self._delay = delay
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _forward(self, request: BaseHTTPRequestHandler, body: bytes | None) -> None:
        if request.path.startswith("/v1/switchboard/usage"):
            self.usage_asked.set()
            time.sleep(self._delay)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "connection")}
        forwarded = urllib.request.Request(
            self._upstream + request.path, data=body, headers=headers, method=request.command
        )
        try:
            with urllib.request.urlopen(forwarded, timeout=30) as answer:
                status, data, kind = answer.status, answer.read(), answer.headers.get("Content-Type")
        except urllib.error.HTTPError as refused:
            status, data, kind = refused.code, refused.read(), refused.headers.get("Content-Type")
        request.send_response(status)
        request.send_header("Content-Type", kind or "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def slow_usage(hosted: HostedGateway) -> Iterator[SlowUsage]:
    proxy = SlowUsage(hosted.url, delay=3.0)
    try:
        yield proxy
    finally:
        proxy.close()


async def test_switchboard_chat_signs_in_with_a_device_code_keeps_the_session_and_signs_out(
    hosted: HostedGateway, database_url: str, chat_env: dict[str, str], tmp_path: Path
) -> None:
    person = await SignInAccounts(database_url).create("pro")
    project = tmp_path / "project"
    project.mkdir()
    args = ["--gateway", hosted.url, "--workspace", str(project)]

    chat = ChatProcess(args, chat_env)
    try:
        chat.send("/signin")
        link = chat.expect(r"To sign in, open (\S+)").group(1)
        assert link.startswith(hosted.url + "/device")
        code = chat.expect(r"enter the code ([A-Z0-9]{4}-[A-Z0-9]{4})").group(1)
        hosted.approve(code, person.email)
        chat.expect(rf"Signed in to Switchboard Cloud as {person.email} \(Pro\)", timeout=30)
        first = stored(hosted.url)
        assert first, "the refresh token was not kept in the keyring"
        chat.send("hello there")
        footer = chat.expect(r"credits? · [\d,]+ in").group(0)
        assert "$" not in footer  # signed in: credits, no list price
        chat.command("/usage", rf"Signed in to Switchboard Cloud as {person.email}")
        assert chat.finish() == 0
    finally:
        chat.kill()
    assert first not in chat.output

    again = ChatProcess(args, chat_env)
    try:
        again.expect(rf"Signed in to Switchboard Cloud as {person.email}", timeout=30)
        resumed = stored(hosted.url)
        assert resumed and resumed != first, "the rotated refresh token did not overwrite the stored one"
        again.command("/signout", "Signed out of Switchboard Cloud")
        assert stored(hosted.url) is None
        assert again.finish() == 0
    finally:
        again.kill()
    client = OAuthClient(hosted.url, client_id=TERMINAL)
    try:
        assert client.refresh(resumed).json().get("error") == "invalid_grant"  # revoked at sign-out
    finally:
        client.close()


async def test_a_stored_session_survives_a_start_when_the_gateway_cannot_be_reached(
    hosted: HostedGateway, database_url: str, chat_env: dict[str, str], tmp_path: Path, closed_port: int
) -> None:
    """Offline (or during a gateway restart) the resume fails as unreachable: the keyring keeps the token
    for the next start. A token the gateway says is dead is deleted (the control)."""
    person = await SignInAccounts(database_url).create("pro")
    project = tmp_path / "project"
    project.mkdir()
    away = f"http://127.0.0.1:{closed_port}"
    kept = hosted.refresh_token_for(person.email, client_id=TERMINAL)
    PlaintextKeyring().set_password(SERVICE, away, kept)
    chat = ChatProcess(["--gateway", away, "--workspace", str(project)], chat_env)
    try:
        chat.expect(r"Not signed in: .*could not be reached|Not signed in: .*did not answer", timeout=30)
        assert chat.finish() == 0
    finally:
        chat.kill()
    assert stored(away) == kept, "an unreachable gateway cost the stored session"

    PlaintextKeyring().set_password(SERVICE, hosted.url, "sbr_" + "0" * 40)  # no such token
    dead = ChatProcess(["--gateway", hosted.url, "--workspace", str(project)], chat_env)
    try:
        dead.expect(r"Not signed in[.:] ", timeout=30)
        assert dead.finish() == 0
    finally:
        dead.kill()
    assert stored(hosted.url) is None


async def test_ctrl_c_during_the_resume_at_start_keeps_the_rotated_token(
    hosted: HostedGateway, database_url: str, chat_env: dict[str, str], tmp_path: Path, slow_usage: SlowUsage
) -> None:
    """Ctrl-C while the resume waits for the usage report, after the gateway rotated the stored token: the
    client waits for the result and keeps the new token, instead of leaving the spent one stored."""
    person = await SignInAccounts(database_url).create("pro")
    project = tmp_path / "project"
    project.mkdir()
    args = ["--gateway", slow_usage.url, "--workspace", str(project)]
    kept = hosted.refresh_token_for(person.email, client_id=TERMINAL)
    PlaintextKeyring().set_password(SERVICE, slow_usage.url, kept)

    chat = ChatProcess(args, chat_env)
    try:
        assert slow_usage.usage_asked.wait(40), "the resume did not reach the usage report"
        os.kill(chat.proc.pid, signal.SIGINT)
        assert chat.proc.wait(30) == 130
    finally:
        chat.kill()
    rotated = stored(slow_usage.url)
    assert rotated and rotated != kept, "Ctrl-C left the spent token stored"

    again = ChatProcess(args, chat_env)
    try:
        again.expect(rf"Signed in to Switchboard Cloud as {person.email}", timeout=40)
        assert again.finish() == 0
    finally:
        again.kill()


# A keyring backend that never answers, as a locked Secret Service can: each call sleeps for ten minutes.
STUCK_KEYRING = """
import time

from keyring.backend import KeyringBackend


class Stuck(KeyringBackend):
    priority = 1

    def get_password(self, service, username):
        time.sleep(600)

    def set_password(self, service, username, password):
        time.sleep(600)

    def delete_password(self, service, username):
        time.sleep(600)
"""


def sign_in(chat: ChatProcess, hosted: HostedGateway, email: str) -> None:
    chat.send("/signin")
    code = chat.expect(r"enter the code ([A-Z0-9]{4}-[A-Z0-9]{4})").group(1)
    hosted.approve(code, email)
    chat.expect(rf"Signed in to Switchboard Cloud as {email}", timeout=30)


async def test_without_a_keyring_backend_the_user_is_told_once(
    hosted: HostedGateway, database_url: str, chat_env: dict[str, str], tmp_path: Path
) -> None:
    """Every sign-in and every rotation tries to keep the token; with no backend, one warning says so."""
    person = await SignInAccounts(database_url).create("pro")
    project = tmp_path / "project"
    project.mkdir()
    env = {**chat_env, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    chat = ChatProcess(["--gateway", hosted.url, "--workspace", str(project)], env)
    try:
        sign_in(chat, hosted, person.email)
        sign_in(chat, hosted, person.email)  # a second save, as a rotation makes
        assert chat.finish() == 0
    finally:
        chat.kill()
    assert chat.output.count("Could not keep the session in the OS keyring") == 1, chat.output


async def test_a_keyring_that_does_not_answer_costs_seconds_once_not_the_session(
    hosted: HostedGateway, database_url: str, chat_env: dict[str, str], tmp_path: Path
) -> None:
    """The stored session cannot be read at start: after the keyring's time limit the client says so once
    and starts; a sign-in then does not wait for the keyring again."""
    person = await SignInAccounts(database_url).create("pro")
    project = tmp_path / "project"
    project.mkdir()
    backends = tmp_path / "backends"
    backends.mkdir()
    (backends / "stuck_keyring.py").write_text(STUCK_KEYRING)
    env = {**chat_env, "PYTHON_KEYRING_BACKEND": "stuck_keyring.Stuck", "PYTHONPATH": str(backends)}
    chat = ChatProcess(["--gateway", hosted.url, "--workspace", str(project)], env)
    try:
        chat.expect(r"The OS keyring did not answer within \d+ seconds", timeout=30)
        chat.expect("/help for commands")
        started = time.monotonic()
        sign_in(chat, hosted, person.email)
        assert time.monotonic() - started < 20
        assert chat.finish() == 0
    finally:
        chat.kill()
    assert chat.output.count("OS keyring") == 1, chat.output


# A keyring backend whose reads wait while the file KEYRING_HOLD names exists (a Secret Service locked until
# the user unlocks it); otherwise keyrings.alt's PlaintextKeyring, the one the test reads.
HELD_KEYRING = """
import os
import time

from keyrings.alt.file import PlaintextKeyring


class Held(PlaintextKeyring):
    priority = 1

    def get_password(self, service, username):
        while os.path.exists(os.environ["KEYRING_HOLD"]):
            time.sleep(0.05)
        return super().get_password(service, username)
"""


async def test_a_device_sign_in_over_a_stored_session_this_process_never_read_leaves_it_alone(
    hosted: HostedGateway, database_url: str, chat_env: dict[str, str], tmp_path: Path
) -> None:
    """The keyring did not answer at start (locked), so the stored session was neither read nor resumed, and
    /signin starts the device flow. Once the keyring answers, the new session's token overwrites the stored
    one. This process never read that token: it may be another `switchboard chat`'s live session, so it is
    not revoked (a session left alive is better than one signed out), and the new session is untouched."""
    people = SignInAccounts(database_url)
    person = await people.create("pro")
    project = tmp_path / "project"
    project.mkdir()
    kept = hosted.refresh_token_for(person.email, client_id=TERMINAL)
    PlaintextKeyring().set_password(SERVICE, hosted.url, kept)
    backends = tmp_path / "backends"
    backends.mkdir()
    (backends / "held_keyring.py").write_text(HELD_KEYRING)
    hold = tmp_path / "keyring-locked"
    hold.touch()
    env = {
        **chat_env,
        "PYTHON_KEYRING_BACKEND": "held_keyring.Held",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(backends), os.environ.get("PYTHONPATH")])),
        "KEYRING_HOLD": str(hold),
    }
    revoked = "SELECT count(*) AS n FROM refresh_families WHERE account_id = %s AND revoked_at IS NOT NULL"
    chat = ChatProcess(["--gateway", hosted.url, "--workspace", str(project)], env)
    try:
        chat.expect(r"The OS keyring did not answer within \d+ seconds", timeout=30)
        chat.expect("/help for commands")
        chat.send("/signin")
        code = chat.expect(r"enter the code ([A-Z0-9]{4}-[A-Z0-9]{4})").group(1)
        hold.unlink()  # the user unlocks the keyring while approving in the browser
        hosted.approve(code, person.email)
        chat.expect(rf"Signed in to Switchboard Cloud as {person.email}", timeout=30)
        time.sleep(2)  # a revocation would be under way in the background by now
        chat.command("hello there", r"credits? · [\d,]+ in")  # the new session was not the one revoked
        assert chat.finish() == 0
    finally:
        chat.kill()
    replacement = stored(hosted.url)
    assert replacement and replacement != kept
    assert (await people.execute(revoked, (person.id,)))[0]["n"] == 0
    client = OAuthClient(hosted.url, client_id=TERMINAL)
    try:
        assert client.refresh(replacement).status_code == 200
        assert client.refresh(kept).status_code == 200, "a token this process never read was revoked"
    finally:
        client.close()


async def test_a_stopped_answer_says_its_charge_is_pending_then_shows_the_gateways_figure(
    hosted: HostedGateway, database_url: str, chat_env: dict[str, str], tmp_path: Path
) -> None:
    """Ctrl-C on a signed-in answer: the gateway charges what reached it, a figure that comes after the
    cancel is answered (`switchboard/turnCharged`). The terminal says it is pending, then prints it."""
    person = await SignInAccounts(database_url).create("pro")
    project = tmp_path / "project"
    project.mkdir()
    chat = ChatProcess(["--gateway", hosted.url, "--workspace", str(project)], chat_env)
    try:
        sign_in(chat, hosted, person.email)
        chat.send("Write a long essay [[fake:words=600 slow=0.05]]")
        chat.expect("Simulated reply from", timeout=60)
        time.sleep(0.5)
        os.kill(chat.proc.pid, signal.SIGINT)
        # The gateway's figure usually comes after the cancel is answered (pending, then the figure); on a
        # busy machine it can come first, and the ending then says it at once.
        ending = chat.expect(r"(?m)^Cancelled · (?:charge pending|([\d.]+) credits?)\.$", timeout=30)
        charged = ending.group(1)
        if charged is None:
            charged = chat.expect(r"Charged for the stopped answer: ([\d.]+) credits?\.", timeout=40).group(1)
        assert float(charged) > 0
        chat.send("/quit")
        assert chat.finish() == 0
    finally:
        chat.kill()


async def test_out_of_credits_advice_follows_the_plan_and_the_credits_left(
    hosted: HostedGateway, database_url: str, chat_env: dict[str, str], tmp_path: Path
) -> None:
    """1002 on the Free plan (no overage): upgrade, not overage; a cheaper model only while some credits
    are left, and said once (the server's message says it already then)."""
    accounts = SignInAccounts(database_url)
    person = await accounts.create("free")  # 50 credits, no overage
    await accounts.execute(
        "INSERT INTO account_periods (account_id, period, used_h) VALUES (%s, %s, %s)",
        (person.id, current_period(), 50 * 100 - 1),  # 0.01 credits left
    )
    project = tmp_path / "project"
    project.mkdir()
    chat = ChatProcess(["--gateway", hosted.url, "--workspace", str(project)], chat_env)
    try:
        sign_in(chat, hosted, person.email)
        chat.send("/model claude-sonnet-4.5")
        chat.send("hi")
        short = chat.expect(r"error: This answer could cost up to .*").group(0)
        assert short.lower().count("cheaper model") == 1, short
        assert "overage" not in short and "upgrade your plan" in short, short
        await accounts.execute(
            "UPDATE account_periods SET used_h = %s WHERE account_id = %s", (50 * 100, person.id)
        )
        chat.send("hi again")
        gone = chat.expect(r"error: .*").group(0)
        assert "cheaper model" not in gone and "overage" not in gone, gone
        assert gone.lower().count("upgrade") == 1, (
            gone
        )  # the server's message says it; the hint does not repeat it
        chat.send("/quit")
        assert chat.finish() == 0
    finally:
        chat.kill()


async def test_a_gateway_that_is_down_is_not_answered_with_pick_another_model(
    hosted_env: dict[str, str], database_url: str, chat_env: dict[str, str], tmp_path: Path
) -> None:
    """Another model cannot help when the gateway cannot be reached: neither the chat's 1003 nor /usage's
    suggests /model."""
    own = start_gateway(hosted_env, tmp_path / "own-gateway.log")  # stopped by this test
    person = await SignInAccounts(database_url).create("pro")
    project = tmp_path / "project"
    project.mkdir()
    chat = ChatProcess(["--gateway", own.url, "--workspace", str(project)], chat_env)
    try:
        sign_in(chat, own, person.email)
        own.stop()
        chat.send("hello")
        failed = chat.expect(r"error: .*Switchboard Cloud.*").group(0)
        chat.send("/usage")
        usage = chat.expect(r"error: .*").group(0)
        chat.send("/quit")
        assert chat.finish() == 0
    finally:
        chat.kill()
        own.stop()
    assert "/model" not in failed, failed
    assert "/model" not in usage, usage


def test_a_dead_stored_session_is_explained_once_and_one_shot_does_not_offer_the_repls_signin(
    hosted: HostedGateway, chat_env: dict[str, str], tmp_path: Path
) -> None:
    """The gateway refuses the stored refresh token: the reason is printed once (not again after `Not signed
    in:`), and one-shot mode, which has no /signin, says where to sign in instead."""
    project = tmp_path / "project"
    project.mkdir()
    PlaintextKeyring().set_password(SERVICE, hosted.url, "sbr_" + "0" * 40)  # no such token
    result = one_shot(["--gateway", hosted.url, "--workspace", str(project), "hello"], chat_env)
    assert result.returncode == 1
    assert result.stderr.count("session has ended") == 1, result.stderr
    assert "/signin signs in again" not in result.stderr, result.stderr
    assert f"switchboard chat --gateway {hosted.url}" in result.stderr, result.stderr
    assert stored(hosted.url) is None


async def test_signin_resumes_the_kept_session_once_the_gateway_is_back(
    hosted_env: dict[str, str], database_url: str, chat_env: dict[str, str], tmp_path: Path
) -> None:
    """The gateway was down at start, so the kept session was not resumed: /signin, once it is back, resumes
    that session (and keeps its rotated token) instead of a device flow that would replace a valid one."""
    own = start_gateway(hosted_env, tmp_path / "own-gateway.log")
    back: Replica | None = None
    person = await SignInAccounts(database_url).create("pro")
    project = tmp_path / "project"
    project.mkdir()
    kept = own.refresh_token_for(person.email, client_id=TERMINAL)
    PlaintextKeyring().set_password(SERVICE, own.url, kept)
    own.stop()
    chat = ChatProcess(["--gateway", own.url, "--workspace", str(project)], chat_env)
    try:
        chat.expect(r"Not signed in: ", timeout=40)
        chat.expect("/help for commands")
        back = serve_again(own.replica, hosted_env)
        chat.send("/signin")
        chat.expect(rf"Signed in to Switchboard Cloud as {person.email}", timeout=40)
        assert "To sign in, open" not in chat.output, chat.output
        chat.send("/quit")
        assert chat.finish() == 0
    finally:
        chat.kill()
        if back is not None:
            back.stop()
        own.stop()
    rotated = stored(own.url)
    assert rotated and rotated != kept, "the resumed session's rotated token was not kept"

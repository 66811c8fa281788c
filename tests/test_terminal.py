"""`switchboard chat` end to end: real client processes, each with its own server, against FakeAnthropic."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import server_env
from switchboard.catalog import CATALOG
from switchboard.fakeapi import FakeAnthropic

CHAT = [sys.executable, "-m", "switchboard", "chat"]
EXPECT_SECONDS = 40.0  # generous: a loaded 2-core machine runs three Python processes per test
HAIKU_45 = CATALOG["claude-haiku-4.5"].anthropic_model
SLOW_PROMPT = "tell me a very long story [[fake:slow=0.2 words=400]]"


def keyring_chat_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of a `switchboard chat` whose OS keyring is a file under `tmp_path`, read by this
    process too (so a test can see what the client stored)."""
    keyring_data = tmp_path / "keyring-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(keyring_data))  # so this process reads the same keyring file
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SWITCHBOARD_"))}
    env.update(
        SWITCHBOARD_HOME=str(tmp_path / "state"),
        PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring",
        XDG_DATA_HOME=str(keyring_data),
        PYTHONUNBUFFERED="1",
    )
    return env


class ChatProcess:
    """`switchboard chat` in REPL mode, driven through stdin pipes (stderr merged into the output)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [*CHAT, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            encoding="utf-8",
        )
        self.output = ""
        self._seen = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read(1):
            with self._lock:
                self.output += chunk

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, pattern: str, timeout: float = EXPECT_SECONDS) -> re.Match[str]:
        """Waits for `pattern` in the output not yet consumed by an earlier expect."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                match = re.compile(pattern).search(self.output, self._seen)
            if match:
                self._seen = match.end()
                return match
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the reader catch the last output
                with self._lock:
                    match = re.compile(pattern).search(self.output, self._seen)
                if match:
                    return match
                pytest.fail(f"exited ({self.proc.returncode}) before {pattern!r}; output:\n{self.output}")
            time.sleep(0.05)
        pytest.fail(f"no {pattern!r} within {timeout}s; output:\n{self.output}")

    def command(self, line: str, pattern: str) -> re.Match[str]:
        self.send(line)
        return self.expect(pattern)

    def finish(self, timeout: float = 30) -> int:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


StartRepl = Callable[[list[str], dict[str, str]], ChatProcess]


@pytest.fixture
def repl() -> Iterator[StartRepl]:
    started: list[ChatProcess] = []

    def start(args: list[str], env: dict[str, str]) -> ChatProcess:
        process = ChatProcess(args, env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def one_shot(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CHAT, *args],
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=90,
        stdin=subprocess.DEVNULL,
    )


def chats(fake: FakeAnthropic) -> list[dict[str, Any]]:
    return [r.body for r in fake.received() if r.path == "/v1/messages" and r.body is not None]


def test_one_shot_then_repl_switches_models_keeps_context_and_reopens_history(
    fake_api: FakeAnthropic, state_dir: Path, project: Path, repl: StartRepl
) -> None:
    env = server_env(state_dir, fake_api)
    first = one_shot(["--workspace", str(project), "what is a monad?"], env)

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Simulated reply from") and "what is a monad?" in first.stdout
    # The route and the footer go to stderr, not into the answer; Auto names the model it picked.
    route = re.search(r"^Auto → (Claude \w+ [\d.]+)", first.stderr, re.MULTILINE)
    assert route, first.stderr
    footer = re.search(
        re.escape(route.group(1))
        + r" · [\d.,]+ credits? · \$[\d.]+ · \d+ in / \d+ out tokens · continue with --conversation "
        r"([0-9a-f]{8})",
        first.stderr,
    )
    assert footer, first.stderr
    assert "credits" not in first.stdout
    assert (
        "INFO" not in first.stderr and "Traceback" not in first.stderr
    )  # the server's logs stay out of the way

    # A second process continues the stored conversation, then switches model mid-conversation.
    chat = repl(["--workspace", str(project), "--conversation", footer.group(1)], env)
    chat.expect(r"Continuing “what is a monad\?” \([0-9a-f]{8}, 2 turns\)")
    chat.command("/models", r"\*\s+auto\s+Auto\s+1x\s+available")
    chat.expect(r"claude-haiku-4\.5\s+Claude Haiku 4\.5\s+0\.4x")
    opus_row = r"claude-opus-4\.5\s+Claude Opus 4\.5\s+2\.2x\s+unavailable: .*"
    chat.expect(opus_row + r" · Anthropic retire[sd] it on 2027-01-22")
    chat.send("and a functor?")
    chat.expect(r"Claude \w+ [\d.]+ · [\d.,]+ credits? · \$[\d.]+ · \d+ in / \d+ out tokens")
    chat.command("/model claude-haiku-4.5", r"Model: Claude Haiku 4\.5 \(claude-haiku-4\.5\)")
    chat.command("/models", r"\*\s+claude-haiku-4\.5\s+Claude Haiku 4\.5")
    chat.send("and a monoid?")
    chat.expect(r"Claude Haiku 4\.5 · [\d.,]+ credits? · \$[\d.]+ · \d+ in / \d+ out tokens")

    bodies = chats(fake_api)
    # The first two were Auto's picks (whatever it chose); the third follows the /model switch.
    assert [body["model"] for body in bodies][2] == HAIKU_45
    assert all("opus" not in body["model"] for body in bodies[:2])
    assert [len(body["messages"]) for body in bodies] == [1, 3, 5]  # each continued the conversation
    assert "what is a monad?" in json.dumps(bodies[2]["messages"][0])

    listed = chat.command("/history", r"\*\s+([0-9a-f]{8})\s+\S+ \S+\s+6\s+what is a monad\?")
    assert listed.group(1) == footer.group(1)
    chat.command("/usage", r"Plan: \w+|does not report usage yet")  # politely, until the server has it
    chat.command("/model no-such-model", r"error: Unknown model 'no-such-model'.*/models lists the models\.")
    chat.command("/new", "New conversation")
    chat.send("break [[fake:status=400]]")
    chat.expect(r"error: The Anthropic API returned HTTP 400.*Or pick another model with /model\.")
    chat.send("a fresh start")
    chat.expect(r"\d+ out tokens")
    assert len(chats(fake_api)[-1]["messages"]) == 1

    chat.command(f"/open {listed.group(1)[:5]}", r"Continuing “what is a monad\?” \([0-9a-f]{8}, 6 turns\)")
    chat.expect(r"you: and a monoid\?")
    chat.send("and a semigroup?")
    chat.expect(r"\d+ out tokens")
    assert len(chats(fake_api)[-1]["messages"]) == 7

    chat.send("/quit")
    assert chat.finish() == 0
    assert "Traceback" not in chat.output


def test_ctrl_c_cancels_the_answer_not_the_program(
    fake_api: FakeAnthropic, state_dir: Path, project: Path, repl: StartRepl
) -> None:
    chat = repl(["--workspace", str(project)], server_env(state_dir, fake_api))
    chat.expect("/help for commands")
    chat.send(SLOW_PROMPT)
    chat.expect("Simulated reply from")  # streaming (400 words at 0.2s per delta: well over a minute)
    os.kill(chat.proc.pid, signal.SIGINT)
    chat.expect(r"(?m)^Cancelled\.$", timeout=15)
    assert chat.proc.poll() is None

    listed = chat.command("/history", r"([0-9a-f]{8})\s+\S+ \S+\s+2\s+tell me a very long story")
    chat.command(f"/open {listed.group(1)}", r"\[cancelled\b")
    time.sleep(0.5)  # blocked in input() again: Ctrl-C at the empty prompt leaves
    os.kill(chat.proc.pid, signal.SIGINT)
    assert chat.proc.wait(30) == 0
    assert "Traceback" not in chat.output


def test_the_message_after_a_stopped_first_answer_continues_its_conversation(
    fake_api: FakeAnthropic, state_dir: Path, project: Path, repl: StartRepl
) -> None:
    """The first answer of a conversation is stopped: the turn is stored in the conversation its route
    report named, and the next message continues that conversation instead of starting another."""
    chat = repl(["--workspace", str(project)], server_env(state_dir, fake_api))
    chat.expect("/help for commands")
    chat.send(SLOW_PROMPT)
    chat.expect("Simulated reply from")
    os.kill(chat.proc.pid, signal.SIGINT)
    chat.expect(r"(?m)^Cancelled\.$", timeout=15)
    chat.send("and now a short one")
    chat.expect(r"\d+ out tokens")
    assert "(turn 1; 0 earlier messages): and now a short one" not in chat.output
    chat.send("/history")
    chat.expect(r"[0-9a-f]{8}\s+\S+ \S+\s+4\s+tell me a very long story")
    chat.send("/quit")
    assert chat.finish() == 0
    assert chat.output.count("tell me a very long story") == 2, chat.output  # the prompt echo and one row


def test_the_route_line_names_the_model_once_and_a_forbidden_model_gets_one_hint(
    fake_api: FakeAnthropic, state_dir: Path, project: Path, repl: StartRepl
) -> None:
    """`Auto → Claude Haiku 4.5 · Short request`, not `… · Short request → Claude Haiku 4.5`; and a model the
    plan does not include is told how to pick another here, not a second "pick a model or upgrade"."""
    chat = repl(["--workspace", str(project)], server_env(state_dir, fake_api))
    chat.expect("/help for commands")
    chat.send("hi")
    route = chat.expect(r"Auto → (Claude [^·\n]+) · ([^\n]*)\n")
    assert route.group(1).strip() not in route.group(2), route.group(0)
    chat.send("/model claude-opus-4.5")
    refused = chat.expect(r"error: .*\n").group(0)
    assert refused.lower().count("upgrade") <= 1, refused
    assert "/model auto" in refused, refused
    chat.send("/quit")
    assert chat.finish() == 0


def test_no_key_says_how_to_set_one_and_exits_2(state_dir: Path, project: Path) -> None:
    env = server_env(state_dir, None, ANTHROPIC_API_KEY=None)
    for args in (["--workspace", str(project), "hello"], ["--workspace", str(project)]):
        result = one_shot(args, env)
        assert result.returncode == 2
        assert "ANTHROPIC_API_KEY" in result.stderr and "--offline" in result.stderr
        assert result.stdout == "" and "Traceback" not in result.stderr
    assert not (state_dir / "conversations.sqlite3").exists()  # no server was started


def test_offline_one_shot_needs_no_environment(state_dir: Path, project: Path) -> None:
    env = server_env(state_dir, None, ANTHROPIC_API_KEY=None)
    assert not any(name.startswith("ANTHROPIC_") for name in env)

    result = one_shot(["--offline", "--workspace", str(project), "hello offline"], env)

    assert result.returncode == 0, result.stderr
    assert "SIMULATED" in result.stderr
    assert result.stdout.startswith("Simulated reply from") and "hello offline" in result.stdout
    # Own key: the footer shows the answer's cost at list price next to its credits.
    assert re.search(r"credits? · \$\d+\.\d{2,4} · [\d,]+ in", result.stderr), result.stderr


def test_one_shot_failure_is_one_line_and_non_zero(
    fake_api: FakeAnthropic, state_dir: Path, project: Path
) -> None:
    result = one_shot(
        ["--workspace", str(project), "--model", "gpt-5", "hi"], server_env(state_dir, fake_api)
    )

    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: Unknown model 'gpt-5' (--model). Choose one of: auto, "
    )
    assert fake_api.received() == []


def test_rate_the_last_answer_and_see_auto_for_you_in_usage(
    fake_api: FakeAnthropic, state_dir: Path, project: Path, repl: StartRepl
) -> None:
    chat = repl(["--workspace", str(project)], server_env(state_dir, fake_api))
    chat.command("/good", r"error: No answer to rate yet")
    chat.send("what does HTTP 404 mean?")
    chat.expect(r"Claude Haiku 4\.5 · [\d.,]+ credits? · \$[\d.]+ · \d+ in / \d+ out tokens")
    chat.command("/bad", r"Thumbs down on the last answer \(Claude Haiku 4\.5\)\. Auto will send more")
    chat.command("/usage", r"Auto for you: 0% Sonnet this month, leaning stronger after 1 thumbs-down")
    chat.command("/rate clear", r"Rating cleared\.")
    chat.command("/usage", r"Auto for you: 0% Sonnet this month\n")
    chat.command("/rate up", r"Thumbs up on the last answer \(Claude Haiku 4\.5\)\. Auto takes it as a sign")
    chat.command("/rate sideways", r"error: Rate how\? Usage: /rate up, /rate down or /rate clear")
    chat.send("/quit")
    assert chat.finish() == 0
    conversation = chats(fake_api)
    assert len(conversation) == 1, "rating sends nothing to the model"

"""`./dev gateway`: one command brings up PostgreSQL, the fake API, a demo account and a gateway; Ctrl-C
takes all of it down again."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import anthropic
import httpx2
import psycopg
import pytest

from gateway.gateway_support import turn_headers

ROOT = Path(__file__).resolve().parents[2]


def _lines(process: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _read_until_ready(process: subprocess.Popen[str], lines: queue.Queue[str], timeout: float) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while "Ctrl-C stops everything" not in seen:
        if process.poll() is not None and lines.empty():
            raise AssertionError(f"./dev gateway exited with {process.returncode}:\n{seen}")
        try:
            seen += lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"./dev gateway not ready after {timeout}s:\n{seen}") from None
    return seen


def test_dev_gateway_starts_everything_answers_with_the_demo_account_and_cleans_up_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [str(ROOT / "dev"), "gateway", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = _lines(process)
        banner = _read_until_ready(process, lines, timeout=90)
        url = re.search(r"ready at (http://127\.0\.0\.1:\d+)", banner)
        database = re.search(r"PostgreSQL:\s+(postgresql://\S+)", banner)
        token = re.search(r"Access token:\s+(\S+)", banner)
        password = re.search(r"demo@switchboard\.local\s+password: (\S+)", banner)
        state = re.search(r"Log:\s+(\S+)/gateway\.log", banner)
        assert url and database and token and password and state, banner
        assert f'"switchboard.gateway.url": "{url[1]}"' in banner
        assert f"switchboard chat --gateway {url[1]}" in banner

        assert httpx2.get(url[1] + "/readyz").status_code == 200
        client = anthropic.Anthropic(base_url=url[1], auth_token=token[1], api_key=None, max_retries=0)
        message = client.messages.create(
            model="claude-haiku-4-5-20251001",
            max_tokens=50,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers=turn_headers("claude-haiku-4.5"),
        )
        assert message.content and (message.model_extra or {})["switchboard"]["credits"] > 0
        usage = httpx2.get(url[1] + "/v1/switchboard/usage", headers={"authorization": f"Bearer {token[1]}"})
        assert usage.json()["usedCredits"] > 0
        assert token[1] not in Path(state[1], "gateway.log").read_text()

        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
        rest = "".join(lines.get() for _ in range(lines.qsize()))
        assert "Stopped and cleaned up." in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Nothing left behind: no gateway, no PostgreSQL, no state folder.
    assert not Path(state[1]).exists()
    try:
        httpx2.get(url[1] + "/healthz", timeout=2)
        raise AssertionError("the gateway still answers")
    except httpx2.TransportError:
        pass
    try:
        psycopg.connect(database[1], connect_timeout=2).close()
        raise AssertionError("PostgreSQL still runs")
    except psycopg.OperationalError:
        pass


def _processes_mentioning(text: str) -> list[str]:
    """The command lines of running processes that name `text` (a PostgreSQL names its data folder)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in line:
            found.append(line)
    return found


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"./dev gateway exited early ({process.returncode})"
        assert time.monotonic() < deadline, "the start-up step never came"
        time.sleep(0.02)


@pytest.mark.parametrize("moment", ["initdb running", "PostgreSQL starting or up"])
def test_ctrl_c_during_start_up_leaves_no_postgresql_and_no_folder_behind(moment: str) -> None:
    # Its own temporary folder (TMPDIR) tells this run's cluster apart from other test workers' clusters.
    # Not pytest's tmp_path: the postgres user must be able to pass through it.
    own = Path(tempfile.mkdtemp(prefix="switchboard-dev-ctrl-c-"))
    own.chmod(0o755)
    try:
        process = subprocess.Popen(
            [str(ROOT / "dev"), "gateway", "--port", "0"],
            cwd=ROOT,
            env={**os.environ, "TMPDIR": str(own)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl-C signals the whole process group: initdb and pg_ctl too
        )
        try:
            lines = _lines(process)
            clusters = lambda: list(own.glob("switchboard-pg-*"))  # noqa: E731
            if moment == "initdb running":
                _wait_for(lambda: bool(clusters()), process, timeout=60)
            else:
                _wait_for(lambda: any(c.glob("data/postmaster.pid") for c in clusters()), process, 60)
            os.killpg(process.pid, signal.SIGINT)
            assert process.wait(60) == 0
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        said = "".join(lines.get() for _ in range(lines.qsize()))
        assert "Stopped and cleaned up." in said, said
        deadline = time.monotonic() + 10  # pg_ctl's immediate stop has returned; its children may linger
        while _processes_mentioning(str(own)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_mentioning(str(own)) == []
        assert list(own.iterdir()) == [], "a state or cluster folder was left behind"
    finally:
        shutil.rmtree(own, ignore_errors=True)

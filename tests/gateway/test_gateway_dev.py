"""`./dev gateway`: one command brings up PostgreSQL, the fake API, a demo account and a gateway; Ctrl-C
takes all of it down again."""

from __future__ import annotations

import contextlib
import http.server
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anthropic
import httpx2
import psycopg
import pytest

from gateway.gateway_support import turn_headers

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def own_folder(name: str) -> Iterator[Path]:
    """A temporary folder of the test's own, removed afterwards: given to ./dev gateway as TMPDIR, it tells
    this run's cluster apart from other test workers' clusters. Not pytest's tmp_path: the postgres user must
    be able to pass through it."""
    own = Path(tempfile.mkdtemp(prefix=f"switchboard-dev-{name}-"))
    own.chmod(0o755)
    try:
        yield own
    finally:
        shutil.rmtree(own, ignore_errors=True)


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
    with own_folder("ctrl-c") as own:
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


def _dev_gateway(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """tools/gateway_dev.py on this interpreter (what `./dev gateway` runs once ./dev has set up)."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "tools" / "gateway_dev.py"), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_taken_port_is_one_clear_line_and_a_failure_not_a_gateway_that_never_bound() -> None:
    # Whatever holds the port answers /readyz with 200, as another gateway would.
    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: object) -> None:
            pass

    holder = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    threading.Thread(target=holder.serve_forever, daemon=True).start()
    with own_folder("port") as own:  # the old behaviour went on to start PostgreSQL in it
        try:
            port = holder.server_address[1]
            process = _dev_gateway("--port", str(port), env={**os.environ, "TMPDIR": str(own)})
            said, _ = process.communicate(timeout=60)
            assert process.returncode == 1, said
            assert f"port {port} is taken: use --port 0 or another port" in said
            assert "ready at" not in said and "password" not in said and "Traceback" not in said, said
            assert list(own.iterdir()) == [], "nothing was started, so nothing is left behind"
        finally:
            holder.shutdown()
            holder.server_close()


@pytest.mark.parametrize("state", ["temporary", "given"])
def test_a_gateway_that_dies_is_a_failure_whose_log_is_kept(state: str) -> None:
    with own_folder("dies") as own:
        given = own / "kept"
        args = ["--port", "0"] + (["--state", str(given)] if state == "given" else [])
        process = _dev_gateway(*args, env={**os.environ, "TMPDIR": str(own)})
        try:
            lines = _lines(process)
            banner = _read_until_ready(process, lines, timeout=90)
            token = re.search(r"Access token:\s+(\S+)", banner)
            url = re.search(r"ready at http://127\.0\.0\.1:(\d+)", banner)
            log = re.search(r"Log:\s+(\S+/gateway\.log)", banner)
            assert token and url and log, banner
            # The raw HTTP example sets the variable it uses.
            assert f"TOKEN={token[1]}" in banner and 'Bearer $TOKEN"' in banner
            if state == "given":
                assert f"the state folder stays: {given}" in banner and "removes the state" not in banner
            else:
                assert "Ctrl-C stops everything and removes the state folder." in banner
            serving = [
                int(cmdline.parent.name)
                for cmdline in Path("/proc").glob("[0-9]*/cmdline")
                if f"gateway serve --port {url[1]}" in cmdline.read_bytes().replace(b"\0", b" ").decode()
            ]
            assert len(serving) == 1
            os.kill(serving[0], signal.SIGKILL)
            assert process.wait(60) == 1
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        said = "".join(lines.get() for _ in range(lines.qsize()))
        assert f"./dev gateway: the gateway exited with -9; its log: {log[1]}" in said, said
        assert Path(log[1]).exists(), "the log of a gateway that failed is kept"


def test_ctrl_c_while_it_loads_exits_quietly() -> None:
    process = _dev_gateway("--port", "0")
    time.sleep(0.5)  # its imports take about two seconds
    assert process.poll() is None
    process.send_signal(signal.SIGINT)
    said, _ = process.communicate(timeout=30)
    assert "Traceback" not in said and "KeyboardInterrupt" not in said, said
    assert process.returncode == 130

"""What the benchmarks share: a lean stdio client for `switchboard serve`, environments, a Power entitlement,
percentiles and RSS.

The client keeps only what the benchmarks measure (answers by id, per-token progress counters), so that
thousands of `$/progress` frames a second do not turn the client into the bottleneck.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCH_KEY = "sk-bench-0000000000000000"
SERVE = [sys.executable, "-m", "switchboard", "serve"]
BARE = [sys.executable, str(HERE / "bare_server.py")]


def clean_env(state: Path | str, base_url: str | None = None, **extra: str) -> dict[str, str]:
    """The server's environment: nothing inherited from the user's ANTHROPIC_/SWITCHBOARD_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SWITCHBOARD_"))}
    env.update(
        SWITCHBOARD_HOME=str(state),
        SWITCHBOARD_CONFIG_DIR=str(Path(state) / "config"),
        ANTHROPIC_API_KEY=BENCH_KEY,
        SWITCHBOARD_MAX_RETRIES="0",
    )
    if base_url:
        env["ANTHROPIC_BASE_URL"] = base_url
    env.update(extra)
    return env


def power_entitlement(root: Path) -> dict[str, str]:
    """Env entries that put the server on the Power plan (10,000 credits), so long runs are never refused."""
    from switchboard.plans.dev_issuer import init, load_private_key, sign_token

    paths, _ = init(root / "issuer")
    token = sign_token(load_private_key(root / "issuer"), "power", sub="bench")
    return {"SWITCHBOARD_TRUSTED_KEYS": str(paths.jwks), "SWITCHBOARD_ENTITLEMENT": token}


class ExternalFake:
    """The fake Anthropic API in its own process (`python -m switchboard.fakeapi`).

    With 50 streams its event loop thread would otherwise compete with the benchmark's client for this
    process's GIL and skew what it measures."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "switchboard.fakeapi", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "http://" not in line:
            self.proc.kill()
            raise RuntimeError(f"the fake API did not start: {line!r}")
        self.base_url = line.split("on ", 1)[1].split()[0]

    def __enter__(self) -> ExternalFake:
        return self

    def __exit__(self, *_: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages as /proc/loadavg gives them (a benchmark prints them)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_times() -> list[int]:
    """The machine's CPU time so far by kind, in ticks (/proc/stat's `cpu` line: user, nice, system, idle,
    iowait, irq, softirq, steal, …)."""
    return [int(ticks) for ticks in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]


def stolen_share(before: list[int], after: list[int]) -> float:
    """Of the CPU time between two `cpu_times()`, the share the hypervisor gave to other machines (steal):
    a benchmark on a shared VM runs slower while it is high, whatever the code does."""
    spent = [end - start for start, end in zip(before, after, strict=True)]
    total = sum(spent[:8])  # guest time is counted in user time already
    return spent[7] / total if total else 0.0


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


@dataclass
class Stream:
    """What one work-done token received."""

    texts: int = 0
    chars: int = 0
    first_text: float | None = None
    last_text: float | None = None
    ended: float | None = None


class BenchServer:
    """`switchboard serve` (or any stdio LSP server) driven by a reader thread that timestamps each frame."""

    def __init__(self, env: dict[str, str], command: list[str] | None = None) -> None:
        self.proc = subprocess.Popen(
            command or SERVE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self._cond = threading.Condition()
        self._answers: dict[int | str, tuple[float, dict[str, Any]]] = {}
        self.streams: dict[str | int, Stream] = {}
        self._next_id = 0
        self._write_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            length = None
            while (line := stream.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if not line or length is None:
                with self._cond:
                    self._cond.notify_all()
                return
            message = json.loads(stream.read(length))
            now = time.perf_counter()
            with self._cond:
                if message.get("method") == "$/progress":
                    self._progress(message["params"], now)
                elif "id" in message and ("result" in message or "error" in message):
                    self._answers[message["id"]] = (now, message)
                self._cond.notify_all()

    def _progress(self, params: dict[str, Any], now: float) -> None:
        value = params["value"]
        stream = self.streams.setdefault(params["token"], Stream())
        if value.get("kind") == "report" and value.get("type") == "text":
            stream.texts += 1
            stream.chars += len(value["text"])
            stream.first_text = stream.first_text or now
            stream.last_text = now
        elif value.get("kind") == "end":
            stream.ended = now

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        assert self.proc.stdin is not None
        with self._write_lock:
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.proc.stdin.flush()

    def request(self, method: str, params: Any = None) -> int:
        with self._cond:
            self._next_id += 1
            msg_id = self._next_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return msg_id

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait(self, msg_id: int, timeout: float = 60) -> tuple[float, dict[str, Any]]:
        """(arrival time, frame) of the answer to `msg_id`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while msg_id not in self._answers:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(f"no answer to request {msg_id}")
                self._cond.wait(remaining)
            return self._answers.pop(msg_id)

    def call(self, method: str, params: Any = None, timeout: float = 60) -> dict[str, Any]:
        frame = self.wait(self.request(method, params), timeout)[1]
        if "error" in frame:
            raise RuntimeError(f"{method} failed: {frame['error']}")
        return frame["result"]

    def timed_call(self, method: str, params: Any = None, timeout: float = 60) -> float:
        """Round trip of one request, in seconds."""
        start = time.perf_counter()
        arrived, frame = self.wait(self.request(method, params), timeout)
        if "error" in frame:
            raise RuntimeError(f"{method} failed: {frame['error']}")
        return arrived - start

    def wait_for_text(self, tokens: Sequence[str | int], timeout: float = 60) -> None:
        """Until every token has received at least one text report."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not all(self.streams.get(t, Stream()).texts for t in tokens):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("streams did not start")
                self._cond.wait(remaining)

    def initialize(self, workspace: str) -> float:
        """Sends `initialize` (+ `initialized`); returns the round trip in seconds."""
        params = {
            "processId": os.getpid(),
            "rootUri": workspace,
            "capabilities": {"window": {"workDoneProgress": True}},
            "workspaceFolders": [{"uri": workspace, "name": "bench"}],
        }
        elapsed = self.timed_call("initialize", params)
        self.notify("initialized", {})
        return elapsed

    def close(self) -> None:
        try:
            self.wait(self.request("shutdown"), timeout=10)
            self.notify("exit")
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)


def chat_params(workspace: str, prompt: str, token: str | None = None, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"workspaceUri": workspace, "prompt": prompt, "modelId": "claude-haiku-4.5"}
    if token is not None:
        params["workDoneToken"] = token
    params.update(extra)
    return params


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")

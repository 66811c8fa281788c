"""A byte-level JSON-RPC peer for the server, for tests that send malformed frames or audit stdout."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


class RawServer:
    """Runs `switchboard serve`, records every byte of its stdout and parses it strictly into frames.

    stderr is drained as it arrives (a chatty server must never block on a full pipe) and kept.
    """

    def __init__(
        self, env: dict[str, str], command: list[str] | None = None, cwd: Path | None = None
    ) -> None:
        self.proc = subprocess.Popen(
            command or [sys.executable, "-m", "switchboard", "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        self.stdout_bytes = bytearray()
        self.frames: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self.stray: list[bytes] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stderr_bytes = bytearray()
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()
        self.stderr = b""  # all of it, once closed
        self._ids = itertools.count(1)

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := self.proc.stderr.read1(65536):
            self.stderr_bytes += chunk

    def _read(self) -> None:
        assert self.proc.stdout is not None
        stream = self.proc.stdout
        while True:
            header = stream.readline()
            if not header:
                return
            self.stdout_bytes += header
            if not header.lower().startswith(b"content-length:"):
                self.stray.append(header)
                continue
            length = int(header.split(b":", 1)[1])
            while (line := stream.readline()) not in (b"\r\n", b""):
                self.stdout_bytes += line
            self.stdout_bytes += line
            body = stream.read(length)
            self.stdout_bytes += body
            with self._cond:
                self.frames.append(json.loads(body))
                self.arrivals.append(time.perf_counter())
                self._cond.notify_all()

    def send_bytes(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: Any) -> None:
        body = json.dumps(message).encode()
        self.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def request(self, msg_id: int | str, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def call(self, method: str, params: Any = None, timeout: float = 30) -> dict[str, Any]:
        """Sends a request and returns its answer frame (`result` or `error`)."""
        msg_id = next(self._ids)
        self.request(msg_id, method, params)
        return self.wait_for(msg_id, timeout=timeout)

    def result(self, method: str, params: Any = None, timeout: float = 30) -> Any:
        frame = self.call(method, params, timeout)
        assert "result" in frame, f"{method} failed: {frame.get('error')}"
        return frame["result"]

    def frames_with_method(self, method: str) -> list[dict[str, Any]]:
        with self._cond:
            return [f for f in self.frames if isinstance(f, dict) and f.get("method") == method]

    def frames_from(self, index: int) -> list[dict[str, Any]]:
        """The frames read so far, from the `index`-th on."""
        with self._cond:
            return self.frames[index:]

    def wait_for(self, msg_id: int | str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for frame in self.frames:
                    if frame.get("id") == msg_id and ("result" in frame or "error" in frame):
                        return frame
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no answer to {msg_id!r} within {timeout}s")
                self._cond.wait(remaining)

    def wait_for_progress(self, token: str, match: Any, timeout: float = 10) -> float:
        """When the first `$/progress` value on `token` satisfying `match` arrived (perf_counter time)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = 0
            while True:
                for index in range(seen, len(self.frames)):
                    frame = self.frames[index]
                    params = frame.get("params") or {}
                    if (
                        frame.get("method") == "$/progress"
                        and params.get("token") == token
                        and match(params["value"])
                    ):
                        return self.arrivals[index]
                seen = len(self.frames)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching progress on {token!r}")
                self._cond.wait(remaining)

    def initialize(self, workspace: str) -> dict[str, Any]:
        self.request(
            0,
            "initialize",
            {
                "processId": None,
                "rootUri": workspace,
                "capabilities": {},
                "workspaceFolders": [{"uri": workspace, "name": "ws"}],
            },
        )
        # The answer includes the interpreter's start-up, which takes seconds of wall time on a busy machine
        # (a parallel run, other jobs): the same deadline as any other request, not a start-up benchmark.
        answer = self.wait_for(0, timeout=30)
        self.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        return answer

    def close(self) -> int:
        try:
            self.request("bye", "shutdown")
            self.wait_for("bye", timeout=15)
            self.send({"jsonrpc": "2.0", "method": "exit"})
            code = self.proc.wait(timeout=15)
        except Exception:
            self.proc.kill()
            code = self.proc.wait()
        self._drain.join(timeout=10)
        self._reader.join(timeout=10)
        self.stderr = bytes(self.stderr_bytes)
        return code

"""Helpers for the gateway tests: replica processes, accounts, SDK clients and ledger reads."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import psycopg
from starlette.datastructures import Headers

from switchboard.catalog import get_model
from switchboard.gateway import accounts
from switchboard.gateway.tokens import TokenAuthority
from switchboard.gateway.turn_request import TurnRequest, parse_turn
from switchboard.plans.period import period_of

VENDOR_KEY = "sk-ant-vendor-GATEWAYSECRET-0123456789"
RESERVATION_TTL = 2.0
HTTP = httpx2.Client(timeout=10)


def run_cli(
    args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard", "gateway", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


# Every replica a test starts binds port 0 and the test reads the port the kernel gave it from the replica's
# own log. Picking a free port first and passing it on raced across pytest-xdist workers (and the other runs
# on the machine): between the probe closing and the replica binding, another worker could pick it too, and
# the loser's readiness probe could even be answered by the winner.
LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
BIND_FAILED = "address already in use"


class PortTaken(RuntimeError):
    """A replica started on a port chosen in advance found it taken (start it again on another)."""


def process_alive(process: subprocess.Popen[bytes]) -> Callable[[], bool]:
    return lambda: process.poll() is None


def log_size(log_path: Path) -> int:
    return log_path.stat().st_size if log_path.exists() else 0


def listening_port(alive: Callable[[], bool], log_path: Path, offset: int, timeout: float = 30) -> int:
    """The port a replica bound, from the line uvicorn logs once it listens (after `offset` in its log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        written = log_path.read_text(encoding="utf-8", errors="replace")[offset:] if log_path.exists() else ""
        if found := LISTENING.search(written):
            return int(found.group(1))
        if BIND_FAILED in written.lower():
            raise PortTaken(written)
        if not alive():
            raise RuntimeError(f"gateway exited before listening:\n{written}")
        time.sleep(0.02)
    raise TimeoutError(f"gateway not listening after {timeout}s:\n{log_path.read_text(errors='replace')}")


def start_on_a_chosen_port(
    start: Callable[[int], subprocess.Popen[bytes]], log_path: Path, attempts: int = 5
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a replica that must know its port before it starts (its public base URL names it): choose a
    free port, start it there, and choose again if another test took the port meanwhile. It counts as started
    only once its own log says it listens, so the replica that won the port never answers for it."""
    for attempt in range(attempts):
        with unused_port() as port:
            pass  # released for the replica to bind; if another test binds it first, the loop chooses again
        offset = log_size(log_path)
        process = start(port)
        listening = False
        try:
            listening_port(process_alive(process), log_path, offset)
            listening = True
            return process, port
        except PortTaken:
            if attempt == attempts - 1:
                raise
        finally:
            if not listening:  # uvicorn exits when it cannot bind, but a stuck one must not outlive the test
                process.kill()
                process.wait(10)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def unused_port() -> Iterator[int]:
    """A loopback port nothing listens on while the block runs: it stays bound here (not listening, so a
    connection to it is refused) and the kernel hands it to nobody else meanwhile."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @classmethod
    def start(cls, env: dict[str, str], log_path: Path, probe: str = "/readyz") -> Replica:
        offset = log_size(log_path)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "switchboard", "gateway", "serve", "--port", "0"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            port = listening_port(process_alive(process), log_path, offset)
        except BaseException:
            process.kill()
            process.wait(10)
            raise
        replica = cls(process, f"http://127.0.0.1:{port}", log_path)
        replica.wait_ready(probe)
        return replica

    def wait_ready(self, probe: str = "/readyz", timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.log()}")
            try:
                if HTTP.get(self.url + probe).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"gateway not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class TestAccount:
    __test__ = False  # a helper, not a test class (test modules import it)

    id: str
    email: str
    plan: str
    token: str


class Accounts:
    """Creates accounts straight in the database (the admin CLI has its own test)."""

    def __init__(self, database_url: str, authority: TokenAuthority) -> None:
        self.database_url, self.authority = database_url, authority

    async def create(
        self,
        plan: str = "pro",
        *,
        used_credits: float = 0,
        overage: bool = False,
        budget_cents: int | None = None,
    ) -> TestAccount:
        email = f"user-{uuid.uuid4().hex[:12]}@example.test"
        async with await psycopg.AsyncConnection.connect(self.database_url, autocommit=True) as conn:
            dict_conn: Any = conn
            dict_conn.row_factory = psycopg.rows.dict_row
            account = await accounts.create_account(dict_conn, email, "correct horse battery", plan)
            if overage or budget_cents is not None:
                await accounts.set_overage(dict_conn, account.id, overage, budget_cents)
            if used_credits:
                await conn.execute(
                    "INSERT INTO account_periods (account_id, period, used_h) VALUES (%s, %s, %s)",
                    (account.id, current_period(), round(used_credits * 100)),
                )
        return TestAccount(account.id, email, plan, self.authority.issue(account.id, plan))


def current_period() -> str:
    return period_of(datetime.now(UTC)).key


def sdk(url: str, token: str, **options: Any) -> anthropic.AsyncAnthropic:
    options.setdefault("max_retries", 0)
    return anthropic.AsyncAnthropic(base_url=url, auth_token=token, api_key=None, timeout=30, **options)


class CountedClient:
    """The SDK's own HTTP client, counting the requests it sends (its retries included): pass `http` to
    `sdk(..., http_client=...)`."""

    def __init__(self) -> None:
        self.sent = 0

        async def count(_: httpx2.Request) -> None:
            self.sent += 1

        self.http = anthropic.DefaultAsyncHttpxClient(event_hooks={"request": [count]})


def parsed_turn(raw: bytes, model: str = "claude-haiku-4.5") -> TurnRequest:
    """`raw` read as the gateway reads a turn sent with `model` in its model header."""
    return parse_turn(Headers({"switchboard-turn-id": "t1", "switchboard-model": model}), raw)


def numbers_body(note: str = "done") -> bytes:
    """An Auto body whose tool input is 5,000 numbers written `1E15`: the gateway re-encodes Auto's body
    (with the model Auto picks), and re-encoding writes each one back as `1000000000000000.0`, so it goes
    upstream four times longer than it came. `note` is the tool result's text (a marker to find it by)."""
    points = b",".join([b"1E15"] * 5000)
    return (
        b'{"model":"auto","max_tokens":10,"messages":[{"role":"user","content":"plot it"},'
        b'{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"plot",'
        b'"input":{"points":[' + points + b"]}}]},"
        b'{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1",'
        b'"content":"' + note.encode() + b'"}]}]}'
    )  # fmt: skip


async def send_streamed_turn(
    url: str,
    token: str,
    prompt: str = "hi",
    max_tokens: int = 50,
    *,
    stream: bool = True,
    model: str = "claude-haiku-4.5",
    fields: dict[str, Any] | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A streamed (or whole) turn (Haiku unless `model` says otherwise; `fields` added to its body) sent to
    the replica at `url` over a raw connection of the test's own, so the test reads the answer exactly as
    the gateway wrote it (or leaves without a word)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = json.dumps(
        {
            "model": get_model(model).default_anthropic_model,
            "max_tokens": max_tokens,
            "stream": stream,
            "messages": [{"role": "user", "content": prompt}],
            **(fields or {}),
        }
    ).encode()
    headers = {
        **turn_headers(model),
        "authorization": f"Bearer {token}",
        "content-type": "application/json",
        "content-length": str(len(body)),
    }
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    writer.write(f"POST /v1/messages HTTP/1.1\r\nhost: gateway\r\n{lines}\r\n".encode() + body)
    return reader, writer


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 request from a test's own server: its head and its body (by Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


def chunked(*pieces: bytes) -> list[bytes]:
    """A streamed answer as a test's own upstream sends it: the head, each piece an HTTP chunk, the end."""
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    return [head, *(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces), b"0\r\n\r\n"]


def whole_lines(log_text: str) -> str:
    """`log_text` up to its last line end: a process still writing may have left its last line half done."""
    return log_text[: log_text.rfind("\n") + 1]


def access_lines(log_text: str) -> list[dict[str, Any]]:
    """A replica's access lines (`"event": "access"`), parsed, from the whole lines of its log."""
    return [
        json.loads(line)
        for line in whole_lines(log_text).splitlines()
        if line.startswith('{"ts":') and '"event":"access"' in line
    ]


def turn_headers(model: str, turn_id: str | None = None) -> dict[str, str]:
    return {"Switchboard-Turn-Id": turn_id or f"turn-{uuid.uuid4().hex}", "Switchboard-Model": model}


async def balance(database_url: str, account_id: str) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT used_h, overage_h, reserved_h FROM account_periods WHERE account_id = %s AND period = %s",
            (account_id, current_period()),
        )
        row = await cursor.fetchone()
    used, overage, reserved = row or (0, 0, 0)
    return {"used_h": used, "overage_h": overage, "reserved_h": reserved}


async def turn_rows(database_url: str, account_id: str) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True, row_factory=psycopg.rows.dict_row
    ) as conn:
        cursor = await conn.execute(
            "SELECT * FROM turns WHERE account_id = %s ORDER BY created_at", (account_id,)
        )
        return list(await cursor.fetchall())


async def wait_settled(database_url: str, account_id: str, timeout: float) -> dict[str, Any]:
    """The account's first turn once it is no longer `reserved` (settled, or released by a reaper)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await turn_rows(database_url, account_id)
        if rows and rows[0]["status"] != "reserved":
            return rows[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"turn still reserved after {timeout}s: {rows}")
        await asyncio.sleep(0.05)


MULTIPLIERS = {"auto": "1.0", "claude-haiku-4.5": "0.4", "claude-sonnet-4.5": "1.3", "claude-opus-4.5": "2.2"}


def expected_credits(model_id: str, usage: Any) -> Decimal:
    """The published formula, written out again: Sonnet 4 list cents per MTok × multiplier, rounded up."""
    cents = (
        Decimal(usage.input_tokens) * 300
        + Decimal(usage.cache_creation_input_tokens or 0) * 375
        + Decimal(usage.cache_read_input_tokens or 0) * 30
        + Decimal(usage.output_tokens) * 1500
    ) / Decimal(1_000_000)
    return (cents * Decimal(MULTIPLIERS[model_id])).quantize(Decimal("0.01"), rounding=ROUND_CEILING)


FORKER = Path(__file__).with_name("replica_forker.py")


@dataclass
class ForkedReplica:
    """A replica forked by `ReplicaForker`: a real process, but not this process's child."""

    pid: int
    url: str
    log_path: Path

    def alive(self) -> bool:
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        return state not in ("Z", "X")

    def wait_ready(self, timeout: float = 30) -> ForkedReplica:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"forked gateway {self.pid} exited:\n{self.log()}")
            try:
                if HTTP.get(self.url + "/readyz").status_code == 200:
                    return self
            except httpx2.TransportError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"forked gateway not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def stop(self, timeout: float = 10) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.kill()


class ReplicaForker:
    """Starts replicas in well under a second each, by forking a process that imported the gateway once."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.logs = logs
        self.process = subprocess.Popen(
            [sys.executable, str(FORKER)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.started: list[ForkedReplica] = []
        self._lock = threading.Lock()

    def start(self) -> ForkedReplica:
        """A new replica, ready. It binds port 0; its log, a file of its own, says which port it got."""
        assert self.process.stdin is not None and self.process.stdout is not None
        # Created here, under a name no other replica (of this forker or another in the folder) can get.
        file, name = tempfile.mkstemp(prefix="replica-", suffix=".log", dir=self.logs)
        os.close(file)
        log_path = Path(name)
        with self._lock:
            self.process.stdin.write(f"0 {log_path}\n")
            self.process.stdin.flush()
            replica = ForkedReplica(int(self.process.stdout.readline()), "", log_path)
            self.started.append(replica)  # stopped by `close` even if it never gets ready
        replica.url = f"http://127.0.0.1:{listening_port(replica.alive, log_path, offset=0)}"
        return replica.wait_ready()

    def close(self) -> None:
        for replica in self.started:
            if replica.alive():
                replica.stop()
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)


class CuttableLine:
    """A TCP line to PostgreSQL that a test cuts and restores: one replica loses the ledger (a partition, or
    its pool still reconnecting after a restart) while the others still reach it. Runs on the test's loop."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.cut_off = False
        self._open: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._carry, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        """Drop every connection on the line, and every new one until `restore`."""
        self.cut_off = True
        for writer in list(self._open):
            writer.transport.abort()

    def restore(self) -> None:
        self.cut_off = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _carry(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            writer.transport.abort()
            return
        far_reader, far_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._open |= {writer, far_writer}
        try:
            await asyncio.gather(_pipe(reader, far_writer), _pipe(far_reader, writer))
        finally:
            for end in (writer, far_writer):
                self._open.discard(end)
                end.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


async def wait_for_waiting_settlement(database_url: str, timeout: float = 10) -> None:
    """Until a turn's settlement waits for a lock (the test holds the account's balance row)."""
    deadline = time.monotonic() + timeout
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND query LIKE '%ledger_settle%'"
            )
            row = await cursor.fetchone()
            if row and row[0]:
                return
            await asyncio.sleep(0.02)
    raise AssertionError("no settlement came to wait for the held balance row")

"""`./dev gateway`: the hosted gateway on this machine, offline, in one command.

Starts a throwaway PostgreSQL cluster (Debian's `postgresql` package, as the tests do: tests/gateway/
pgcluster.py), migrates it, creates two signing keys and a demo account, serves the fake Anthropic API as
the gateway's upstream, and runs one gateway replica. Prints the URL, the demo account's password and an
access token, and how to point the editor and the terminal client at it. Ctrl-C (or SIGTERM) stops
everything and removes the state folder (unless --state names one to keep).

Run: ./dev gateway [--port 8780] [--plan pro] [--state DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

# Ctrl-C while the imports below run (about two seconds) has nothing to clean up yet: exit quietly, with the
# status a shell gives a program SIGINT ended, instead of a KeyboardInterrupt traceback. `main` installs the
# handler that stops and cleans up before it starts anything.
signal.signal(signal.SIGINT, lambda signum, frame: os._exit(130))

import httpx2  # noqa: E402
import psycopg  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from gateway.pgcluster import Cluster, PostgresMissing  # noqa: E402
from switchboard.fakeapi import FakeAnthropic  # noqa: E402
from switchboard.gateway import accounts  # noqa: E402
from switchboard.gateway.config import load_settings  # noqa: E402
from switchboard.gateway.migrate import upgrade  # noqa: E402
from switchboard.gateway.tokens import TokenAuthority, new_signing_key  # noqa: E402
from switchboard.plans.catalog import PLANS  # noqa: E402

DEMO_EMAIL = "demo@switchboard.local"
# The fake API accepts only this key: the gateway's stand-in for the vendor's Anthropic key.
FAKE_VENDOR_KEY = "sk-ant-dev-fake-upstream-key"


class Stop(Exception):
    """SIGINT or SIGTERM arrived."""


class Failed(Exception):
    """The gateway could not start: one line for whoever ran the command (exit status 1)."""


class State:
    """The folder with the keys, the config and the gateway's log. A temporary one is removed at the end,
    unless the gateway failed: then its log is what tells why."""

    def __init__(self, chosen: str | None) -> None:
        self.temporary = not chosen
        self.path = (
            Path(chosen).resolve() if chosen else Path(tempfile.mkdtemp(prefix="switchboard-gateway-dev-"))
        )
        self.path.mkdir(parents=True, exist_ok=True)
        self.keep = bool(chosen)

    def remove_unless_kept(self) -> None:
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with _stop_on_signals(), contextlib.ExitStack() as cleanup:
        try:
            if args.port and not _can_listen(args.port):
                raise Failed(f"port {args.port} is taken: use --port 0 or another port")
            _run(args, cleanup)
        except Stop:
            print("\nStopping: gateway, fake Anthropic API, PostgreSQL.", flush=True)
        except PostgresMissing as error:
            print(f"./dev gateway: {error}", file=sys.stderr)
            return 2
        except Failed as failed:
            print(f"./dev gateway: {failed}", file=sys.stderr, flush=True)
            return 1
    print("Stopped and cleaned up.", flush=True)
    return 0


def _run(args: argparse.Namespace, cleanup: contextlib.ExitStack) -> None:
    with _signals_held():  # a Ctrl-C between making the folder and registering its removal would keep it
        folder = State(args.state)
        cleanup.callback(folder.remove_unless_kept)
    state = folder.path
    cluster = Cluster.start()
    cleanup.callback(_quietly, cluster.stop)
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE gateway")
    database_url = cluster.url("gateway")
    upgrade(database_url)

    keys = [state / "keys" / name for name in ("current.pem", "next.pem")]
    keys[0].parent.mkdir(parents=True, exist_ok=True)
    for key in keys:
        if not key.exists():
            new_signing_key(key)

    upstream = FakeAnthropic(api_key=FAKE_VENDOR_KEY).start()
    cleanup.callback(_quietly, upstream.stop)

    port = args.port or _free_port()
    url = f"http://127.0.0.1:{port}"
    config = state / "gateway.toml"
    config.write_text(
        f"database_url = {json.dumps(database_url)}\n"
        f"upstream_api_key = {json.dumps(FAKE_VENDOR_KEY)}\n"
        f"upstream_base_url = {json.dumps(upstream.base_url)}\n"
        f"signing_keys = {json.dumps([str(key) for key in keys])}\n"
        f"public_base_url = {json.dumps(url)}\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_GATEWAY_")}
    env["SWITCHBOARD_GATEWAY_CONFIG"] = str(config)
    settings = load_settings(env)

    password = secrets.token_urlsafe(12)
    account_id = asyncio.run(_demo_account(database_url, password, args.plan))
    token = TokenAuthority.from_settings(settings).issue(account_id, args.plan)

    log_path = state / "gateway.log"
    with log_path.open("ab") as log:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "switchboard", "gateway", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    cleanup.callback(_stop_process, gateway)
    try:
        _wait_ready(url, gateway, log_path)
    except Failed:
        folder.keep = True
        raise
    _print_welcome(url, database_url, password, token, config, log_path, args.plan, folder)
    while gateway.poll() is None:
        time.sleep(0.2)
    folder.keep = True
    raise Failed(f"the gateway exited with {gateway.returncode}; its log: {log_path}")


async def _demo_account(database_url: str, password: str, plan: str) -> str:
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True, row_factory=dict_row
    ) as conn:
        return (await accounts.create_account(conn, DEMO_EMAIL, password, plan)).id


def _print_welcome(
    url: str,
    database_url: str,
    password: str,
    token: str,
    config: Path,
    log_path: Path,
    plan: str,
    folder: State,
) -> None:
    if folder.temporary:
        ending = "Ctrl-C stops everything and removes the state folder."
    else:
        ending = f"Ctrl-C stops everything; the state folder stays: {folder.path}"
    print(
        f"""
Switchboard gateway ready at {url}
  PostgreSQL:    {database_url}
  Upstream:      the fake Anthropic API (simulated answers, no network)
  Demo account:  {DEMO_EMAIL}  password: {password}  (plan: {PLANS[plan].name}; sign in with it)
  Access token:  {token}
                 (15 minutes; a new one: SWITCHBOARD_GATEWAY_CONFIG={config} \\
                  .venv/bin/switchboard gateway tokens issue --account {DEMO_EMAIL})
  Log:           {log_path}

Point a client at it:
  VS Code:       set "switchboard.gateway.url": "{url}" in your settings, then sign in
  Terminal:      .venv/bin/switchboard chat --gateway {url}
  Raw HTTP:      TOKEN={token}
                 curl {url}/v1/switchboard/usage -H "Authorization: Bearer $TOKEN"

{ending}""",
        flush=True,
    )


def _wait_ready(url: str, gateway: subprocess.Popen[bytes], log_path: Path, timeout: float = 60) -> None:
    """Until the replica answers /readyz. Its exit is a failure even if something answers on its port."""
    deadline = time.monotonic() + timeout
    with httpx2.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            if gateway.poll() is not None:
                raise Failed(
                    f"the gateway exited with {gateway.returncode} before it was ready; its log: {log_path}"
                )
            with contextlib.suppress(httpx2.TransportError):
                if http.get(url + "/readyz").status_code == 200 and gateway.poll() is None:
                    return
            time.sleep(0.1)
    raise Failed(f"the gateway was not ready after {timeout:.0f}s; its log: {log_path}")


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _quietly(stop: object) -> None:
    """Cleanup that must not stop the rest of the cleanup (PostgreSQL may have seen Ctrl-C itself)."""
    with contextlib.suppress(Exception):
        stop()  # type: ignore[operator]


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        # Ignore further signals while cleaning up: a second Ctrl-C must not leave PostgreSQL behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back (delivered once the block ends)."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _can_listen(port: int) -> bool:
    """Whether the gateway could listen on 127.0.0.1:`port` (bound as uvicorn binds it, SO_REUSEADDR)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Run the hosted gateway locally against the fake Anthropic API."
    )
    parser.add_argument("--port", type=int, default=8780, help="the gateway's port (0: any free port)")
    parser.add_argument("--plan", default="pro", choices=list(PLANS), help="the demo account's plan")
    parser.add_argument("--state", help="keep keys, config and log in this folder (default: a temporary one)")
    return parser


if __name__ == "__main__":
    sys.exit(main())

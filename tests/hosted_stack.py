"""A whole Switchboard Cloud for the clients' sign-in tests, from real parts: a throwaway PostgreSQL
cluster, the migrated gateway database, two signing keys, the fake Anthropic API as the upstream, one
gateway replica and an account (ada@example.com, Pro).

Used by the Neovim sign-in scenarios (tests/test_nvim.py) and, run as a script, by the VS Code e2e suite
(client-ts/e2e/run.sh): `python tests/hosted_stack.py` prints one JSON line with the URLs and the
account, then keeps everything up until it gets SIGTERM or SIGINT.

`approve()` does what the user does in the browser, over HTTP: open the gateway's /device page, sign in
with the account's email and password, and approve the code.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx2

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway.gateway_support import start_on_a_chosen_port
from gateway.pgcluster import Cluster, PostgresMissing, postgres_bin
from switchboard.fakeapi import FakeAnthropic

EMAIL = "ada@example.com"
PASSWORD = "correct horse battery staple"
VENDOR_KEY = "sk-ant-vendor-HOSTEDSTACK-0123456789"


def _gateway(args: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "switchboard", "gateway", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"switchboard gateway {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


class _Forms(HTMLParser):
    """The forms of a page: action, method and the named inputs and buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(
                {"action": a.get("action", ""), "method": a.get("method", "get"), "fields": {}, "buttons": []}
            )
        elif self.forms and tag in ("input", "button") and a.get("name"):
            if tag == "button" or a.get("type") == "submit":
                self.forms[-1]["buttons"].append((a["name"], a.get("value", "")))
            elif a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self.forms[-1]["fields"][a["name"]] = a.get("value", "")


@dataclass
class HostedStack:
    workdir: Path
    cluster: Cluster
    upstream: FakeAnthropic
    env: dict[str, str]
    url: str
    process: subprocess.Popen[bytes]
    email: str = EMAIL
    password: str = PASSWORD
    http: httpx2.Client = field(default_factory=lambda: httpx2.Client(timeout=15))
    _accounts: int = 0

    @classmethod
    def start(cls, workdir: Path | None = None) -> HostedStack:
        workdir = workdir or Path(tempfile.mkdtemp(prefix="switchboard-hosted-"))
        cluster = Cluster.start()
        upstream = FakeAnthropic(api_key=VENDOR_KEY)
        upstream.__enter__()
        try:
            return cls._start_gateway(workdir, cluster, upstream)
        except BaseException:
            upstream.__exit__(None, None, None)
            cluster.stop()
            raise

    @classmethod
    def _start_gateway(cls, workdir: Path, cluster: Cluster, upstream: FakeAnthropic) -> HostedStack:
        import psycopg

        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE gateway")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SWITCHBOARD_"))}
        keys = [workdir / "signing-current.pem", workdir / "signing-next.pem"]
        for key in keys:
            _gateway(["keys", "new", str(key)], env)
        env.update(
            SWITCHBOARD_GATEWAY_DATABASE_URL=cluster.url("gateway"),
            SWITCHBOARD_GATEWAY_UPSTREAM_BASE_URL=upstream.base_url,
            SWITCHBOARD_GATEWAY_UPSTREAM_API_KEY=VENDOR_KEY,
            SWITCHBOARD_GATEWAY_SIGNING_KEYS=os.pathsep.join(map(str, keys)),
            SWITCHBOARD_GATEWAY_PUBLIC_BASE_URL="http://127.0.0.1",  # with the port once it is bound: serve()
            SWITCHBOARD_GATEWAY_SHUTDOWN_DELAY_SECONDS="0",
            PYTHONUNBUFFERED="1",
        )
        _gateway(["migrate"], env)
        _gateway(
            ["accounts", "create", "--email", EMAIL, "--plan", "pro", "--password-stdin"],
            env,
            PASSWORD + "\n",
        )
        log_path = workdir / "gateway.log"

        def serve(port: int) -> subprocess.Popen[bytes]:  # the public base URL names the port
            env["SWITCHBOARD_GATEWAY_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
            with log_path.open("ab") as log:
                return subprocess.Popen(
                    [sys.executable, "-m", "switchboard", "gateway", "serve", "--port", str(port)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )

        process, port = start_on_a_chosen_port(serve, log_path)
        stack = cls(workdir, cluster, upstream, env, f"http://127.0.0.1:{port}", process)
        stack._wait_ready()
        return stack

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited:\n{self.log()}")
            try:
                if self.http.get(self.url + "/readyz").status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"the gateway was not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return (self.workdir / "gateway.log").read_text(encoding="utf-8", errors="replace")

    def metadata(self) -> dict[str, Any]:
        response = self.http.get(self.url + "/.well-known/oauth-authorization-server")
        response.raise_for_status()
        return response.json()

    def add_account(self, plan: str) -> str:
        """Another account (on `plan`, with the same password): its email."""
        self._accounts += 1
        email = f"user{self._accounts}.{plan}@example.com"
        _gateway(
            ["accounts", "create", "--email", email, "--plan", plan, "--password-stdin"],
            self.env,
            self.password + "\n",
        )
        return email

    def approve(self, user_code: str, email: str | None = None) -> None:
        """Approve a device code on the /device page, as the user (`email`, else Ada) does in the
        browser."""
        browser = httpx2.Client(timeout=15, follow_redirects=True)
        page = browser.get(f"{self.url}/device", params={"user_code": user_code})
        for _ in range(4):
            page.raise_for_status()
            if re.search(r"approved|you can close this", page.text, re.IGNORECASE):
                return
            forms = _Forms()
            forms.feed(page.text)
            if not forms.forms:
                raise AssertionError(f"no form on the device page:\n{page.text[:2000]}")
            form = forms.forms[0]
            data = dict(form["fields"])
            for name in data:
                if "email" in name:
                    data[name] = email or self.email
                elif "password" in name:
                    data[name] = self.password
                elif "code" in name and not data[name]:
                    data[name] = user_code
            approve = [
                b for b in form["buttons"] if re.search("approve|allow|continue|sign", b[0] + b[1], re.I)
            ]
            if approve:
                data[approve[0][0]] = approve[0][1]
            page = browser.post(urljoin(str(page.url), form["action"] or str(page.url)), data=data)
        raise AssertionError(f"the device page did not approve the code:\n{page.text[:2000]}")

    def refresh_token(self, client_id: str = "switchboard-nvim", email: str | None = None) -> str:
        """A session's refresh token (Ada's, or `email`'s), by the whole device flow over HTTP (for a client
        that resumes one)."""
        meta = self.metadata()
        grant = self.http.post(meta["device_authorization_endpoint"], data={"client_id": client_id})
        grant.raise_for_status()
        codes = grant.json()
        self.approve(codes["user_code"], email)
        token = self.http.post(
            meta["token_endpoint"],
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "device_code": codes["device_code"],
                "client_id": client_id,
            },
        )
        token.raise_for_status()
        return token.json()["refresh_token"]

    def approve_when_written(self, code_file: Path, timeout: float = 60) -> threading.Thread:
        """Approve the code a client writes to `code_file` (the Neovim scenarios), in the background."""

        def watch() -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if code_file.exists() and (code := code_file.read_text().strip()):
                    self.approve(code)
                    return
                time.sleep(0.05)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        return thread

    def usage(self, email: str | None = None) -> dict[str, Any]:
        out = _gateway(["accounts", "usage", email or self.email], self.env)
        return json.loads(out)

    def admin(self, *args: str) -> str:
        """`switchboard gateway ARGS` against this gateway's database (`accounts sign-out EMAIL`, …)."""
        return _gateway(list(args), self.env)

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> None:
        """One statement on the gateway's database, as its operator could run it."""
        import psycopg

        with psycopg.connect(self.cluster.url("gateway"), autocommit=True) as conn:
            conn.execute(statement, params)  # pyright: ignore[reportArgumentType]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.upstream.__exit__(None, None, None)
        self.cluster.stop()


@contextlib.contextmanager
def running_stack(workdir: Path) -> Iterator[HostedStack]:
    """A stack for a test module, stopped afterwards; the module's tests are skipped where PostgreSQL is not
    installed."""
    import pytest  # only tests use this; the e2e suite runs this file as a script

    try:
        postgres_bin()
    except PostgresMissing as missing:
        pytest.skip(str(missing))
    stack = HostedStack.start(workdir)
    try:
        yield stack
    finally:
        stack.stop()


def main() -> int:
    stack = HostedStack.start()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    # the gateway's own settings, for `switchboard gateway accounts usage` from the e2e suite
    admin_env = {k: v for k, v in stack.env.items() if k.startswith("SWITCHBOARD_GATEWAY_")}
    line = {"gateway": stack.url, "email": stack.email, "password": stack.password, "admin_env": admin_env}
    print(json.dumps(line), flush=True)
    try:
        while not stopping.wait(0.2):
            if stack.process.poll() is not None:
                print(f"the gateway exited:\n{stack.log()}", file=sys.stderr)
                return 1
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

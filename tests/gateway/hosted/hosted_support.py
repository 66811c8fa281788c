"""Helpers for the hosted-mode tests: a gateway at its public URL, a person approving a device code in the
/device form over HTTP (as a browser would), and reading the gateway's access log and ledger."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

from gateway.gateway_support import (
    Replica,
    access_lines,
    listening_port,
    log_size,
    process_alive,
    start_on_a_chosen_port,
)
from gateway.signin.signin_support import PASSWORD, Browser, OAuthClient

TERMINAL = "switchboard-terminal"
VSCODE = "switchboard-vscode"  # what the server says it is when the client does not name itself


@dataclass
class HostedGateway:
    replica: Replica

    @property
    def url(self) -> str:
        return self.replica.url

    def stop(self) -> None:
        self.replica.stop()

    def access_lines(self) -> list[dict[str, Any]]:
        return access_lines(self.replica.log())

    def messages_requests(self) -> int:
        return sum(1 for line in self.access_lines() if line.get("path") == "/v1/messages")

    def approve(self, user_code: str, email: str, password: str = PASSWORD, action: str = "approve") -> None:
        """A person at the verification page: opens it, signs in and approves (or denies) the code."""
        with Browser(self.url) as browser:
            answer = browser.submit(user_code, email, password, action)
            assert answer.status_code == 200, answer.text

    def refresh_token_for(self, email: str, client_id: str = VSCODE, scope: str | None = None) -> str:
        """A refresh token from a complete device flow run by the test itself (another device), granted
        `scope` (None: the gateway's default, every scope)."""
        client = OAuthClient(self.url, client_id=client_id)
        try:
            started = client.start(scope)
            self.approve(started["user_code"], email)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                answer = client.poll(started["device_code"])
                if answer.status_code == 200:
                    return answer.json()["refresh_token"]
                time.sleep(1)
            raise TimeoutError("the device flow did not complete")
        finally:
            client.close()


def _serve(env: dict[str, str], log_path: Path, port: int) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "switchboard", "gateway", "serve", "--port", str(port)],
            env={**env, "SWITCHBOARD_GATEWAY_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def start_gateway(env: dict[str, str], log_path: Path) -> HostedGateway:
    process, port = start_on_a_chosen_port(lambda port: _serve(env, log_path, port), log_path)
    replica = Replica(process, f"http://127.0.0.1:{port}", log_path)
    replica.wait_ready()
    return HostedGateway(replica)


def restart_gateway(gateway: HostedGateway, env: dict[str, str]) -> None:
    """A deploy: the replica stopped and started again with `env`, on the same port (so the same URL and
    issuer for the clients that know it)."""
    gateway.replica.stop()
    gateway.replica = serve_again(gateway.replica, env)


def serve_again(gone: Replica, env: dict[str, str]) -> Replica:
    """A new gateway process at the address of one that stopped or died (its port, so its URL and issuer),
    with `env`, once it is ready."""
    port = int(gone.url.rsplit(":", 1)[1])
    offset = log_size(gone.log_path)
    process = _serve(env, gone.log_path, port)
    try:
        listening_port(process_alive(process), gone.log_path, offset)
    except BaseException:
        process.kill()
        process.wait(10)
        raise
    replica = Replica(process, gone.url, gone.log_path)
    replica.wait_ready()
    return replica


Rewrite = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class _Rule:
    method: str
    path: str
    status: int | None  # answer this instead of asking the gateway
    body: dict[str, Any] | None
    rewrite: Rewrite | None  # or change the gateway's JSON answer
    delay: float = 0.0  # or hand the gateway's answer on this many seconds late
    hold: asyncio.Event | None = None  # or send the request to the gateway only once this is set


class GatewayFaults(httpx2.AsyncBaseTransport):
    """The network between the language server's code and the gateway, for in-process tests: requests go
    to the real gateway unless a rule (each used once, in order) answers one in its place or rewrites the
    gateway's JSON answer. `seen` lists every request's method and path."""

    def __init__(self) -> None:
        self._real = httpx2.AsyncHTTPTransport()
        self._rules: list[_Rule] = []
        self.seen: list[tuple[str, str]] = []

    def answer_next(self, method: str, path: str, status: int, body: dict[str, Any]) -> None:
        self._rules.append(_Rule(method, path, status, body, None))

    def rewrite_next(self, method: str, path: str, rewrite: Rewrite) -> None:
        self._rules.append(_Rule(method, path, None, None, rewrite))

    def delay_next(self, method: str, path: str, seconds: float) -> None:
        """The gateway answers (and acts) at once; its answer reaches the caller `seconds` later."""
        self._rules.append(_Rule(method, path, None, None, None, seconds))

    def hold_next(self, method: str, path: str) -> asyncio.Event:
        """The request reaches the gateway (which acts on it) only once the returned event is set; it is
        in `seen` from the start, so a test knows it has been sent."""
        release = asyncio.Event()
        self._rules.append(_Rule(method, path, None, None, None, hold=release))
        return release

    def count(self, method: str, path: str) -> int:
        return self.seen.count((method, path))

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        key = (request.method, request.url.path)
        self.seen.append(key)
        rule = next((r for r in self._rules if (r.method, r.path) == key), None)
        if rule is not None:
            self._rules.remove(rule)
            if rule.status is not None:
                return httpx2.Response(rule.status, json=rule.body, request=request)
            if rule.hold is not None:
                await rule.hold.wait()
        response = await self._real.handle_async_request(request)
        if rule is not None and rule.delay:
            await response.aread()
            await asyncio.sleep(rule.delay)
        if rule is None or rule.rewrite is None:
            return response
        await response.aread()
        rewritten = rule.rewrite(json.loads(response.content))
        return httpx2.Response(response.status_code, json=rewritten, request=request)

    async def aclose(self) -> None:
        await self._real.aclose()


def unauthorized(message: str = "Access token expired: refresh it.") -> dict[str, Any]:
    """The gateway's 401 body (Anthropic's error JSON)."""
    return {"type": "error", "error": {"type": "authentication_error", "message": message}}

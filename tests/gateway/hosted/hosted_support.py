"""Helpers for the hosted-mode tests: a gateway at its public URL, a person approving a device code in the
/device form over HTTP (as a browser would), and reading the gateway's access log and ledger."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.gateway_support import Replica, access_lines, start_on_a_chosen_port
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

    def refresh_token_for(self, email: str, client_id: str = VSCODE) -> str:
        """A refresh token from a complete device flow run by the test itself (another device)."""
        client = OAuthClient(self.url, client_id=client_id)
        try:
            started = client.start()
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


def start_gateway(env: dict[str, str], log_path: Path) -> HostedGateway:
    def serve(port: int) -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "switchboard", "gateway", "serve", "--port", str(port)],
                env={**env, "SWITCHBOARD_GATEWAY_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    process, port = start_on_a_chosen_port(serve, log_path)
    replica = Replica(process, f"http://127.0.0.1:{port}", log_path)
    replica.wait_ready()
    return HostedGateway(replica)

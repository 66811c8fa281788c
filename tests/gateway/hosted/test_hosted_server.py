"""Hosted mode end to end: the real language server over stdio, a real gateway process on a real
PostgreSQL, the fake Anthropic API behind it, and a person approving the device code over HTTP."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from gateway.hosted.hosted_support import HostedGateway
from gateway.signin.signin_support import Person, SignInAccounts
from rawlsp import RawServer
from switchboard.fakeapi import FakeAnthropic

SONNET = "claude-sonnet-4.5"
OPUS = "claude-opus-4.5"


@pytest.fixture(scope="module")
def people(database_url: str) -> SignInAccounts:
    return SignInAccounts(database_url)


def wait_for_method(
    server: RawServer, method: str, count: int = 1, timeout: float = 20
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frames = server.frames_with_method(method)
        if len(frames) >= count:
            return frames
        time.sleep(0.05)
    raise TimeoutError(f"no {method} within {timeout}s")


def device_sign_in(server: RawServer, hosted: HostedGateway, person: Person) -> dict[str, Any]:
    """`switchboard/signIn` with no params: the code comes as a notification, the request stays pending
    until the person approves it in the browser."""
    codes_before = len(server.frames_with_method("switchboard/signInCode"))
    server.request("sign-in", "switchboard/signIn", {})
    code = wait_for_method(server, "switchboard/signInCode", codes_before + 1)[-1]["params"]
    assert code["verificationUri"] == hosted.url + "/device"
    with pytest.raises(TimeoutError):
        server.wait_for("sign-in", timeout=1.5)  # pending while nobody has approved
    hosted.approve(code["userCode"], person.email)
    frame = server.wait_for("sign-in", timeout=30)
    assert "result" in frame, frame
    return frame["result"]


def start(env: dict[str, str], workspace: str) -> RawServer:
    server = RawServer(env)
    server.initialize(workspace)
    return server


async def test_device_sign_in_then_chat_charges_what_the_gateway_ledger_says(
    hosted: HostedGateway,
    people: SignInAccounts,
    ls_env: dict[str, str],
    ls_home: Path,
    workspace: str,
    upstream: FakeAnthropic,
) -> None:
    person = await people.create("pro")
    server = start(ls_env, workspace)
    try:
        signed_in = device_sign_in(server, hosted, person)
        assert signed_in["account"] == {
            "mode": "hosted",
            "email": person.email,
            "gatewayUrl": hosted.url,
            "accountUrl": hosted.url + "/account",
            "upgradeUrl": hosted.url + "/account/upgrade",
        }
        assert signed_in["usage"]["plan"] == "pro" and signed_in["refreshToken"]
        result = server.result(
            "switchboard/chat", {"workspaceUri": workspace, "prompt": "hi", "modelId": SONNET}
        )
        rows = await people.execute(
            "SELECT credits_h, status FROM turns WHERE account_id = %s AND turn_id = %s",
            (person.id, result["turnId"]),
        )
        assert rows and rows[0]["status"] == "complete"
        assert result["credits"] == rows[0]["credits_h"] / 100 and result["credits"] > 0
        assert result["costUsd"] is None  # signed in: the user pays credits, not list price
        usage = server.result("switchboard/usage", {})
        assert usage["usedCredits"] == rows[0]["credits_h"] / 100
        assert usage["accountInfo"]["mode"] == "hosted"
        changed = server.frames_with_method("switchboard/usageChanged")[-1]["params"]
        assert changed["usedCredits"] == usage["usedCredits"]
    finally:
        server.close()

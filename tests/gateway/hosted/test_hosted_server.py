"""Hosted mode end to end: the real language server over stdio, a real gateway process on a real
PostgreSQL, the fake Anthropic API behind it, and a person approving the device code over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.gateway_support import Replica, current_period
from gateway.hosted.hosted_support import VSCODE, HostedGateway, serve_again, start_gateway
from gateway.signin.signin_support import OAuthClient, Person, SignInAccounts
from rawlsp import RawServer
from switchboard.fakeapi import FakeAnthropic, Fault
from switchboard.plans.dev_issuer import init, load_private_key, sign_token

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


def start(env: dict[str, str], workspace: str, command: list[str] | None = None) -> RawServer:
    server = RawServer(env, command)
    server.initialize(workspace)
    return server


@dataclass
class SignedIn:
    server: RawServer
    person: Person
    result: dict[str, Any]  # the signIn result (its refreshToken is the rotated one the client stores)


SignInServer = Callable[..., AbstractAsyncContextManager[SignedIn]]


@pytest.fixture
def signed_in_server(
    hosted: HostedGateway, people: SignInAccounts, ls_env: dict[str, str], workspace: str
) -> SignInServer:
    """`async with signed_in_server("free") as s:` a real server resumed with a session that another
    device signed in for a new account of that plan (or for `person`), closed (shutdown, exit) after."""

    @contextlib.asynccontextmanager
    async def open_server(
        plan: str = "pro",
        *,
        person: Person | None = None,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
    ) -> AsyncGenerator[SignedIn]:
        person = person or await people.create(plan)
        server = start(env or ls_env, workspace, command)
        try:
            result = resume(server, hosted.refresh_token_for(person.email))
            yield SignedIn(server, person, result)
        finally:
            server.close()

    return open_server


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
        # Auto is routed by the gateway: the answer names the model its ledger says answered.
        token = "auto-turn"
        auto = server.result("switchboard/chat", {"workspaceUri": workspace, "prompt": "What is 2 + 2?",
                                                  "conversationId": result["conversationId"],
                                                  "workDoneToken": token})  # fmt: skip
        auto_rows = await people.execute(
            "SELECT routed_model, model_id, credits_h FROM turns WHERE account_id = %s AND turn_id = %s",
            (person.id, auto["turnId"]),
        )
        assert auto_rows[0]["model_id"] == "auto" and auto["routedModel"] == auto_rows[0]["routed_model"]
        assert auto["credits"] == auto_rows[0]["credits_h"] / 100
        progress = [f["params"] for f in server.frames_with_method("$/progress")]
        routes = [p["value"] for p in progress if p["token"] == token and p["value"].get("type") == "route"]
        assert routes[-1]["routedModel"] == auto["routedModel"]
        usage = server.result("switchboard/usage", {})
        assert usage["usedCredits"] == (rows[0]["credits_h"] + auto_rows[0]["credits_h"]) / 100
        assert usage["accountInfo"]["mode"] == "hosted"
        changed = server.frames_with_method("switchboard/usageChanged")[-1]["params"]
        assert changed["usedCredits"] == usage["usedCredits"]
    finally:
        server.close()
    assert_tokens_only_where_allowed(server, [signed_in["refreshToken"]], ls_home)
    assert signed_in["refreshToken"] not in hosted.replica.log()


def use(env: dict[str, str], tmp: Path, name: str) -> dict[str, str]:
    """The same environment with a state directory of its own (a second machine, or a fresh install)."""
    home = tmp / name
    home.mkdir()
    return {**env, "SWITCHBOARD_HOME": str(home), "SWITCHBOARD_CONFIG_DIR": str(home / "config")}


def resume(server: RawServer, refresh_token: str) -> dict[str, Any]:
    result = server.result("switchboard/signIn", {"refreshToken": refresh_token}, timeout=30)
    assert result["refreshToken"] and result["refreshToken"] != refresh_token  # rotated on use
    return result


def error_of(frame: dict[str, Any]) -> dict[str, Any]:
    assert "error" in frame, f"expected an error, got {frame}"
    return frame["error"]


async def test_a_deleted_local_ledger_changes_no_figure_and_a_stored_session_resumes(
    signed_in_server: SignInServer, ls_env: dict[str, str], ls_home: Path, workspace: str
) -> None:
    async with signed_in_server("pro") as signed_in:
        server, first = signed_in.server, signed_in.result
        assert first["account"]["email"] == signed_in.person.email
        assert first["refreshToken"]  # rotated on use (resume checks it is not the one presented)
        server.result("switchboard/chat", {"workspaceUri": workspace, "prompt": "one", "modelId": SONNET})
        server.result("switchboard/chat", {"workspaceUri": workspace, "prompt": "two"})
        before = server.result("switchboard/usage", {})
    assert before["usedCredits"] > 0
    ledger = ls_home / "ledger.sqlite3"
    assert ledger.exists()
    for cache in ls_home.glob("ledger.sqlite3*"):
        cache.unlink()
    server = start(ls_env, workspace)
    try:
        again = resume(server, first["refreshToken"])
        after = server.result("switchboard/usage", {})
    finally:
        server.close()
    assert again["usage"]["usedCredits"] == before["usedCredits"]
    assert {k: after[k] for k in ("usedCredits", "remainingCredits", "byModel")} == {
        k: before[k] for k in ("usedCredits", "remainingCredits", "byModel")
    }


async def test_gateway_turns_are_never_charged_to_the_local_ledger_even_once_it_is_deleted(
    signed_in_server: SignInServer, ls_env: dict[str, str], ls_home: Path, workspace: str
) -> None:
    """The local ledger is only a cache of the gateway's figures. The first signed-in turn of a process
    opens it after the answer is stored, and its crash reconcile must not take that turn for one a crash
    left unmetered; after signing out, a deleted ledger must not charge the gateway's past turns to the
    local plan. The history shows no list price for them in local mode either (their bill was credits)."""
    async with signed_in_server("pro") as signed_in:
        server = signed_in.server
        first = server.result("switchboard/chat", {"workspaceUri": workspace, "prompt": "one",
                                                   "modelId": SONNET})  # fmt: skip
        server.result("switchboard/chat", {"workspaceUri": workspace, "prompt": "two",
                                           "conversationId": first["conversationId"]})  # fmt: skip
        assert server.result("switchboard/signOut", {})["usedCredits"] == 0
    ledger = sqlite3.connect(ls_home / "ledger.sqlite3")
    try:
        charged = ledger.execute("SELECT turn_id FROM turns WHERE charged = 1").fetchall()
    finally:
        ledger.close()
    assert charged == [], "a turn the gateway charged was charged in the local ledger too"
    for cache in ls_home.glob("ledger.sqlite3*"):
        cache.unlink()
    server = start(ls_env, workspace)
    try:
        local = server.result("switchboard/usage", {})
        assert local["accountInfo"]["mode"] == "local" and local["usedCredits"] == 0, local
        conversation = server.result(
            "switchboard/conversation",
            {"workspaceUri": workspace, "conversationId": first["conversationId"]},
        )
    finally:
        server.close()
    answers = [turn for turn in conversation["turns"] if turn["role"] == "assistant"]
    assert len(answers) == 2 and all(turn["credits"] > 0 and turn["costUsd"] is None for turn in answers)
    assert "never metered" not in (ls_home / "logs" / "server.log").read_text()


async def test_a_forbidden_model_never_reaches_the_gateway(
    hosted: HostedGateway, signed_in_server: SignInServer, workspace: str
) -> None:
    async with signed_in_server("free") as signed_in:
        server = signed_in.server
        sent = hosted.messages_requests()
        refused = error_of(server.call("switchboard/chat", {"workspaceUri": workspace, "prompt": "hi",
                                                            "modelId": OPUS}))  # fmt: skip
        assert refused["code"] == 1001 and refused["data"]["plan"] == "free"
        assert hosted.messages_requests() == sent, "the forbidden turn cost a round trip to the gateway"
        # Positive control: an allowed model does reach it.
        server.result("switchboard/chat", {"workspaceUri": workspace, "prompt": "hi", "modelId": SONNET})
        assert hosted.messages_requests() == sent + 1


async def test_a_retired_models_not_found_is_explained_through_the_gateway_and_costs_nothing(
    hosted: HostedGateway, upstream: FakeAnthropic, signed_in_server: SignInServer, workspace: str
) -> None:
    """Signed in, Anthropic's 404 for a model it retired comes through the gateway, and the language server
    (on a calendar past Opus 4.5's retirement, tests/dated_server.py) says what it is."""
    dated = [sys.executable, str(Path(__file__).parents[2] / "dated_server.py"), "2027-01-22"]
    async with signed_in_server("pro", command=dated) as signed_in:
        server = signed_in.server
        upstream.add_fault(Fault("status", status=404, model="claude-opus-4-5-20251101"))
        sent = hosted.messages_requests()
        refused = error_of(server.call("switchboard/chat", {"workspaceUri": workspace, "prompt": "hi",
                                                            "modelId": OPUS}))  # fmt: skip
        assert hosted.messages_requests() == sent + 1, "the gateway asked Anthropic"
        assert refused["code"] == 1003, refused
        assert refused["message"].startswith(
            "Anthropic retired Claude Opus 4.5 on 2027-01-22: it can no longer answer. "
            "Choose another model, e.g. Claude Sonnet 4.5."
        )
        assert refused["data"]["suggestedModel"] == SONNET and refused["data"]["status"] == 404
        assert server.result("switchboard/usage", {})["usedCredits"] == 0, "the gateway charged nothing"


async def test_signed_in_autos_fallback_is_the_gateways_and_only_its_routes_are_reported(
    hosted: HostedGateway, upstream: FakeAnthropic, signed_in_server: SignInServer, workspace: str
) -> None:
    """Signed in, the gateway picks Auto's model, so only it can fall back when that model is busy: the
    server sends the turn once and reports the route the gateway took, never one of its own."""
    async with signed_in_server("pro") as signed_in:
        server = signed_in.server
        upstream.add_fault(Fault("status", status=529, model="claude-haiku-4-5-20251001", count=None))
        sent = hosted.messages_requests()
        token = "busy-haiku"
        answered = server.result("switchboard/chat", {"workspaceUri": workspace, "prompt": "hi",
                                                      "workDoneToken": token})  # fmt: skip
        assert hosted.messages_requests() == sent + 1, "the server fell back on its own"
        reason = "Claude Haiku 4.5 is busy → Claude Sonnet 4.5 answers instead"
        assert answered["routedModel"] == SONNET and answered["routeReason"] == reason
        assert answered["credits"] > 0
        routes = route_reports(server, token)
        assert [(r["routedModel"], r["fallback"]) for r in routes] == [
            ("claude-haiku-4.5", False),  # the server's preview
            (SONNET, True),  # what the gateway did
        ]
        assert routes[-1]["routeReason"] == reason

        upstream.clear_faults()
        upstream.add_fault(Fault("status", status=529, count=None))  # every model busy
        sent = hosted.messages_requests()
        token = "all-busy"
        refused = error_of(server.call("switchboard/chat", {"workspaceUri": workspace, "prompt": "hi",
                                                            "workDoneToken": token}))  # fmt: skip
        assert refused["code"] == 1003 and refused["data"]["status"] == 529, refused
        assert refused["data"].get("suggestedModel") is None
        assert hosted.messages_requests() == sent + 1, "the server fell back on its own"
        assert not any(r["fallback"] for r in route_reports(server, token)), "a route nobody took"


def route_reports(server: RawServer, token: str) -> list[dict[str, Any]]:
    progress = [f["params"] for f in server.frames_with_method("$/progress")]
    return [p["value"] for p in progress if p["token"] == token and p["value"].get("type") == "route"]


async def test_credits_run_out_with_1002_from_the_last_report_and_from_the_gateway(
    hosted: HostedGateway, people: SignInAccounts, signed_in_server: SignInServer, workspace: str
) -> None:
    person = await people.create("free")  # 50 credits, no overage
    await people.execute(
        "INSERT INTO account_periods (account_id, period, used_h) VALUES (%s, %s, %s)",
        (person.id, current_period(), 50 * 100 - 1),  # 0.01 credits left
    )
    async with signed_in_server(person=person) as signed_in:
        server = signed_in.server
        sent = hosted.messages_requests()
        # The last report says 0.01 is left, so the turn goes; the gateway cannot reserve its worst case.
        short = error_of(server.call("switchboard/chat", {"workspaceUri": workspace, "prompt": "hi",
                                                          "modelId": SONNET}))  # fmt: skip
        # Credits remain, so it is not "out of credits", and max_tokens is not the user's to lower.
        assert short["code"] == 1002 and "max_tokens" not in short["message"], short
        assert short["message"].startswith("This answer could cost up to "), short
        assert "0.01 are left, not enough for it. Pick a cheaper model" in short["message"], short
        assert short["data"]["remainingCredits"] == 0.01 and short["data"]["neededCredits"] > 0.01, short
        assert hosted.messages_requests() == sent + 1, "asked again for a max_tokens too small to be useful"
        await people.execute(
            "UPDATE account_periods SET used_h = %s WHERE account_id = %s", (50 * 100, person.id)
        )
        assert server.result("switchboard/usage", {})["remainingCredits"] == 0
        gone = error_of(server.call("switchboard/chat", {"workspaceUri": workspace, "prompt": "hi"}))
        assert gone["code"] == 1002 and gone["data"]["plan"] == "free"
        assert hosted.messages_requests() == sent + 1, "an empty balance cost a round trip"


async def test_an_overage_budget_reached_says_overage_is_on_from_the_gateway_and_from_the_last_report(
    hosted: HostedGateway, people: SignInAccounts, signed_in_server: SignInServer, workspace: str
) -> None:
    """Overage on and its budget spent: the 1002 says overage is on (`overageEnabled`), so the editor offers
    to raise the budget rather than to turn on what is on already; from the gateway's 402 and from the
    check before a turn alike."""
    person = await people.create("pro")
    await people.execute(
        "UPDATE accounts SET overage_enabled = true, overage_budget_cents = 100 WHERE id = %s", (person.id,)
    )
    async with signed_in_server(person=person) as signed_in:
        server = signed_in.server
        sent = hosted.messages_requests()
        # All 1,000 included credits and the $1 budget's 25 credits used since the last report.
        await people.execute(
            "INSERT INTO account_periods (account_id, period, used_h, overage_h) VALUES (%s, %s, %s, %s)",
            (person.id, current_period(), 1025 * 100, 25 * 100),
        )
        chat = {"workspaceUri": workspace, "prompt": "hi", "modelId": SONNET}
        refused = error_of(server.call("switchboard/chat", chat))
        assert refused["code"] == 1002 and "overage budget" in refused["message"], refused
        assert refused["data"]["overageAvailable"] is True and refused["data"]["overageEnabled"] is True
        assert hosted.messages_requests() == sent + 1
        assert server.result("switchboard/usage", {})["remainingCredits"] == 0
        again = error_of(server.call("switchboard/chat", chat))
        assert again["code"] == 1002 and again["data"]["overageEnabled"] is True, again
        assert hosted.messages_requests() == sent + 1, "a spent budget cost a round trip"


async def test_a_turn_whose_worst_case_exceeds_the_credits_left_is_asked_again_with_what_fits(
    hosted: HostedGateway, people: SignInAccounts, signed_in_server: SignInServer, workspace: str
) -> None:
    """6 credits left: Sonnet's usual 8,192 output tokens (about 16 credits) do not fit, about 3,000 do. The
    editor user cannot lower max_tokens, so the server asks again, once, with what fits: answered."""
    person = await people.create("pro")
    await people.execute(
        "INSERT INTO account_periods (account_id, period, used_h) VALUES (%s, %s, %s)",
        (person.id, current_period(), 994 * 100),
    )
    async with signed_in_server(person=person) as signed_in:
        server = signed_in.server
        sent = hosted.messages_requests()
        chat = {"workspaceUri": workspace, "prompt": "hi [[fake:words=20]]", "modelId": SONNET}
        answered = server.result("switchboard/chat", chat)
        assert hosted.messages_requests() == sent + 2
        rows = await people.execute(
            "SELECT status, credits_h FROM turns WHERE account_id = %s AND turn_id = %s",
            (person.id, answered["turnId"]),
        )
        assert rows and rows[0]["status"] == "complete", rows
        assert answered["credits"] == rows[0]["credits_h"] / 100 > 0


async def test_a_revoked_account_gets_1004_with_the_gateways_message(
    people: SignInAccounts, signed_in_server: SignInServer, workspace: str
) -> None:
    async with signed_in_server("pro") as signed_in:
        await people.execute("UPDATE accounts SET revoked_at = now() WHERE id = %s", (signed_in.person.id,))
        server = signed_in.server
        chat = {"workspaceUri": workspace, "prompt": "hi", "modelId": SONNET}
        refused = error_of(server.call("switchboard/chat", chat))
        assert refused["code"] == 1004 and "revoked" in refused["message"], refused
        # The session ended during the turn: every figure sent since is local mode's, on the local plan
        # (none built from the dead session's entitlement).
        wait_for_method(server, "switchboard/credentialsChanged")
        time.sleep(1)  # whatever the turn's end and the session's end still send
        frames = server.frames_from(0)
        ended = next(
            i
            for i, f in enumerate(frames)
            if f.get("method") == "switchboard/credentialsChanged" and f["params"]["refreshToken"] is None
        )
        reports = [f["params"] for f in frames[ended:] if f.get("method") == "switchboard/usageChanged"]
        assert reports, "no usageChanged after the session ended"
        assert [(r["plan"], r["accountInfo"]["mode"]) for r in reports] == [("free", "local")] * len(reports)


async def test_sign_out_revokes_the_session_at_the_gateway(
    hosted: HostedGateway, signed_in_server: SignInServer
) -> None:
    async with signed_in_server("pro") as signed_in:
        report = signed_in.server.result("switchboard/signOut", {})
        assert report["accountInfo"]["mode"] == "local" and report["accountInfo"]["gatewayUrl"] == hosted.url
        assert_revoked_at_the_gateway(hosted, signed_in.result["refreshToken"])


def assert_revoked_at_the_gateway(hosted: HostedGateway, refresh_token: str) -> None:
    """The gateway refuses `refresh_token` (`invalid_grant`): the session it belonged to was revoked there."""
    client = OAuthClient(hosted.url, client_id=VSCODE)
    try:
        answer = client.refresh(refresh_token)
    finally:
        client.close()
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def slow_refresh(seconds: float, resume_wait: float | None = None) -> list[str]:
    """The server of tests/slow_refresh_server.py: the token endpoint's answers reach it `seconds` late."""
    script = str(Path(__file__).parents[2] / "slow_refresh_server.py")
    waits = [] if resume_wait is None else [str(resume_wait)]
    return [sys.executable, script, str(seconds), *waits]


async def test_a_chat_sent_right_behind_a_resume_waits_for_it_and_goes_to_the_gateway(
    hosted: HostedGateway, people: SignInAccounts, ls_env: dict[str, str], workspace: str
) -> None:
    """An editor resumes the stored session first at start, and the user may chat at once. Until the resume
    ends the server is not signed in, but the chat must not go to the own key (and the local ledger): it
    waits for the resume and goes to the gateway."""
    person = await people.create("pro")
    stored = hosted.refresh_token_for(person.email)
    server = start(ls_env, workspace, slow_refresh(3))
    try:
        sent = hosted.messages_requests()
        server.request("resume", "switchboard/signIn", {"refreshToken": stored})
        chat = server.call("switchboard/chat", {"workspaceUri": workspace, "prompt": "hi", "modelId": SONNET})
        assert "result" in chat, f"the chat did not wait for the resume: {chat}"
        assert chat["result"]["costUsd"] is None and chat["result"]["credits"] > 0
        assert hosted.messages_requests() == sent + 1
        assert "result" in server.wait_for("resume", timeout=30)
        rows = await people.execute(
            "SELECT status FROM turns WHERE account_id = %s AND turn_id = %s",
            (person.id, chat["result"]["turnId"]),
        )
        assert rows and rows[0]["status"] == "complete"
    finally:
        server.close()


async def test_a_chat_that_outwaits_a_slow_resume_is_refused_to_try_again_not_sent_on_the_own_key(
    hosted: HostedGateway, people: SignInAccounts, ls_env: dict[str, str], workspace: str
) -> None:
    """A resume slower than a chat waits for it (here 1 s, by default 30): the chat is refused with a
    retryable 1003 that says the session is still being resumed, and the resume still signs in."""
    person = await people.create("pro")
    stored = hosted.refresh_token_for(person.email)
    server = start(ls_env, workspace, slow_refresh(5, resume_wait=1))
    try:
        server.request("resume", "switchboard/signIn", {"refreshToken": stored})
        refused = error_of(
            server.call("switchboard/chat", {"workspaceUri": workspace, "prompt": "hi", "modelId": SONNET})
        )
        assert refused["code"] == 1003 and refused["data"]["retryable"] is True, refused
        assert refused["data"]["type"] == "timeout" and refused["message"].startswith("Still resuming")
        assert server.wait_for("resume", timeout=30)["result"]["account"]["mode"] == "hosted"
        again = server.result(
            "switchboard/chat", {"workspaceUri": workspace, "prompt": "hi", "modelId": SONNET}
        )
        assert again["costUsd"] is None and again["credits"] > 0
    finally:
        server.close()


async def test_a_pasted_entitlement_ends_the_session_and_has_the_client_delete_its_stored_token(
    hosted: HostedGateway, signed_in_server: SignInServer, ls_env: dict[str, str], tmp_path: Path
) -> None:
    """Signing in with a pasted entitlement ends the Switchboard Cloud session held (revoked at the gateway)
    and, before the answer, tells the client to delete the stored refresh token (credentialsChanged null),
    as for any session that ended: else the next start resumes that session over the pasted plan."""
    paths, _ = init(tmp_path / "issuer")
    token = sign_token(load_private_key(tmp_path / "issuer"), "pro_plus")
    env = {**ls_env, "SWITCHBOARD_TRUSTED_KEYS": str(paths.jwks)}
    async with signed_in_server("pro", env=env) as signed_in:
        server = signed_in.server
        before = len(server.frames_from(0))
        answered = server.call("switchboard/signIn", {"token": token})
        result = answered["result"]
        assert result["refreshToken"] is None and result["account"]["mode"] == "local"
        assert result["usage"]["plan"] == "pro_plus"
        frames = server.frames_from(before)
        ended = [
            i
            for i, f in enumerate(frames)
            if f.get("method") == "switchboard/credentialsChanged" and f["params"]["refreshToken"] is None
        ]
        assert ended and ended[0] < frames.index(answered), "the client was not told to delete the token"
        assert not any(
            f["params"]["refreshToken"] for f in frames if f.get("method") == "switchboard/credentialsChanged"
        )
        assert_revoked_at_the_gateway(hosted, signed_in.result["refreshToken"])


async def test_a_retry_during_a_resume_picks_its_model_by_the_plan_it_brings(
    hosted: HostedGateway, people: SignInAccounts, ls_env: dict[str, str], workspace: str
) -> None:
    """A retry's stronger model is the plan's: one read right behind a resume waits for it before choosing
    (local mode's free plan has none stronger than Sonnet; the Pro account's has Opus)."""
    person = await people.create("pro")
    server = start(ls_env, workspace, slow_refresh(3))
    try:
        server.result("switchboard/signIn", {"refreshToken": hosted.refresh_token_for(person.email)})
        chat = server.result(
            "switchboard/chat", {"workspaceUri": workspace, "prompt": "hi", "modelId": SONNET}
        )
        server.result("switchboard/signOut", {})
        server.request(
            "resume", "switchboard/signIn", {"refreshToken": hosted.refresh_token_for(person.email)}
        )
        retry = {
            "workspaceUri": workspace,
            "conversationId": chat["conversationId"],
            "turnId": chat["turnId"],
        }
        retried = server.call("switchboard/retry", retry)
        assert "result" in retried, f"the retry chose its model before the resume ended: {retried}"
        assert retried["result"]["modelId"] == OPUS and retried["result"]["credits"] > 0
        assert "result" in server.wait_for("resume", timeout=30)
    finally:
        server.close()


async def test_a_chat_waiting_for_a_resume_can_be_stopped(
    hosted: HostedGateway, people: SignInAccounts, ls_env: dict[str, str], workspace: str
) -> None:
    """window/workDoneProgress/cancel for a chat that waits for a resume under way stops it (it was dropped:
    the chat was cancellable only once it had started), and nothing reaches the gateway."""
    person = await people.create("pro")
    server = start(ls_env, workspace, slow_refresh(3))
    try:
        sent = hosted.messages_requests()
        server.request(
            "resume", "switchboard/signIn", {"refreshToken": hosted.refresh_token_for(person.email)}
        )
        params = {"workspaceUri": workspace, "prompt": "hi", "modelId": SONNET, "workDoneToken": "waiting"}
        server.request("chat", "switchboard/chat", params)
        time.sleep(0.5)
        server.notify("window/workDoneProgress/cancel", {"token": "waiting"})
        stopped = error_of(server.wait_for("chat", timeout=10))
        assert stopped["code"] == -32800, stopped
        assert "result" in server.wait_for("resume", timeout=30)
        assert hosted.messages_requests() == sent
    finally:
        server.close()


async def test_a_pasted_entitlement_during_a_resume_waits_for_it_and_wins(
    hosted: HostedGateway, people: SignInAccounts, ls_env: dict[str, str], workspace: str, tmp_path: Path
) -> None:
    """signIn {token} read right behind a resume under way waits for it, as a chat does, and then ends the
    session it brought: else the resume would sign in after it, over the pasted plan."""
    person = await people.create("pro")
    stored = hosted.refresh_token_for(person.email)
    paths, _ = init(tmp_path / "issuer")
    token = sign_token(load_private_key(tmp_path / "issuer"), "pro_plus")
    server = start({**ls_env, "SWITCHBOARD_TRUSTED_KEYS": str(paths.jwks)}, workspace, slow_refresh(3))
    try:
        server.request("resume", "switchboard/signIn", {"refreshToken": stored})
        pasted = server.call("switchboard/signIn", {"token": token})
        result = pasted["result"]
        assert result["account"]["mode"] == "local" and result["usage"]["plan"] == "pro_plus", result
        resumed = server.wait_for("resume", timeout=30)
        frames = server.frames_from(0)
        assert frames.index(resumed) < frames.index(pasted), "the pasted token did not wait for the resume"
        usage = server.result("switchboard/usage", {})
        assert usage["accountInfo"]["mode"] == "local" and usage["plan"] == "pro_plus", usage
        changed = [f["params"] for f in frames if f.get("method") == "switchboard/credentialsChanged"]
        assert changed and changed[-1]["refreshToken"] is None, changed
    finally:
        server.close()


async def test_a_pasted_entitlement_that_outwaits_a_resume_cancels_it_and_has_the_stored_token_deleted(
    hosted: HostedGateway, people: SignInAccounts, ls_env: dict[str, str], workspace: str, tmp_path: Path
) -> None:
    """A resume slower than the wait (here 1 s) is cancelled for the pasted plan. No session was held, yet the
    client must delete the stored token all the same: else its next start resumes it over the pasted plan."""
    person = await people.create("pro")
    stored = hosted.refresh_token_for(person.email)
    paths, _ = init(tmp_path / "issuer")
    token = sign_token(load_private_key(tmp_path / "issuer"), "pro_plus")
    env = {**ls_env, "SWITCHBOARD_TRUSTED_KEYS": str(paths.jwks)}
    server = start(env, workspace, slow_refresh(5, resume_wait=1))
    try:
        server.request("resume", "switchboard/signIn", {"refreshToken": stored})
        pasted = server.call("switchboard/signIn", {"token": token})
        assert pasted["result"]["account"]["mode"] == "local", pasted
        assert error_of(server.wait_for("resume", timeout=30))["code"] == -32800
        frames = server.frames_from(0)
        changed = [f for f in frames if f.get("method") == "switchboard/credentialsChanged"]
        assert changed and changed[-1]["params"]["refreshToken"] is None, changed
        assert frames.index(changed[-1]) < frames.index(pasted), "told only after the answer"
        assert server.result("switchboard/usage", {})["plan"] == "pro_plus"
    finally:
        server.close()


async def test_device_sign_in_can_be_denied_and_cancelled(
    hosted: HostedGateway,
    people: SignInAccounts,
    ls_env: dict[str, str],
    workspace: str,
) -> None:
    person = await people.create("pro")
    server = start(ls_env, workspace)
    try:
        server.request("denied", "switchboard/signIn", {})
        code = wait_for_method(server, "switchboard/signInCode")[-1]["params"]
        hosted.approve(code["userCode"], person.email, action="deny")
        denied = error_of(server.wait_for("denied", timeout=30))
        assert denied["code"] == 1004 and denied["data"]["reason"] == "denied"

        server.request("cancelled", "switchboard/signIn", {})
        wait_for_method(server, "switchboard/signInCode", 2)
        server.notify("$/cancelRequest", {"id": "cancelled"})
        assert error_of(server.wait_for("cancelled", timeout=10))["code"] == -32800
        assert server.result("switchboard/usage", {})["accountInfo"]["mode"] == "local"
    finally:
        server.close()


async def test_a_server_without_a_gateway_says_so(ls_env: dict[str, str], workspace: str) -> None:
    env = {k: v for k, v in ls_env.items() if k != "SWITCHBOARD_GATEWAY_URL"}
    server = start(env, workspace)
    try:
        refused = error_of(server.call("switchboard/signIn", {"refreshToken": "x" * 40}))
        assert refused["code"] == 1004 and refused["data"]["reason"] == "no_gateway"
        assert "SWITCHBOARD_GATEWAY_URL" in refused["message"]
    finally:
        server.close()


async def test_rotation_reaches_the_client_and_a_reused_token_ends_the_session_everywhere(
    signed_in_server: SignInServer,
    ls_env: dict[str, str],
    ls_home: Path,
    workspace: str,
    tmp_path: Path,
) -> None:
    """Access tokens live 30 s here: the server refreshes ahead of expiry and every refresh rotates the
    refresh token, which reaches the client as credentialsChanged. A copy of a dead refresh token presented
    elsewhere revokes the family: that other sign-in fails with a clear message, and this server's session
    ends at its next refresh with credentialsChanged(null) and a message that says why."""
    async with signed_in_server("pro") as opened:
        server, signed_in = opened.server, opened.result
        other = start(use(ls_env, tmp_path, "elsewhere"), workspace)
        try:
            rotated = wait_for_method(server, "switchboard/credentialsChanged", timeout=60)[-1]["params"]
            assert rotated["refreshToken"] and rotated["refreshToken"] != signed_in["refreshToken"]
            server.result("switchboard/chat", {"workspaceUri": workspace, "prompt": "after rotation"})

            messages_before = len(server.frames_with_method("window/showMessage"))
            reused = error_of(other.call("switchboard/signIn", {"refreshToken": signed_in["refreshToken"]}))
            assert reused["code"] == 1004 and "sign in again" in reused["message"]
            told = other.frames_with_method("switchboard/credentialsChanged")
            assert (
                told[-1]["params"]["refreshToken"] is None and "sign in again" in told[-1]["params"]["reason"]
            )
            # No session was running there: the signIn's error is what the client shows, not a second warning.
            time.sleep(0.5)
            assert other.frames_with_method("window/showMessage") == []

            ended = wait_for_method(server, "switchboard/credentialsChanged", 2, timeout=60)[-1]["params"]
            assert ended["refreshToken"] is None and "sign in again" in ended["reason"]
            # The message follows credentialsChanged (account.py sends them in that order): wait for it too.
            shown_frames = wait_for_method(server, "window/showMessage", messages_before + 1, timeout=10)
            shown = [f["params"]["message"] for f in shown_frames]
            assert any("sign in again" in message for message in shown), shown
            assert server.result("switchboard/usage", {})["accountInfo"]["mode"] == "local"
        finally:
            other.close()
    tokens = [signed_in["refreshToken"], rotated["refreshToken"]]
    assert_tokens_only_where_allowed(server, tokens, ls_home)


WINDOW_STAGGER_SECONDS = 8.0  # the second window starts later, so the two refreshes fall 8 s apart


async def test_two_windows_sharing_a_session_stay_signed_in_when_each_adopts_the_others_token(
    hosted: HostedGateway,
    people: SignInAccounts,
    ls_env: dict[str, str],
    ls_home: Path,
    workspace: str,
    tmp_path: Path,
) -> None:
    """Two VS Code windows share one stored session: window A resumes it, B resumes with the token A's
    server handed back (spending it). With switchboard/adoptRefreshToken relayed the way the VS Code
    client does (a window's stored secret changed to a token its own server did not hand it), both
    servers refresh (30 s access tokens) and both keep chatting. The control pair, without adopting,
    presents a spent token at A's refresh: the family is revoked and both sessions end."""
    person, control_person = await people.create("pro"), await people.create("pro")
    window_a, window_b = start(ls_env, workspace), start(ls_env, workspace)
    control_env = use(ls_env, tmp_path, "control")
    control_a, control_b = start(control_env, workspace), start(control_env, workspace)
    try:
        a_token = resume(window_a, hosted.refresh_token_for(person.email))["refreshToken"]
        control_a_token = resume(control_a, hosted.refresh_token_for(control_person.email))["refreshToken"]
        time.sleep(WINDOW_STAGGER_SECONDS)
        b_token = resume(window_b, a_token)["refreshToken"]
        resume(control_b, control_a_token)
        window_a.notify("switchboard/adoptRefreshToken", {"refreshToken": b_token})
        window_a.notify("switchboard/adoptRefreshToken", {"refreshToken": ""})  # invalid: logged, ignored

        a_rotated = wait_for_method(window_a, "switchboard/credentialsChanged", timeout=40)[-1]["params"]
        assert a_rotated["refreshToken"], a_rotated  # A refreshed with B's token, not its spent one
        window_b.notify("switchboard/adoptRefreshToken", {"refreshToken": a_rotated["refreshToken"]})
        b_rotated = wait_for_method(window_b, "switchboard/credentialsChanged", timeout=40)[-1]["params"]
        assert b_rotated["refreshToken"], b_rotated
        window_a.notify("switchboard/adoptRefreshToken", {"refreshToken": b_rotated["refreshToken"]})
        for window in (window_a, window_b):
            window.result("switchboard/chat", {"workspaceUri": workspace, "prompt": "still signed in"})
            assert window.result("switchboard/usage", {})["accountInfo"]["mode"] == "hosted"

        # The control: A's refresh presents the token B already spent, which revokes the family.
        for window in (control_a, control_b):
            ended = wait_for_method(window, "switchboard/credentialsChanged", timeout=40)[-1]["params"]
            assert ended["refreshToken"] is None and "sign in again" in ended["reason"]
            assert window.result("switchboard/usage", {})["accountInfo"]["mode"] == "local"
    finally:
        for window in (window_a, window_b, control_a, control_b):
            window.close()
    tokens = [a_token, b_token, a_rotated["refreshToken"], b_rotated["refreshToken"]]
    assert_tokens_only_where_allowed(window_a, tokens, ls_home)
    assert_tokens_only_where_allowed(window_b, tokens, ls_home)


def assert_tokens_only_where_allowed(server: RawServer, refresh_tokens: list[str], home: Path) -> None:
    """Refresh tokens appear only in the signIn result and credentialsChanged; no JWT (access token)
    appears in any frame; neither is in the server's stderr, its log files or its state files."""
    allowed_ids = {"sign-in"}
    for frame in server.frames:
        text = json.dumps(frame)
        assert "eyJ" not in text, f"a JWT in a frame: {frame.get('method') or frame.get('id')}"
        carries = any(token in text for token in refresh_tokens)
        if carries:
            method = frame.get("method")
            is_result = "result" in frame and (frame.get("id") in allowed_ids or "account" in frame["result"])
            assert method == "switchboard/credentialsChanged" or is_result, f"a refresh token in {frame}"
    stderr = bytes(server.stderr_bytes).decode(errors="replace")
    files = [path for path in home.rglob("*") if path.is_file()]
    for token in [*refresh_tokens, "eyJ"]:
        assert token not in stderr, "a token in the server's stderr"
        for path in files:
            assert token.encode() not in path.read_bytes(), f"a token in {path}"


def connections_to(pid: int, port: int) -> int:
    """How many of process `pid`'s TCP sockets are connected to `port` on this machine (from /proc)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[9] in inodes:
                count += 1
    return count


async def test_shutdown_closes_the_gateway_connections_and_exits_promptly(
    hosted: HostedGateway, signed_in_server: SignInServer, ls_env: dict[str, str], workspace: str
) -> None:
    """After a session that used both of the server's HTTP clients to the gateway (the session's, for
    sign-in and usage, and the SDK's, for chat), keep-alive connections stay open; `shutdown` closes them
    (before `exit`), and `exit` ends the process at once, with nothing on stderr about open resources.
    (test_conformance's exit-after-shutdown row checks that an `exit` right behind `shutdown` exits 0.)"""
    port = int(hosted.url.rsplit(":", 1)[1])
    async with signed_in_server("pro", env={**ls_env, "PYTHONDEVMODE": "1"}) as signed_in:
        server = signed_in.server
        server.result("switchboard/chat", {"workspaceUri": workspace, "prompt": "hi", "modelId": SONNET})
        server.result("switchboard/usage", {})
        assert connections_to(server.proc.pid, port) >= 2  # the control: both clients keep theirs open
        assert "result" in server.call("shutdown", None)
        # The clients close right after the answer (pygls would count an awaited close as no shutdown yet).
        closing_deadline = time.monotonic() + 5
        while connections_to(server.proc.pid, port) and time.monotonic() < closing_deadline:
            time.sleep(0.05)
        assert connections_to(server.proc.pid, port) == 0
        began = time.monotonic()
        server.send({"jsonrpc": "2.0", "method": "exit"})
        code = server.proc.wait(timeout=15)
        took = time.monotonic() - began
    stderr = server.stderr.decode(errors="replace")
    assert code == 0, stderr
    assert "unclosed" not in stderr.lower() and "ResourceWarning" not in stderr, stderr
    assert took < 5, f"exit took {took:.1f}s"


async def test_a_stopped_turn_gets_the_gateways_charge_and_the_panel_its_totals(
    hosted: HostedGateway, people: SignInAccounts, signed_in_server: SignInServer, workspace: str
) -> None:
    """Stopping a signed-in answer closes its stream before the `message_delta` that carries the charge.
    The server then asks the gateway for the turn's settled charge: the stored turn gets the gateway's
    figure (what reached the gateway, which may be more than reached the editor), and a usageChanged
    sent after the gateway settled carries its totals with nothing left reserved."""
    async with signed_in_server("pro") as signed_in:
        server, person = signed_in.server, signed_in.person
        token = "stopped-turn"
        prompt = "Write a long essay [[fake:words=600 slow=0.05]]"
        chat = {"workspaceUri": workspace, "prompt": prompt, "modelId": SONNET, "workDoneToken": token}
        server.request("stopped", "switchboard/chat", chat)
        server.wait_for_progress(token, lambda value: value.get("type") == "text", timeout=60)
        time.sleep(0.5)  # a few more deltas
        server.notify("$/cancelRequest", {"id": "stopped"})
        assert error_of(server.wait_for("stopped", timeout=30))["code"] == -32800
        progress = [f["params"]["value"] for f in server.frames_with_method("$/progress")]
        route = next(v for v in progress if v.get("type") == "route")
        turn_id, conversation_id = route["turnId"], route["conversationId"]

        deadline = time.monotonic() + 30
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = await people.execute(
                "SELECT status, credits_h FROM turns WHERE account_id = %s AND turn_id = %s",
                (person.id, turn_id),
            )
            if rows and rows[0]["status"] != "reserved":
                break
            time.sleep(0.1)
        assert rows and rows[0]["status"] == "cut" and rows[0]["credits_h"] > 0, rows
        charged = rows[0]["credits_h"] / 100

        def settled_report() -> bool:
            reports = [f["params"] for f in server.frames_with_method("switchboard/usageChanged")]
            return bool(reports) and reports[-1]["usedCredits"] == charged and reports[-1]["reserved"] == 0

        deadline = time.monotonic() + 30
        while not settled_report() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert settled_report(), server.frames_with_method("switchboard/usageChanged")[-1:]
        asked = [
            line for line in hosted.access_lines() if line.get("path") == f"/v1/switchboard/turns/{turn_id}"
        ]
        assert asked and all(line["status"] == 200 for line in asked), asked

        conversation = server.result(
            "switchboard/conversation", {"workspaceUri": workspace, "conversationId": conversation_id}
        )
        stored = next(turn for turn in conversation["turns"] if turn["id"] == turn_id)
        assert stored["status"] == "cancelled" and stored["credits"] == charged
        # The editor, which shows the charge as pending after the cancel, is told the gateway's figure.
        [announced] = [f["params"] for f in server.frames_with_method("switchboard/turnCharged")]
        assert announced == {"turnId": turn_id, "conversationId": conversation_id, "credits": charged}


async def test_an_answer_cut_off_by_a_gateway_crash_gets_the_gateways_charge(
    hosted: HostedGateway,
    hosted_env: dict[str, str],
    people: SignInAccounts,
    ls_env: dict[str, str],
    workspace: str,
    tmp_path: Path,
) -> None:
    """The gateway dies (kill -9) while it streams a signed-in answer: the chat fails, and the gateway
    bills what reached it once a reaper settles the orphaned reservation (`cut`). The server asks for that
    figure (through the gateway's restart), stores it with the failed turn and sends turnCharged."""
    own = start_gateway(hosted_env, tmp_path / "own-gateway.log")  # this test kills it: not the shared one
    restarted: Replica | None = None
    person = await people.create("pro")
    server = start({**ls_env, "SWITCHBOARD_GATEWAY_URL": own.url}, workspace)
    try:
        resume(server, own.refresh_token_for(person.email))
        token = "crashed-turn"
        prompt = "Write a long essay [[fake:words=600 slow=0.05]]"
        chat = {"workspaceUri": workspace, "prompt": prompt, "modelId": SONNET, "workDoneToken": token}
        server.request("crashed", "switchboard/chat", chat)
        server.wait_for_progress(token, lambda value: value.get("type") == "text", timeout=60)
        time.sleep(3)  # past the gateway's usage checkpoints (every second), which the reaper bills
        own.replica.process.kill()
        own.replica.process.wait(10)
        assert error_of(server.wait_for("crashed", timeout=30))["code"] == 1003
        progress = [f["params"]["value"] for f in server.frames_with_method("$/progress")]
        route = next(v for v in progress if v.get("type") == "route")
        turn_id, conversation_id = route["turnId"], route["conversationId"]
        restarted = serve_again(own.replica, hosted_env)

        [announced] = [f["params"] for f in wait_for_method(server, "switchboard/turnCharged", timeout=90)]
        rows = await people.execute(
            "SELECT status, credits_h FROM turns WHERE account_id = %s AND turn_id = %s", (person.id, turn_id)
        )
        assert rows and rows[0]["status"] == "cut" and rows[0]["credits_h"] > 0, rows
        charged = rows[0]["credits_h"] / 100
        assert announced == {"turnId": turn_id, "conversationId": conversation_id, "credits": charged}
        conversation = server.result(
            "switchboard/conversation", {"workspaceUri": workspace, "conversationId": conversation_id}
        )
        stored = next(turn for turn in conversation["turns"] if turn["id"] == turn_id)
        assert stored["status"] == "failed" and stored["credits"] == charged
    finally:
        server.close()
        if restarted is not None:
            restarted.stop()
        own.stop()


async def test_a_turn_failed_by_a_gateway_that_is_down_logs_a_warning_not_a_traceback(
    hosted_env: dict[str, str], people: SignInAccounts, ls_env: dict[str, str], workspace: str, tmp_path: Path
) -> None:
    """A gateway that cannot be reached is an expected condition: the turn fails with 1003, and the server's
    log says it could not meter the turn in one warning line, without a traceback (kept for real bugs)."""
    own = start_gateway(hosted_env, tmp_path / "own-gateway.log")
    person = await people.create("pro")
    server = start({**ls_env, "SWITCHBOARD_GATEWAY_URL": own.url}, workspace)
    try:
        resume(server, own.refresh_token_for(person.email))
        own.stop()
        chat = {"workspaceUri": workspace, "prompt": "hello", "modelId": SONNET}
        server.request("down", "switchboard/chat", chat)
        assert error_of(server.wait_for("down", 60))["code"] == 1003
    finally:
        server.close()
        own.stop()
    log = server.stderr.decode(errors="replace")
    assert "Could not meter turn" in log, log
    assert "Traceback" not in log, log


async def test_credits_bought_since_the_last_report_let_the_next_turn_through(
    hosted: HostedGateway, people: SignInAccounts, signed_in_server: SignInServer, workspace: str
) -> None:
    """The last report says the balance is empty; before refusing, the server asks the gateway again, so
    credits that came back meanwhile (an upgrade, a new month, overage turned on elsewhere) are used."""
    person = await people.create("free")
    await people.execute(
        "INSERT INTO account_periods (account_id, period, used_h) VALUES (%s, %s, %s)",
        (person.id, current_period(), 50 * 100),
    )
    async with signed_in_server(person=person) as signed_in:
        server = signed_in.server
        sent = hosted.messages_requests()
        gone = error_of(server.call("switchboard/chat", {"workspaceUri": workspace, "prompt": "hi"}))
        assert gone["code"] == 1002 and hosted.messages_requests() == sent  # refused before routing
        await people.execute("UPDATE account_periods SET used_h = 0 WHERE account_id = %s", (person.id,))
        result = server.result("switchboard/chat", {"workspaceUri": workspace, "prompt": "hi again"})
        assert result["credits"] > 0 and hosted.messages_requests() == sent + 1


async def test_a_sign_in_while_signed_in_keeps_the_session_until_the_new_one_is_in_hand(
    hosted: HostedGateway, people: SignInAccounts, signed_in_server: SignInServer, workspace: str
) -> None:
    """Cancelling a device sign-in started while signed in changes nothing (still signed in, chats still go
    to the gateway); completing one as another person replaces the session and revokes the old one."""
    async with signed_in_server("pro") as signed_in:
        server = signed_in.server
        server.request("again", "switchboard/signIn", {})
        wait_for_method(server, "switchboard/signInCode")
        server.notify("$/cancelRequest", {"id": "again"})
        assert error_of(server.wait_for("again", timeout=10))["code"] == -32800
        assert server.frames_with_method("switchboard/credentialsChanged") == []
        usage = server.result("switchboard/usage", {})
        assert usage["accountInfo"]["email"] == signed_in.person.email
        sent = hosted.messages_requests()
        server.result("switchboard/chat", {"workspaceUri": workspace, "prompt": "still here"})
        assert hosted.messages_requests() == sent + 1

        other = await people.create("power")
        replaced = device_sign_in(server, hosted, other)
        assert replaced["account"]["email"] == other.email and replaced["usage"]["plan"] == "power"
        rotated = [
            f["params"]["refreshToken"] for f in server.frames_with_method("switchboard/credentialsChanged")
        ]
        client = OAuthClient(hosted.url, client_id=VSCODE)
        try:  # the first session's family is revoked: any token of it is refused
            for old in [signed_in.result["refreshToken"], *filter(None, rotated)]:
                assert client.refresh(old).json().get("error") == "invalid_grant"
        finally:
            client.close()


async def test_a_sign_in_whose_figures_do_not_come_fails_clearly_and_hands_over_the_live_token(
    hosted: HostedGateway, people: SignInAccounts, ls_env: dict[str, str], workspace: str
) -> None:
    """A session whose token may not read the account's figures (granted only `billing`): the refresh works,
    the usage report does not. The sign-in fails with 1004 `unreachable` saying so, the server stays in local
    mode, and the rotated refresh token (the presented one is spent) reaches the client first, alive."""
    person = await people.create("pro")
    client = OAuthClient(hosted.url, client_id=VSCODE)
    try:
        started = client.start(scope="billing")
        hosted.approve(started["user_code"], person.email)
        answer = client.poll(started["device_code"])
        deadline = time.monotonic() + 20
        while answer.status_code != 200 and time.monotonic() < deadline:
            time.sleep(1)
            answer = client.poll(started["device_code"])
        token = answer.json()["refresh_token"]
        server = start(ls_env, workspace)
        try:
            failed = error_of(server.call("switchboard/signIn", {"refreshToken": token}, timeout=30))
            assert failed["code"] == 1004 and failed["data"]["reason"] == "unreachable", failed
            assert "figures" in failed["message"]
            handed = server.frames_with_method("switchboard/credentialsChanged")
            assert len(handed) == 1 and handed[0]["params"]["refreshToken"] not in (None, token)
            assert server.result("switchboard/usage", {})["accountInfo"]["mode"] == "local"
        finally:
            server.close()
        assert client.refresh(handed[0]["params"]["refreshToken"]).status_code == 200
    finally:
        client.close()


async def test_a_plan_changed_at_the_gateway_reaches_the_editor_at_the_next_refresh(
    people: SignInAccounts, signed_in_server: SignInServer, workspace: str
) -> None:
    """Access tokens live 30 s here. After the operator moves the account from Free to Pro, the next refresh
    carries the new plan: usageChanged says Pro, and Opus (refused before) is allowed."""
    async with signed_in_server("free") as signed_in:
        server = signed_in.server
        refused = error_of(server.call("switchboard/chat", {"workspaceUri": workspace, "prompt": "hi",
                                                            "modelId": OPUS}))  # fmt: skip
        assert refused["code"] == 1001
        await people.execute("UPDATE accounts SET plan = 'pro' WHERE id = %s", (signed_in.person.id,))
        before = len(server.frames_with_method("switchboard/usageChanged"))
        deadline = time.monotonic() + 60
        plans: list[str] = []
        while "pro" not in plans and time.monotonic() < deadline:
            plans = [
                f["params"]["plan"] for f in server.frames_with_method("switchboard/usageChanged")[before:]
            ]
            time.sleep(0.2)
        assert "pro" in plans, "no usageChanged with the new plan after the refresh"
        result = server.result(
            "switchboard/chat", {"workspaceUri": workspace, "prompt": "hi", "modelId": OPUS}
        )
        assert result["credits"] > 0


async def test_a_plan_changed_at_the_gateway_is_followed_as_soon_as_a_report_names_it(
    people: SignInAccounts, signed_in_server: SignInServer, workspace: str
) -> None:
    """The plan check reads the access token, whose plan can lag the gateway's by up to a refresh. When a
    usage report names another plan than the token, the server refreshes at once: Opus, refused on Free, is
    allowed right after the report says Pro, long before the token's own refresh (22.5 s here)."""
    async with signed_in_server("free") as signed_in:
        server = signed_in.server
        started = time.monotonic()
        refused = error_of(server.call("switchboard/chat", {"workspaceUri": workspace, "prompt": "hi",
                                                            "modelId": OPUS}))  # fmt: skip
        assert refused["code"] == 1001
        await people.execute("UPDATE accounts SET plan = 'pro' WHERE id = %s", (signed_in.person.id,))
        assert server.result("switchboard/usage", {})["plan"] == "pro"
        models = server.result("switchboard/models", {"workspaceUri": workspace})["models"]
        assert next(m for m in models if m["id"] == OPUS)["available"], "the models still follow Free"
        result = server.result(
            "switchboard/chat", {"workspaceUri": workspace, "prompt": "hi", "modelId": OPUS}
        )
        assert result["credits"] > 0
        assert time.monotonic() - started < 15, "too slow to tell from the token's own refresh"
        plans = [f["params"]["plan"] for f in server.frames_with_method("switchboard/usageChanged")]
        assert plans[-1] == "pro"


async def test_an_upgrade_at_the_gateway_lets_a_model_the_token_forbids_through_at_once(
    hosted: HostedGateway, people: SignInAccounts, signed_in_server: SignInServer, workspace: str
) -> None:
    """The admin upgrades the account (the access token still says Free): a chat or a selection of Opus is
    not refused from the token's plan; the server asks the gateway's report first (a usage fetch, never a
    chat round trip), which names Pro."""
    for how in ("chat", "select"):
        async with signed_in_server("free") as signed_in:
            server = signed_in.server
            await people.execute("UPDATE accounts SET plan = 'pro' WHERE id = %s", (signed_in.person.id,))
            if how == "chat":
                params = {"workspaceUri": workspace, "prompt": "hi", "modelId": OPUS}
                assert server.result("switchboard/chat", params)["credits"] > 0
            else:
                params = {"workspaceUri": workspace, "modelId": OPUS}
                assert server.result("switchboard/selectModel", params)["selected"] == OPUS


async def test_signed_in_threshold_alerts_are_shown_once_when_a_turn_crosses_them(
    people: SignInAccounts, signed_in_server: SignInServer, workspace: str
) -> None:
    """Signed in, the 80 % alert comes as a window/showMessage warning when a turn takes the account past it,
    once (the next turn's report carries it too), and not at sign-in for what was passed before."""
    person = await people.create("free")  # 50 credits: 80 % is 40
    await people.execute(
        "INSERT INTO account_periods (account_id, period, used_h) VALUES (%s, %s, %s)",
        (person.id, current_period(), 39 * 100 + 90),
    )
    async with signed_in_server(person=person) as signed_in:
        server = signed_in.server
        assert server.frames_with_method("window/showMessage") == []
        # Haiku: the gateway reserves a turn's worst case, which Sonnet's would not fit in the 10.1 left.
        chat = {
            "workspaceUri": workspace,
            "prompt": "essay [[fake:words=800]]",
            "modelId": "claude-haiku-4.5",
        }
        assert server.result("switchboard/chat", chat)["credits"] > 0.1
        shown = [f["params"] for f in wait_for_method(server, "window/showMessage")]
        report = server.frames_with_method("switchboard/usageChanged")[-1]["params"]
        assert [s["message"] for s in shown] == report["alerts"] and "80%" in shown[0]["message"]
        assert shown[0]["type"] == 2
        server.result("switchboard/chat", {**chat, "prompt": "hi"})
        assert server.result("switchboard/usage", {})["alerts"] == report["alerts"]
        assert len(server.frames_with_method("window/showMessage")) == 1, "the alert came twice"

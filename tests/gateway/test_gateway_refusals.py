"""What the gateway refuses before forwarding: statuses the SDK does not retry, Anthropic's error JSON."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import anthropic
import httpx2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.gateway_support import (
    HTTP,
    Accounts,
    CountedClient,
    Replica,
    balance,
    run_cli,
    sdk,
    turn_headers,
    turn_rows,
)
from switchboard.fakeapi import FakeAnthropic
from switchboard.gateway.tokens import TokenAuthority

HAIKU = "claude-haiku-4-5-20251001"
SONNET_45 = "claude-sonnet-4-5-20250929"
OPUS = "claude-opus-4-5-20251101"
BODY: dict[str, Any] = {"max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


def post(replica: Replica, token: str | None, model: str, body: dict[str, Any], **headers: str) -> Any:
    all_headers = {name.lower(): value for name, value in turn_headers(model).items()} | headers
    if token is not None:
        all_headers["authorization"] = f"Bearer {token}"
    return HTTP.post(replica.url + "/v1/messages", json=body, headers=all_headers)


def error_of(response: Any) -> dict[str, Any]:
    payload = response.json()
    assert payload["type"] == "error"
    assert response.headers["x-should-retry"] == "false"
    return payload["error"]


async def test_forbidden_model_sent_straight_to_the_gateway_is_refused_403(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("free")
    marker = f"forbidden-{uuid.uuid4().hex}"  # the fake's log keeps its last requests: look for this one
    body = {**BODY, "model": OPUS, "messages": [{"role": "user", "content": marker}]}
    response = post(replica, account.token, "claude-opus-4.5", body)
    assert response.status_code == 403
    error = error_of(response)
    assert error["type"] == "plan_forbids_model"
    assert error["plan"] == "free" and "pro" in error["allowed_plans"]
    assert not any(marker.encode() in record.raw_body for record in upstream.received())
    assert await turn_rows(make_accounts.database_url, account.id) == []


async def test_the_databases_plan_decides_not_the_plan_in_the_token(
    make_accounts: Accounts, replica: Replica, gateway_env: dict[str, str]
) -> None:
    """A turn reads no account before its reservation, which checks the plan: a token issued before
    `accounts set-plan` neither keeps a plan's models nor is refused one the account now has."""
    upgraded, downgraded = await make_accounts.create("free"), await make_accounts.create("power")
    await asyncio.to_thread(run_cli, ["accounts", "set-plan", upgraded.email, "pro"], gateway_env)
    await asyncio.to_thread(run_cli, ["accounts", "set-plan", downgraded.email, "free"], gateway_env)
    assert post(replica, upgraded.token, "claude-opus-4.5", {**BODY, "model": OPUS}).status_code == 200
    response = post(replica, downgraded.token, "claude-opus-4.5", {**BODY, "model": OPUS})
    assert response.status_code == 403
    assert (error_of(response)["type"], error_of(response)["plan"]) == ("plan_forbids_model", "free")
    assert await turn_rows(make_accounts.database_url, downgraded.id) == []
    assert post(replica, downgraded.token, "claude-haiku-4.5", {**BODY, "model": HAIKU}).status_code == 200


async def test_the_sdk_does_not_retry_a_plan_refusal(make_accounts: Accounts, replica: Replica) -> None:
    account = await make_accounts.create("free")
    counted = CountedClient()
    async with sdk(replica.url, account.token, max_retries=3, http_client=counted.http) as client:
        with pytest.raises(anthropic.PermissionDeniedError) as caught:
            await client.messages.create(
                model=OPUS,
                max_tokens=10,
                messages=[{"role": "user", "content": "hi"}],
                extra_headers=turn_headers("claude-opus-4.5"),
            )
    assert caught.value.body["error"]["type"] == "plan_forbids_model"  # type: ignore[index]
    assert counted.sent == 1, "the SDK asked again for a final no"


async def test_header_and_body_must_name_the_same_model(make_accounts: Accounts, replica: Replica) -> None:
    account = await make_accounts.create("pro")
    # A cheap header on a dear body.
    response = post(replica, account.token, "claude-haiku-4.5", {**BODY, "model": OPUS})
    assert response.status_code == 400
    assert error_of(response)["type"] == "model_mismatch"
    # The Switchboard id and the Anthropic id of the same model are both fine.
    for body_model in ("claude-haiku-4.5", HAIKU):
        assert (
            post(replica, account.token, "claude-haiku-4.5", {**BODY, "model": body_model}).status_code == 200
        )


async def test_auto_header_on_a_dear_body_is_billed_at_one_x_for_what_auto_picked(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("free")  # Free may not use Opus: the body must not matter
    response = post(replica, account.token, "auto", {**BODY, "model": OPUS})
    assert response.status_code == 200
    assert upstream.received()[-1].model in (HAIKU, SONNET_45)
    [row] = await turn_rows(make_accounts.database_url, account.id)
    assert row["model_id"] == "auto" and row["routed_model"] in ("claude-haiku-4.5", "claude-sonnet-4.5")
    assert response.json()["switchboard"]["model_id"] == "auto"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"switchboard-turn-id": ""}, "turn id"),
        ({"switchboard-turn-id": "bad id with spaces"}, "turn id"),
        ({"switchboard-model": "gpt-5"}, "Switchboard-Model"),
    ],
)
async def test_missing_or_bad_turn_headers_are_refused_400(
    make_accounts: Accounts, replica: Replica, headers: dict[str, str], message: str
) -> None:
    account = await make_accounts.create("pro")
    response = post(replica, account.token, "claude-haiku-4.5", {**BODY, "model": HAIKU}, **headers)
    assert response.status_code == 400
    assert message in error_of(response)["message"]


async def test_bad_bodies_are_refused_400(make_accounts: Accounts, replica: Replica) -> None:
    account = await make_accounts.create("pro")
    for body in (
        {"model": HAIKU, "messages": []},
        {"model": HAIKU, "max_tokens": 10**9, "messages": BODY["messages"]},
    ):
        response = post(replica, account.token, "claude-haiku-4.5", body)
        assert response.status_code == 400
        assert error_of(response)["type"] == "invalid_request_error"
    response = HTTP.post(
        replica.url + "/v1/messages",
        content=b"{not json",
        headers={**turn_headers("claude-haiku-4.5"), "authorization": f"Bearer {account.token}"},
    )
    assert response.status_code == 400


async def test_tokens_that_prove_nothing_get_401(
    make_accounts: Accounts, replica: Replica, authority: TokenAuthority
) -> None:
    account = await make_accounts.create("pro")
    expired = authority.issue(account.id, "pro", now=datetime.now(UTC) - timedelta(minutes=16))
    stranger = TokenAuthority("http://gateway.test", timedelta(minutes=5), (Ed25519PrivateKey.generate(),))
    forged = stranger.issue(account.id, "power")
    other_issuer = TokenAuthority("http://elsewhere.test", timedelta(minutes=5), authority.signing_keys)
    # Signed by the gateway's own key, for an account that does not exist (or another deployment's).
    nobody = authority.issue("acct_does_not_exist", "power")
    for token in (None, "not-a-jwt", expired, forged, other_issuer.issue(account.id, "pro"), nobody):
        response = post(replica, token, "claude-haiku-4.5", {**BODY, "model": HAIKU})
        assert response.status_code == 401, token
        assert error_of(response)["type"] == "authentication_error"
        assert response.headers["www-authenticate"] == "Bearer"
    assert await turn_rows(make_accounts.database_url, account.id) == []


async def test_the_sdk_does_not_retry_an_authentication_refusal(replica: Replica) -> None:
    counted = CountedClient()
    async with sdk(replica.url, "garbage", max_retries=3, http_client=counted.http) as client:
        with pytest.raises(anthropic.AuthenticationError):
            await client.messages.create(
                model=HAIKU,
                max_tokens=10,
                messages=[{"role": "user", "content": "hi"}],
                extra_headers=turn_headers("claude-haiku-4.5"),
            )
    assert counted.sent == 1, "the SDK asked again for a final no"


async def test_a_revoked_account_is_refused_at_once(
    make_accounts: Accounts, replicas: list[Replica], gateway_env: dict[str, str]
) -> None:
    account = await make_accounts.create("pro")
    for replica in replicas:
        assert post(replica, account.token, "claude-haiku-4.5", {**BODY, "model": HAIKU}).status_code == 200
    await asyncio.to_thread(run_cli, ["accounts", "revoke", account.email], gateway_env)
    for replica in replicas:  # the same, still unexpired token, on every replica
        response = post(replica, account.token, "claude-haiku-4.5", {**BODY, "model": HAIKU})
        assert response.status_code == 401
        message = error_of(response)["message"]
        assert "revoked" in message and "administrator" in message and "sign in" not in message
        usage = HTTP.get(
            replica.url + "/v1/switchboard/usage", headers={"authorization": f"Bearer {account.token}"}
        )
        assert usage.status_code == 401


async def test_credits_refusal_is_402_and_says_what_would_fit(
    make_accounts: Accounts, replica: Replica
) -> None:
    account = await make_accounts.create("free", used_credits=49.9)
    response = post(
        replica, account.token, "claude-sonnet-4.5", {**BODY, "model": SONNET_45, "max_tokens": 64000}
    )
    assert response.status_code == 402
    error = error_of(response)
    assert error["type"] == "credits_exhausted"
    assert error["remaining_credits"] == pytest.approx(0.1)
    fits = error["max_tokens_that_fit"]
    assert 0 < fits < 64000
    # What it says fits, fits.
    smaller = {**BODY, "model": SONNET_45, "max_tokens": fits}
    assert post(replica, account.token, "claude-sonnet-4.5", smaller).status_code == 200
    async with sdk(replica.url, account.token, max_retries=3) as client:
        with pytest.raises(anthropic.APIStatusError) as caught:
            await client.messages.create(
                model=SONNET_45,
                max_tokens=64000,
                messages=[{"role": "user", "content": "hi"}],
                extra_headers=turn_headers("claude-sonnet-4.5"),
            )
    assert caught.value.status_code == 402


async def test_last_credit_ten_concurrent_turns_only_what_fits_is_answered(
    make_accounts: Accounts, replicas: list[Replica]
) -> None:
    # One credit left. Each turn holds its reservation for a second upstream (a stall), so all ten overlap.
    account = await make_accounts.create("free", used_credits=49.0)
    body = {
        "model": HAIKU,
        "max_tokens": 300,
        "messages": [{"role": "user", "content": "hi [[fake:stall=1]]"}],
    }

    async with httpx2.AsyncClient(timeout=30) as http:

        async def one(index: int) -> Any:
            headers = {**turn_headers("claude-haiku-4.5"), "authorization": f"Bearer {account.token}"}
            return await http.post(replicas[index % 2].url + "/v1/messages", json=body, headers=headers)

        responses = await asyncio.gather(*(one(i) for i in range(10)))
    answered = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 402]
    assert len(answered) + len(refused) == 10
    assert all(error_of(r)["type"] == "credits_exhausted" for r in refused)
    reserved_h = round(float(answered[0].headers["switchboard-reserved-credits"]) * 100)
    assert 1 <= len(answered) < 10
    assert len(answered) == 100 // reserved_h  # exactly as many as one credit holds
    final = await balance(make_accounts.database_url, account.id)
    assert final["reserved_h"] == 0
    rows = await turn_rows(make_accounts.database_url, account.id)
    assert len(rows) == len(answered) and all(row["status"] == "complete" for row in rows)
    charged = sum(round(r.json()["switchboard"]["credits"] * 100) for r in answered)
    assert sum(row["credits_h"] for row in rows) == charged == final["used_h"] - 4900
    assert final["used_h"] <= 50 * 100  # never above the allowance (Free has no overage)

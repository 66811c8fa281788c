"""Refresh tokens: rotation, reuse revoking the family, revocation (RFC 7009), revoked accounts, plans."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx2
import jwt
import psycopg
import pytest
from psycopg.rows import DictRow, dict_row

from gateway.gateway_support import Replica, run_cli
from gateway.signin.signin_support import VSCODE, Browser, OAuthClient, Person, SignInAccounts
from switchboard.gateway.config import RateLimits
from switchboard.gateway.signin import device, ratelimit, refresh
from switchboard.gateway.signin.codes import digest
from switchboard.gateway.tokens import TokenAuthority, TokenRefused


async def signed_in(
    proxied: Replica, people: SignInAccounts, plan: str = "pro"
) -> tuple[Person, OAuthClient, dict[str, Any]]:
    person = await people.create(plan)
    client = OAuthClient(proxied.url)
    started = client.start()
    with Browser(proxied.url) as browser:
        assert browser.submit(started["user_code"], person.email).status_code == 200
    answer = client.poll(started["device_code"])
    assert answer.status_code == 200, answer.text
    return person, client, answer.json()


def usage_status(replica: Replica, access_token: str) -> int:
    headers = {"authorization": f"Bearer {access_token}"}
    return httpx2.get(replica.url + "/v1/switchboard/usage", headers=headers).status_code


async def test_refresh_rotates_and_the_spent_token_is_dead(proxied: Replica, people: SignInAccounts) -> None:
    person, client, first = await signed_in(proxied, people)
    second = client.refresh(first["refresh_token"])
    assert second.status_code == 200, second.text
    assert second.headers["cache-control"] == "no-store"
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"] and rotated["token_type"] == "Bearer"
    assert jwt.decode(rotated["access_token"], options={"verify_signature": False})["sub"] == person.id
    assert usage_status(proxied, rotated["access_token"]) == 200
    third = client.refresh(rotated["refresh_token"])
    assert third.status_code == 200 and third.json()["refresh_token"] not in {
        first["refresh_token"],
        rotated["refresh_token"],
    }
    rows = await people.execute(
        "SELECT t.token_hash FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id"
        " WHERE f.account_id = %s",
        (person.id,),
    )
    assert {row["token_hash"] for row in rows} == {
        digest(token)
        for token in (first["refresh_token"], rotated["refresh_token"], third.json()["refresh_token"])
    }


async def test_a_spent_refresh_token_presented_again_revokes_the_whole_family(
    proxied: Replica, people: SignInAccounts, authority: TokenAuthority
) -> None:
    person, client, first = await signed_in(proxied, people)
    rotated = client.refresh(first["refresh_token"]).json()
    replayed = client.refresh(first["refresh_token"])  # a thief's copy, or a client that lost the answer
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    # The legitimate newest token died with its family.
    newest = client.refresh(rotated["refresh_token"])
    assert newest.status_code == 400 and newest.json()["error"] == "invalid_grant"
    families = await people.execute(
        "SELECT revoked_reason FROM refresh_families WHERE account_id = %s", (person.id,)
    )
    assert families == [{"revoked_reason": "reused"}]
    # An access token issued before the reuse lives out its (at most 15-minute) lifetime: it is stateless.
    assert usage_status(proxied, rotated["access_token"]) == 200
    claims = jwt.decode(rotated["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] <= 900
    expired = datetime.fromtimestamp(claims["exp"] + 1, UTC)
    with pytest.raises(TokenRefused, match="expired"):
        dataclasses.replace(authority, clock=lambda: expired).verify(rotated["access_token"])
    log = proxied.log()
    assert "a spent refresh token was presented again" in log
    assert first["refresh_token"] not in log and rotated["refresh_token"] not in log


@pytest.fixture(scope="module")
def lenient(signin_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    """A replica with the default grace for a spent refresh token (the shared ones have none)."""
    env = {k: v for k, v in signin_env.items() if k != "SWITCHBOARD_GATEWAY_REFRESH_REUSE_GRACE_SECONDS"}
    replica = Replica.start(env, tmp_path_factory.mktemp("grace") / "lenient.log")
    try:
        yield replica
    finally:
        replica.stop()


async def test_windows_that_start_together_each_refresh_the_one_token_they_share(
    lenient: Replica, people: SignInAccounts
) -> None:
    """The editor's windows keep one refresh token; windows restored together each present it within
    moments, from one machine (one address). Within the grace (30 s by default) that is not a theft: each
    gets a live token of the family."""
    person, client, first = await signed_in(lenient, people)
    window_a = client.refresh(first["refresh_token"])
    window_b = client.refresh(first["refresh_token"])
    assert window_a.status_code == window_b.status_code == 200, window_b.text
    a, b = window_a.json()["refresh_token"], window_b.json()["refresh_token"]
    assert a != b
    assert usage_status(lenient, window_b.json()["access_token"]) == 200
    assert client.refresh(a).status_code == client.refresh(b).status_code == 200  # both branches live
    families = await people.execute(
        "SELECT revoked_at FROM refresh_families WHERE account_id = %s", (person.id,)
    )
    assert families == [{"revoked_at": None}]
    assert "presented again (within the grace)" in lenient.log()
    # Another client's copy is still refused, grace or not, and spends nothing.
    thief = OAuthClient(lenient.url, client_id="switchboard-terminal")
    assert thief.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"


async def test_a_stolen_token_replayed_within_the_grace_from_another_address_revokes_the_family(
    lenient: Replica, people: SignInAccounts
) -> None:
    """The client id is public: within the grace (the default 30 s), a thief who replays a token the user
    just spent, naming the user's client, from an address of its own, gets no branch of the family. The
    family dies, the user's newest token with it, and the reuse is logged as one."""
    person, client, first = await signed_in(lenient, people)
    rotated = client.refresh(first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    spent = await people.execute(
        "SELECT spent_from FROM refresh_tokens WHERE token_hash = %s", (digest(first["refresh_token"]),)
    )
    assert spent == [{"spent_from": refresh.spent_from(first["refresh_token"], client.address)}]
    thief = OAuthClient(lenient.url, address="203.0.113.66")  # same client id, another address
    replayed = thief.refresh(first["refresh_token"])
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant", replayed.text
    assert client.refresh(rotated.json()["refresh_token"]).json()["error"] == "invalid_grant"
    # Nor does the user's own machine get a branch any more: the family is gone.
    assert client.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"
    families = await people.execute(
        "SELECT revoked_reason FROM refresh_families WHERE account_id = %s", (person.id,)
    )
    assert families == [{"revoked_reason": "reused"}]


async def test_where_a_token_was_spent_from_is_bound_to_the_token_and_reveals_no_address(
    lenient: Replica, people: SignInAccounts
) -> None:
    """`spent_from` is not the digest of the address alone: the IPv4 space is small enough to reverse that,
    so a copy of the table would tell where each user refreshed from. It is bound to the token, which is
    stored only as its own digest: two tokens spent from one address have unrelated values."""
    _, client, first = await signed_in(lenient, people)
    _, _, second = await signed_in(lenient, people)
    same_address = OAuthClient(lenient.url, address=client.address)
    assert client.refresh(first["refresh_token"]).status_code == 200
    assert same_address.refresh(second["refresh_token"]).status_code == 200
    rows = await people.execute(
        "SELECT spent_from FROM refresh_tokens WHERE token_hash = ANY(%s)",
        ([digest(first["refresh_token"]), digest(second["refresh_token"])],),
    )
    stored = {row["spent_from"] for row in rows}
    assert len(stored) == 2  # one address, two tokens: nothing links them
    assert (
        digest(client.address) not in stored and digest(ratelimit.address_key(client.address)) not in stored
    )
    assert None not in stored and client.address not in "".join(stored)
    # The grace still holds from that address, and only from it.
    assert same_address.refresh(first["refresh_token"]).status_code == 200
    elsewhere = OAuthClient(lenient.url, address="203.0.113.67")
    assert elsewhere.refresh(second["refresh_token"]).json()["error"] == "invalid_grant"
    assert same_address.refresh(second["refresh_token"]).json()["error"] == "invalid_grant"  # family revoked


async def test_windows_on_one_ipv6_network_share_the_grace(lenient: Replica, people: SignInAccounts) -> None:
    """An IPv6 machine takes a new address in its /64 at will (privacy addresses): the grace holds across
    the /64, as the rate limits key it, and not beyond."""
    _, client, first = await signed_in(lenient, people)
    window_a = OAuthClient(lenient.url, address="2001:db8:5:7::a")
    window_b = OAuthClient(lenient.url, address="2001:db8:5:7::b")
    assert window_a.refresh(first["refresh_token"]).status_code == 200
    again = window_b.refresh(first["refresh_token"])
    assert again.status_code == 200, again.text
    elsewhere = OAuthClient(lenient.url, address="2001:db8:5:8::a")
    assert elsewhere.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"
    assert client.refresh(again.json()["refresh_token"]).json()["error"] == "invalid_grant"  # revoked


async def test_with_no_grace_a_reuse_racing_the_spending_refresh_still_revokes(
    people: SignInAccounts, proxied: Replica, database_url: str
) -> None:
    """`now()` is when a transaction began: a reuse whose transaction began before the spending one
    committed must not count as within a grace of 0 (nor stretch a longer one)."""
    from psycopg.rows import dict_row

    from switchboard.gateway.signin import refresh

    _, _, first = await signed_in(proxied, people)
    token = first["refresh_token"]
    async with (
        await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as late,
        await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as spender,
    ):
        await late.execute("SELECT 1")  # its transaction and its now() begin here, before the spending
        async with spender.transaction():
            spent = await refresh.rotate(spender, token, VSCODE, 3600, 0)
        assert isinstance(spent, refresh.Rotated)
        again = await refresh.rotate(late, token, VSCODE, 3600, 0)
        await late.commit()
    assert isinstance(again, refresh.Refused) and again.reason == "reused"


async def test_a_spent_token_replayed_after_it_expired_still_revokes_its_family(
    lenient: Replica, people: SignInAccounts
) -> None:
    person, client, first = await signed_in(lenient, people)
    rotated = client.refresh(first["refresh_token"]).json()
    await people.execute(
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = %s",
        (digest(first["refresh_token"]),),
    )
    assert client.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"
    assert client.refresh(rotated["refresh_token"]).json()["error"] == "invalid_grant"  # revoked with it
    families = await people.execute(
        "SELECT revoked_reason FROM refresh_families WHERE account_id = %s", (person.id,)
    )
    assert families == [{"revoked_reason": "reused"}]


async def test_a_spent_token_presented_again_after_the_grace_revokes_the_family(
    lenient: Replica, people: SignInAccounts
) -> None:
    person, client, first = await signed_in(lenient, people)
    rotated = client.refresh(first["refresh_token"]).json()
    await people.execute(  # spent 31 seconds ago
        "UPDATE refresh_tokens SET used_at = now() - interval '31 seconds' WHERE token_hash = %s",
        (digest(first["refresh_token"]),),
    )
    assert client.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"
    assert client.refresh(rotated["refresh_token"]).json()["error"] == "invalid_grant"
    families = await people.execute(
        "SELECT revoked_reason FROM refresh_families WHERE account_id = %s", (person.id,)
    )
    assert families == [{"revoked_reason": "reused"}]


async def test_another_sign_in_of_the_same_account_survives_a_revoked_family(
    proxied: Replica, people: SignInAccounts
) -> None:
    person, client, first = await signed_in(proxied, people)
    other_client = OAuthClient(proxied.url)
    started = other_client.start()
    with Browser(proxied.url) as browser:
        browser.submit(started["user_code"], person.email)
    other = other_client.poll(started["device_code"]).json()
    client.refresh(first["refresh_token"])
    client.refresh(first["refresh_token"])  # reuse: this family dies
    assert other_client.refresh(other["refresh_token"]).status_code == 200


async def test_revocation_kills_the_family_and_always_answers_200(
    proxied: Replica, people: SignInAccounts
) -> None:
    _, client, first = await signed_in(proxied, people)
    rotated = client.refresh(first["refresh_token"]).json()
    revoked = client.post("/oauth/revoke", token=rotated["refresh_token"], token_type_hint="refresh_token")
    assert revoked.status_code == 200 and revoked.content == b""
    assert client.refresh(rotated["refresh_token"]).json()["error"] == "invalid_grant"
    # Unknown tokens, access tokens and repeats: 200 as well (RFC 7009 §2.2).
    for token in ("nonsense", rotated["access_token"], rotated["refresh_token"]):
        assert client.post("/oauth/revoke", token=token).status_code == 200
    assert client.post("/oauth/revoke", token="x", client_id="evil").status_code == 401
    assert client.post("/oauth/revoke").json()["error"] == "invalid_request"


async def test_a_revoked_account_cannot_refresh(
    proxied: Replica, people: SignInAccounts, gateway_env: dict[str, str]
) -> None:
    person, client, first = await signed_in(proxied, people)
    run_cli(["accounts", "revoke", person.email], gateway_env)
    refused = client.refresh(first["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert "disabled" in refused.json()["error_description"]
    assert usage_status(proxied, first["access_token"]) == 401  # and its access token stops at once


async def test_refresh_carries_the_current_plan(
    proxied: Replica, people: SignInAccounts, gateway_env: dict[str, str]
) -> None:
    person, client, first = await signed_in(proxied, people, plan="free")
    assert jwt.decode(first["access_token"], options={"verify_signature": False})["plan"] == "free"
    run_cli(["accounts", "set-plan", person.email, "power"], gateway_env)
    rotated = client.refresh(first["refresh_token"]).json()
    assert jwt.decode(rotated["access_token"], options={"verify_signature": False})["plan"] == "power"


async def test_a_refresh_token_works_only_for_its_client(proxied: Replica, people: SignInAccounts) -> None:
    _, client, first = await signed_in(proxied, people)
    thief = OAuthClient(proxied.url, client_id="switchboard-terminal")
    assert thief.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"
    assert client.refresh(first["refresh_token"]).status_code == 200  # not spent by the refused attempt


async def test_the_operator_can_sign_an_account_out_everywhere(
    proxied: Replica, people: SignInAccounts, gateway_env: dict[str, str]
) -> None:
    person, laptop, first = await signed_in(proxied, people)
    desktop = OAuthClient(proxied.url, client_id="switchboard-terminal")
    started = desktop.start()
    with Browser(proxied.url) as browser:
        browser.submit(started["user_code"], person.email)
    second = desktop.poll(started["device_code"]).json()
    done = run_cli(["accounts", "sign-out", person.email], gateway_env)
    assert "signed out of 2 session(s)" in done.stdout
    assert laptop.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"
    assert desktop.refresh(second["refresh_token"]).json()["error"] == "invalid_grant"
    assert usage_status(proxied, second["access_token"]) == 200  # the account itself stays usable


async def test_after_a_restore_the_operator_signs_everyone_out(
    proxied: Replica, people: SignInAccounts, gateway_env: dict[str, str]
) -> None:
    _, client, first = await signed_in(proxied, people)
    done = run_cli(["accounts", "sign-out", "--everyone"], gateway_env)
    assert "Every account is signed out of" in done.stdout
    assert client.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"
    live = await people.execute("SELECT count(*) AS n FROM refresh_families WHERE revoked_at IS NULL")
    assert live == [{"n": 0}]


async def test_a_dead_refresh_token_sent_over_and_over_never_locks_the_accounts_live_devices_out(
    proxied: Replica, people: SignInAccounts
) -> None:
    """Only a token that can still rotate counts against its account's refresh limit: an old copy of a
    revoked sign-in, sent more often than the limit allows, leaves the account's other devices refreshing."""
    person, laptop, first = await signed_in(proxied, people)
    desktop = OAuthClient(proxied.url)
    started = desktop.start()
    with Browser(proxied.url) as browser:
        assert browser.submit(started["user_code"], person.email).status_code == 200
    second = desktop.poll(started["device_code"]).json()
    revoked = laptop.post("/oauth/revoke", token=first["refresh_token"], client_id=laptop.client_id)
    assert revoked.status_code == 200
    attacker = OAuthClient(proxied.url)
    for _ in range(RateLimits().refreshes_per_account + 1):
        assert attacker.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"
    renewed = desktop.refresh(second["refresh_token"])
    assert renewed.status_code == 200, renewed.text


REFRESHES_PER_ACCOUNT = 3


@pytest.fixture(scope="module")
def strict(signin_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    """A replica that lets an account refresh only `REFRESHES_PER_ACCOUNT` times an hour."""
    env = {
        **signin_env,
        "SWITCHBOARD_GATEWAY_RATE_LIMITS": json.dumps({"refreshes_per_account": REFRESHES_PER_ACCOUNT}),
    }
    replica = Replica.start(env, tmp_path_factory.mktemp("strict") / "strict.log")
    try:
        yield replica
    finally:
        replica.stop()


async def test_refreshing_past_the_accounts_limit_is_slowed_down_and_spends_no_token(
    strict: Replica, people: SignInAccounts
) -> None:
    """`refreshes_per_account` refreshes an hour go through; the next is 429 `slow_down` with Retry-After,
    from any address (the limit is the account's), and leaves the latest token unspent: once the window
    ends it refreshes."""
    person, client, first = await signed_in(strict, people)
    token = first["refresh_token"]
    for _ in range(REFRESHES_PER_ACCOUNT):
        rotated = client.refresh(token)
        assert rotated.status_code == 200, rotated.text
        token = rotated.json()["refresh_token"]
    elsewhere = OAuthClient(strict.url)  # the same program on another address: the same account's limit
    for refused in (client.refresh(token), elsewhere.refresh(token)):
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"] == "slow_down"
        assert 0 < int(refused.headers["retry-after"]) <= 3600
    unspent = await people.execute(
        "SELECT used_at FROM refresh_tokens WHERE token_hash = %s", (digest(token),)
    )
    assert unspent == [{"used_at": None}]
    families = await people.execute(
        "SELECT revoked_at FROM refresh_families WHERE account_id = %s", (person.id,)
    )
    assert families == [{"revoked_at": None}]
    rule = ratelimit.rules_for(RateLimits(refreshes_per_account=REFRESHES_PER_ACCOUNT)).refresh_per_account
    await people.execute(  # the hour is over
        "UPDATE rate_limits SET window_start = now() - interval '1 hour' WHERE bucket = %s",
        (ratelimit.bucket(rule, person.id),),
    )
    renewed = client.refresh(token)
    assert renewed.status_code == 200, renewed.text
    assert usage_status(strict, renewed.json()["access_token"]) == 200


@pytest.mark.parametrize("who", ["account", "everyone"])
async def test_a_code_approved_but_not_yet_collected_does_not_outlive_a_sign_out(
    proxied: Replica, people: SignInAccounts, gateway_env: dict[str, str], who: str
) -> None:
    """A reviewer approved a code, had the operator sign the account out, then polled: the code still gave a
    fresh family. The sign-out denies such codes now."""
    person = await people.create()
    client = OAuthClient(proxied.url)
    started = client.start()
    with Browser(proxied.url) as browser:
        assert browser.submit(started["user_code"], person.email).status_code == 200
    target = [person.email] if who == "account" else ["--everyone"]
    assert run_cli(["accounts", "sign-out", *target], gateway_env).returncode == 0
    answer = client.poll(started["device_code"])
    assert answer.status_code == 400 and answer.json()["error"] == "access_denied", answer.text
    live = "SELECT count(*) AS n FROM refresh_families WHERE account_id = %s AND revoked_at IS NULL"
    assert await people.execute(live, (person.id,)) == [{"n": 0}]


async def test_a_code_approved_before_the_account_is_revoked_signs_nobody_in(
    proxied: Replica, people: SignInAccounts, gateway_env: dict[str, str]
) -> None:
    person = await people.create()
    client = OAuthClient(proxied.url)
    started = client.start()
    with Browser(proxied.url) as browser:
        assert browser.submit(started["user_code"], person.email).status_code == 200
    assert run_cli(["accounts", "revoke", person.email], gateway_env).returncode == 0
    assert client.poll(started["device_code"]).json()["error"] == "access_denied"


async def _connect(database_url: str) -> psycopg.AsyncConnection[DictRow]:
    return await psycopg.AsyncConnection[DictRow].connect(database_url, autocommit=True, row_factory=dict_row)


async def _approved_code(proxied: Replica, person: Person) -> str:
    started = OAuthClient(proxied.url).start()
    with Browser(proxied.url) as browser:
        assert browser.submit(started["user_code"], person.email).status_code == 200
    return started["device_code"]


async def _claim(conn: psycopg.AsyncConnection[DictRow], device_code: str) -> str:
    """What the token endpoint does with an approved code, committed at the end of the block."""
    polled = await device.poll(conn, device_code, VSCODE)
    if polled.outcome == "approved" and polled.account_id is not None:
        await refresh.start_family(conn, polled.account_id, VSCODE, polled.scope, 3600)
    return polled.outcome


async def test_a_claim_and_a_sign_out_at_the_same_moment_leave_no_live_family(
    proxied: Replica, people: SignInAccounts, database_url: str
) -> None:
    """The race the denial alone leaves open: a claim that read its code before the sign-out denied it, and
    inserted its family after the sign-out revoked the account's families. They take the account's row in
    turn now, whichever comes first."""
    person = await people.create()
    live_families = "SELECT count(*) AS n FROM refresh_families WHERE account_id = %s AND revoked_at IS NULL"
    async with await _connect(database_url) as claimer, await _connect(database_url) as operator:
        # The claim first: the sign-out waits for it to commit, then revokes the family it made.
        device_code = await _approved_code(proxied, person)
        async with claimer.transaction():
            assert await _claim(claimer, device_code) == "approved"
            sign_out = asyncio.create_task(refresh.revoke_account(operator, person.id))
            await asyncio.sleep(0.5)
            assert not sign_out.done(), "the sign-out did not wait for the claim"
        assert await sign_out == 1
        assert await people.execute(live_families, (person.id,)) == [{"n": 0}]

        # The sign-out first: the claim waits for it, then finds its code denied.
        device_code = await _approved_code(proxied, person)
        async with operator.transaction():
            await refresh.revoke_account(operator, person.id)

            async def claim() -> str:
                async with claimer.transaction():
                    return await _claim(claimer, device_code)

            claiming = asyncio.create_task(claim())
            await asyncio.sleep(0.5)
            assert not claiming.done(), "the claim did not wait for the sign-out"
        assert await claiming == "access_denied"
        assert await people.execute(live_families, (person.id,)) == [{"n": 0}]

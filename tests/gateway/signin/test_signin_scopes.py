"""OAuth scopes: `chat` (turns, usage, a turn's charge) and `billing` (overage). Unknown scopes are refused
with invalid_scope; the granted scope rides in the token answer, the access token and the refresh family,
a refresh never widens it, and the endpoints refuse a token without the scope they need."""

from __future__ import annotations

from typing import Any, get_args, get_type_hints

import httpx2
import jwt
import pytest

from gateway.gateway_support import Replica
from gateway.signin.signin_support import Browser, OAuthClient, SignInAccounts
from switchboard.gateway.service import account_endpoint
from switchboard.gateway.signin.scopes import SCOPES, Scope


async def sign_in(
    proxied: Replica, people: SignInAccounts, scope: str | None
) -> tuple[OAuthClient, Any, str]:
    person = await people.create("pro")
    client = OAuthClient(proxied.url)
    started = client.start(scope)
    with Browser(proxied.url) as browser:
        assert browser.submit(started["user_code"], person.email).status_code == 200
    answer = client.poll(started["device_code"])
    assert answer.status_code == 200, answer.text
    return client, answer.json(), person.id


def claims(access_token: str) -> dict[str, Any]:
    return jwt.decode(access_token, options={"verify_signature": False})


def usage(replica: Replica, access_token: str) -> httpx2.Response:
    return httpx2.get(
        replica.url + "/v1/switchboard/usage", headers={"authorization": f"Bearer {access_token}"}
    )


def overage(replica: Replica, access_token: str) -> httpx2.Response:
    return httpx2.post(
        replica.url + "/v1/switchboard/overage",
        headers={"authorization": f"Bearer {access_token}"},
        json={"enabled": True, "budgetUsd": 5},
    )


def test_an_endpoint_cannot_require_a_scope_that_does_not_exist() -> None:
    # Typed as the scopes' Literal, so pyright refuses a misspelt scope; an unchecked caller is refused too,
    # when its module is imported, rather than serving an endpoint that answers every token with 403.
    assert get_type_hints(account_endpoint)["scope"] == Scope and get_args(Scope) == SCOPES
    with pytest.raises(ValueError, match="no such scope 'biling'"):
        account_endpoint("biling")  # type: ignore[arg-type]
    assert callable(account_endpoint("billing"))


def test_the_metadata_names_the_scopes(proxied: Replica) -> None:
    document = httpx2.get(proxied.url + "/.well-known/oauth-authorization-server").json()
    assert document["scopes_supported"] == ["chat", "billing"]


def test_an_unknown_scope_is_invalid_scope(proxied: Replica) -> None:
    client = OAuthClient(proxied.url)
    try:
        for scope in ("admin", "chat admin", "CHAT"):
            answer = client.post("/oauth/device_authorization", client_id=client.client_id, scope=scope)
            assert answer.status_code == 400 and answer.json()["error"] == "invalid_scope", (
                scope,
                answer.text,
            )
        assert (
            client.post("/oauth/device_authorization", client_id=client.client_id, scope="chat").status_code
            == 200
        )
    finally:
        client.close()


async def test_no_scope_grants_both_and_the_token_carries_them(
    proxied: Replica, people: SignInAccounts
) -> None:
    client, tokens, account_id = await sign_in(proxied, people, None)
    try:
        assert tokens["scope"] == "chat billing" and claims(tokens["access_token"])["scope"] == "chat billing"
        families = await people.execute(
            "SELECT scope FROM refresh_families WHERE account_id = %s", (account_id,)
        )
        assert families == [{"scope": "chat billing"}]
        assert usage(proxied, tokens["access_token"]).status_code == 200
        assert overage(proxied, tokens["access_token"]).status_code == 200
    finally:
        client.close()


async def test_a_chat_only_sign_in_cannot_change_overage_and_no_refresh_widens_it(
    proxied: Replica, people: SignInAccounts
) -> None:
    client, tokens, account_id = await sign_in(proxied, people, "chat")
    try:
        assert tokens["scope"] == "chat" and claims(tokens["access_token"])["scope"] == "chat"
        assert usage(proxied, tokens["access_token"]).status_code == 200
        refused = overage(proxied, tokens["access_token"])
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["type"] == "permission_error"
        assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
        wider = client.refresh(tokens["refresh_token"], scope="chat billing")
        assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
        # Refused before the token was spent: it still refreshes, keeping the family's grant.
        kept = client.refresh(tokens["refresh_token"])
        assert kept.status_code == 200, kept.text
        assert kept.json()["scope"] == "chat" and claims(kept.json()["access_token"])["scope"] == "chat"
        assert overage(proxied, kept.json()["access_token"]).status_code == 403
        families = await people.execute(
            "SELECT scope FROM refresh_families WHERE account_id = %s", (account_id,)
        )
        assert families == [{"scope": "chat"}]
    finally:
        client.close()


async def test_a_refresh_may_narrow_one_access_token_but_the_family_keeps_its_grant(
    proxied: Replica, people: SignInAccounts
) -> None:
    client, tokens, _ = await sign_in(proxied, people, "chat billing")
    try:
        narrowed = client.refresh(tokens["refresh_token"], scope="chat")
        assert narrowed.status_code == 200 and narrowed.json()["scope"] == "chat"
        assert overage(proxied, narrowed.json()["access_token"]).status_code == 403
        again = client.refresh(narrowed.json()["refresh_token"])
        assert again.status_code == 200 and again.json()["scope"] == "chat billing"
        assert overage(proxied, again.json()["access_token"]).status_code == 200
    finally:
        client.close()

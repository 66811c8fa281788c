"""The device authorization grant end to end: metadata, the real /device form, every polling answer."""

from __future__ import annotations

import asyncio
import time

import httpx2
import jwt

from gateway.gateway_support import Replica
from gateway.signin.signin_support import VSCODE, Browser, OAuthClient, SignInAccounts
from switchboard.gateway.signin.codes import digest

BASE = "http://gateway.test"


def test_metadata_names_every_endpoint_under_the_public_base_url(proxied: Replica) -> None:
    response = httpx2.get(proxied.url + "/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    document = response.json()
    assert document == {
        "issuer": BASE,
        "device_authorization_endpoint": BASE + "/oauth/device_authorization",
        "token_endpoint": BASE + "/oauth/token",
        "revocation_endpoint": BASE + "/oauth/revoke",
        "jwks_uri": BASE + "/.well-known/jwks.json",
        "response_types_supported": [],
        "grant_types_supported": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["chat", "billing"],
        "switchboard_account_uri": BASE + "/account",
        "switchboard_upgrade_uri": BASE + "/account/upgrade",
    }


async def test_the_whole_device_flow_through_the_real_form(
    proxied: Replica, people: SignInAccounts, browser: Browser
) -> None:
    person = await people.create("pro_plus")
    client = OAuthClient(proxied.url)
    started = client.start()
    assert started["verification_uri"] == BASE + "/device"
    assert started["verification_uri_complete"] == f"{BASE}/device?user_code={started['user_code']}"
    assert started["expires_in"] == 600 and started["interval"] == 1
    code = started["user_code"]
    assert len(code) == 9 and code[4] == "-" and set(code.replace("-", "")) <= set("BCDFGHJKLMNPQRSTVWXZ")

    assert client.poll(started["device_code"]).json()["error"] == "authorization_pending"
    page = browser.open(code)
    assert page.status_code == 200
    assert f'value="{code}"' in page.text  # prefilled from ?user_code=
    decided = browser.submit(code, person.email)
    assert decided.status_code == 200, decided.text
    assert "Device approved" in decided.text and person.email in decided.text

    answer = client.poll(started["device_code"])
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    tokens = answer.json()
    assert tokens["token_type"] == "Bearer" and 0 < tokens["expires_in"] <= 900
    assert tokens["refresh_token"].startswith("sbr_")
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["sub"] == person.id and claims["plan"] == "pro_plus" and claims["iss"] == BASE
    usage = httpx2.get(
        proxied.url + "/v1/switchboard/usage", headers={"authorization": f"Bearer {tokens['access_token']}"}
    )
    assert usage.status_code == 200 and usage.json()["account"] == person.id

    # Single use: the same device code never signs in twice.
    again = client.poll(started["device_code"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # The stored row holds digests only.
    rows = await people.execute("SELECT * FROM device_authorizations WHERE account_id = %s", (person.id,))
    assert len(rows) == 1 and rows[0]["status"] == "used"
    stored = " ".join(str(value) for value in rows[0].values())
    assert started["device_code"] not in stored and code.replace("-", "") not in stored


async def test_polling_faster_than_the_interval_gets_slow_down_and_five_more_seconds(
    proxied: Replica, people: SignInAccounts
) -> None:
    client = OAuthClient(proxied.url)
    started = client.start()
    device_code = started["device_code"]
    assert client.poll(device_code).json()["error"] == "authorization_pending"
    too_soon = client.poll(device_code)
    assert too_soon.status_code == 400 and too_soon.json()["error"] == "slow_down"
    rows = await people.execute(
        "SELECT interval_seconds FROM device_authorizations WHERE device_code_hash = %s",
        (digest(device_code),),
    )
    assert rows == [{"interval_seconds": 6}]
    # The old interval (1 s) is no longer enough: 1.3 s later is still too soon for the new one (6 s).
    await asyncio.sleep(1.3)
    assert client.poll(device_code).json()["error"] == "slow_down"


async def test_polling_at_the_interval_stays_pending(proxied: Replica) -> None:
    client = OAuthClient(proxied.url)
    device_code = client.start()["device_code"]
    for _ in range(3):
        answer = client.poll(device_code)
        assert answer.status_code == 400 and answer.json()["error"] == "authorization_pending"
        await asyncio.sleep(1.1)


async def test_a_denied_code_answers_access_denied(
    proxied: Replica, people: SignInAccounts, browser: Browser
) -> None:
    person = await people.create()
    client = OAuthClient(proxied.url)
    started = client.start()
    decided = browser.submit(started["user_code"], person.email, action="deny")
    assert decided.status_code == 200 and "Sign-in denied" in decided.text
    answer = client.poll(started["device_code"])
    assert answer.status_code == 400 and answer.json()["error"] == "access_denied"


async def test_an_expired_code_answers_expired_token_and_the_page_refuses_it(
    proxied: Replica, people: SignInAccounts, browser: Browser
) -> None:
    person = await people.create()
    client = OAuthClient(proxied.url)
    started = client.start()
    client.poll(started["device_code"])
    # Ten minutes pass (the database's clock decides expiry).
    await people.execute(
        "UPDATE device_authorizations SET expires_at = now() - interval '1 second'"
        " WHERE device_code_hash = %s",
        (digest(started["device_code"]),),
    )
    time.sleep(1.1)
    answer = client.poll(started["device_code"])
    assert answer.status_code == 400 and answer.json()["error"] == "expired_token"
    refused = browser.submit(started["user_code"], person.email)
    assert refused.status_code == 400 and "unknown, expired or already used" in refused.text


async def test_an_approved_code_of_an_account_revoked_since_is_denied(
    proxied: Replica, people: SignInAccounts, browser: Browser
) -> None:
    person = await people.create()
    client = OAuthClient(proxied.url)
    started = client.start()
    assert browser.submit(started["user_code"], person.email).status_code == 200
    await people.execute("UPDATE accounts SET revoked_at = now() WHERE id = %s", (person.id,))
    answer = client.poll(started["device_code"])
    assert answer.status_code == 400 and answer.json()["error"] == "access_denied"


def test_malformed_requests_get_rfc_6749_errors(proxied: Replica) -> None:
    client = OAuthClient(proxied.url)
    unknown = client.post("/oauth/device_authorization", client_id="evil-client")
    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_client"
    started = client.start()
    other_client = client.poll(started["device_code"], client_id="switchboard-nvim")
    assert other_client.status_code == 400 and other_client.json()["error"] == "invalid_grant"
    guessed = client.poll("not-a-device-code")
    assert guessed.status_code == 400 and guessed.json()["error"] == "invalid_grant"
    grant = client.post("/oauth/token", grant_type="password", client_id=VSCODE)
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    missing = client.post("/oauth/token", grant_type="refresh_token", client_id=VSCODE)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    as_json = client.http.post("/oauth/token", json={"grant_type": "refresh_token"})
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    twice = client.http.post(
        "/oauth/token",
        content=b"grant_type=a&grant_type=b",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert twice.status_code == 400 and "more than once" in twice.json()["error_description"]

"""/account with a browser session: sign in with the /device form's password check and CSRF, an HttpOnly
SameSite=Lax cookie holding an opaque id stored only hashed, the plan, usage and device sign-ins of the
signed-in account, signing out one device (its refresh family) and signing the browser out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest
from psycopg_pool import PoolTimeout

from gateway.gateway_support import Replica, run_cli
from gateway.signin.signin_support import (
    PASSWORD,
    Browser,
    OAuthClient,
    Person,
    SignInAccounts,
    csrf_token,
    new_address,
)
from switchboard.gateway.app import LEDGER_ERRORS
from switchboard.gateway.config import RateLimits
from switchboard.gateway.db import LedgerUnavailable
from switchboard.gateway.signin.codes import digest

DEFAULTS = RateLimits()  # the proxied replica runs with the default limits

COOKIE = "switchboard_session"
SECURE_COOKIE = "__Host-switchboard_session"
SECURE_CSRF = "__Host-switchboard_csrf"


@pytest.fixture(scope="module")
def https_public(signin_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    """A replica whose public base URL is https (TLS ends at the proxy in front; the test speaks plain HTTP
    to it as that proxy would)."""
    env = {**signin_env, "SWITCHBOARD_GATEWAY_PUBLIC_BASE_URL": "https://gateway.test"}
    replica = Replica.start(env, Path(tmp_path_factory.mktemp("signin")) / "https.log")
    try:
        yield replica
    finally:
        replica.stop()


def set_cookie(response: httpx2.Response, name: str) -> tuple[str, dict[str, str]]:
    """The value and the attributes (lower-case names; flags map to "") of the response's cookie `name`."""
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = (part.strip() for part in header.split(";"))
        cookie_name, _, value = first.partition("=")
        if cookie_name == name:
            pairs = (attribute.partition("=") for attribute in attributes if attribute)
            return value, {key.lower(): attr_value for key, _, attr_value in pairs}
    raise AssertionError(f"no {name} cookie set: {response.headers.get_list('set-cookie')}")


class AccountBrowser:
    """A person at /account: a cookie jar, the real forms and their CSRF token."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx2.Client(base_url=base_url, timeout=10, headers={"x-forwarded-for": new_address()})

    def page(self) -> httpx2.Response:
        return self.http.get("/account")

    def post(self, **form: str) -> httpx2.Response:
        token = csrf_token(self.page().text)
        return self.http.post("/account", data={"csrf_token": token, **form})

    def sign_in(self, email: str, password: str = PASSWORD) -> httpx2.Response:
        return self.post(action="sign_in", email=email, password=password)

    def close(self) -> None:
        self.http.close()


async def device_sign_in(replica: Replica, person: Person) -> dict[str, Any]:
    client = OAuthClient(replica.url)
    try:
        started = client.start()
        with Browser(replica.url) as browser:
            assert browser.submit(started["user_code"], person.email).status_code == 200
        answer = client.poll(started["device_code"])
        assert answer.status_code == 200, answer.text
        return answer.json()
    finally:
        client.close()


def family_ids(html: str) -> list[str]:
    return re.findall(r'name="family" value="([^"]+)"', html)


async def test_signing_in_shows_the_accounts_plan_usage_and_devices_under_a_strict_cookie(
    proxied: Replica, people: SignInAccounts
) -> None:
    person = await people.create("pro")
    await device_sign_in(proxied, person)
    browser = AccountBrowser(proxied.url)
    try:
        anonymous = browser.page()
        assert anonymous.status_code == 200 and 'value="sign_in"' in anonymous.text
        assert person.email not in anonymous.text
        signed_in = browser.sign_in(person.email)
        assert signed_in.status_code == 303 and signed_in.headers["location"].endswith("/account")
        cookie_header = signed_in.headers["set-cookie"]
        attributes = cookie_header.lower()
        assert cookie_header.startswith(COOKIE + "=")
        assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
        assert "secure" not in attributes  # the public base URL is http here; over https the cookie is Secure
        session_id = browser.http.cookies[COOKIE]
        assert len(session_id) >= 43
        stored = await people.execute(
            "SELECT id_hash, expires_at > now() + interval '1 hour' AS lasts FROM browser_sessions"
            " WHERE account_id = %s",
            (person.id,),
        )
        # Only the digest is stored (beside the short session signing in on /device started).
        assert {"id_hash": digest(session_id), "lasts": True} in stored

        page = browser.page()
        assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
        html = page.text
        assert f"Signed in as <strong>{person.email}</strong>" in html and "<script" not in html
        assert '<th scope="row">Plan</th><td>Pro</td>' in html
        assert '<th scope="row">Credits left</th><td>1,000.00</td>' in html
        assert '<th scope="row">Switchboard for VS Code</th>' in html
        assert len(family_ids(html)) == 1 and session_id not in html
    finally:
        browser.close()
    assert session_id not in proxied.log() and PASSWORD not in proxied.log()


async def test_a_wrong_password_or_a_forged_form_signs_nobody_in(
    proxied: Replica, people: SignInAccounts
) -> None:
    person = await people.create("pro")
    browser = AccountBrowser(proxied.url)
    try:
        wrong = browser.sign_in(person.email, "not the password")
        assert wrong.status_code == 401 and "wrong" in wrong.text and COOKIE not in browser.http.cookies
        token = csrf_token(browser.page().text)
        form = {"csrf_token": token, "action": "sign_in", "email": person.email, "password": PASSWORD}
        forged = httpx2.post(proxied.url + "/account", data=form, headers={"x-forwarded-for": new_address()})
        assert forged.status_code == 403 and "set-cookie" not in forged.headers
        mismatched = browser.http.post("/account", data={**form, "csrf_token": "x" * 43})
        assert mismatched.status_code == 403 and COOKIE not in browser.http.cookies
        # Not ASCII: refused the same way (it was a 500, hmac.compare_digest raising on text).
        for page in ("/account", "/device"):
            odd = browser.http.post(page, data={**form, "csrf_token": "é" * 43})
            assert odd.status_code == 403 and COOKIE not in browser.http.cookies, (page, odd.text)
        # The control: the same form with its own token signs in.
        assert browser.http.post("/account", data=form).status_code == 303
    finally:
        browser.close()
    sessions = await people.execute(
        "SELECT count(*) AS n FROM browser_sessions WHERE account_id = %s", (person.id,)
    )
    assert sessions == [{"n": 1}]


async def test_a_device_is_signed_out_from_the_page_and_only_the_accounts_own(
    proxied: Replica, people: SignInAccounts
) -> None:
    person, stranger = await people.create("pro"), await people.create("pro")
    mine = await device_sign_in(proxied, person)
    theirs = await device_sign_in(proxied, stranger)
    their_family = (
        await people.execute("SELECT id FROM refresh_families WHERE account_id = %s", (stranger.id,))
    )[0]["id"]
    browser = AccountBrowser(proxied.url)
    client = OAuthClient(proxied.url)
    try:
        browser.sign_in(person.email)
        [family] = family_ids(browser.page().text)
        # Another account's family id, posted by this account's browser: nothing happens to it.
        assert browser.post(action="sign_out_device", family=their_family).status_code == 303
        assert client.refresh(theirs["refresh_token"]).status_code == 200
        assert browser.post(action="sign_out_device", family=family).status_code == 303
        refused = client.refresh(mine["refresh_token"])
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        assert family_ids(browser.page().text) == []
    finally:
        browser.close()
        client.close()
    anonymous = httpx2.post(
        proxied.url + "/account", data={"action": "sign_out_device", "family": their_family}
    )
    assert anonymous.status_code == 403


async def test_signing_the_browser_out_ends_the_session(proxied: Replica, people: SignInAccounts) -> None:
    person = await people.create("pro")
    browser = AccountBrowser(proxied.url)
    try:
        browser.sign_in(person.email)
        session_id = browser.http.cookies[COOKIE]
        assert person.email in browser.page().text
        signed_out = browser.post(action="sign_out")
        assert signed_out.status_code == 303 and COOKIE not in browser.http.cookies
        assert person.email not in browser.page().text
        # The old cookie, replayed, is dead: the session ended here, not just in this browser.
        replayed = httpx2.get(proxied.url + "/account", cookies={COOKIE: session_id})
        assert replayed.status_code == 200 and person.email not in replayed.text
    finally:
        browser.close()
    ended = await people.execute(
        "SELECT ended_at IS NOT NULL AS ended FROM browser_sessions WHERE account_id = %s", (person.id,)
    )
    assert ended == [{"ended": True}]


async def test_a_device_confirmation_decides_nothing_once_its_browser_has_signed_out(
    proxied: Replica, people: SignInAccounts
) -> None:
    """A /device confirmation ticket was good for its 5 minutes whatever happened meanwhile: signed out of the
    browser on /account (which /device links to for signing out), a ticket issued before still approved the
    code. Signing in on /device now signs the browser in (the /account session), and a ticket holds only while
    that session does."""
    person = await people.create()
    client = OAuthClient(proxied.url)
    started = client.start()
    with Browser(proxied.url) as browser:
        account = browser.http.get("/account")
        form = {"csrf_token": csrf_token(account.text), "email": person.email, "password": PASSWORD}
        assert browser.http.post("/account", data={**form, "action": "sign_in"}).status_code == 303
        account_session = browser.http.cookies[COOKIE]
        asked = browser.sign_in(started["user_code"], person.email)
        assert 'name="confirmation"' in asked.text
        assert browser.http.cookies[COOKIE] == account_session  # the browser's own session, not another
        signed_out = browser.http.post(
            "/account", data={"csrf_token": form["csrf_token"], "action": "sign_out"}
        )
        assert signed_out.status_code == 303 and COOKIE not in browser.http.cookies
        refused = browser.confirm(asked)
        assert refused.status_code == 400 and "confirmation expired" in refused.text
        # The old cookie put back: the session ended where it is stored, not only in this browser.
        browser.http.cookies.set(COOKIE, account_session)
        assert browser.confirm(asked, "deny").status_code == 400
    assert client.poll(started["device_code"]).json()["error"] == "authorization_pending"

    # Signed in on /device alone: the browser is signed in for the confirmation's 5 minutes, which /account
    # shows and can sign out.
    with Browser(proxied.url) as browser:
        asked = browser.sign_in(started["user_code"], person.email)
        device_session, attributes = set_cookie(asked, COOKIE)
        assert attributes["max-age"] == "300" and attributes["samesite"].lower() == "lax"
        assert "httponly" in attributes
        account = browser.http.get("/account")
        assert f"Signed in as <strong>{person.email}</strong>" in account.text
        signed_out = browser.http.post(
            "/account", data={"csrf_token": csrf_token(account.text), "action": "sign_out"}
        )
        assert signed_out.status_code == 303
        browser.http.cookies.set(COOKIE, device_session)
        refused = browser.confirm(asked)
        assert refused.status_code == 400 and "confirmation expired" in refused.text
        # Signed in again, the new confirmation works (and the old one still does not).
        again = browser.sign_in(started["user_code"], person.email)
        assert browser.confirm(asked).status_code == 400
        assert browser.confirm(again).status_code == 200
    assert client.poll(started["device_code"]).status_code == 200


async def test_a_session_device_started_for_a_confirmation_ends_with_the_decision(
    proxied: Replica, people: SignInAccounts
) -> None:
    """Signing in on /device starts a session for the confirmation; once Approve or Deny decided, the browser
    stayed signed in to /account for the rest of its 5 minutes, for the next person at a shared computer. It
    ends with the decision now, and its cookie is deleted; a session the browser already had from /account
    (reused for the confirmation) stays."""
    person = await people.create()
    for action in ("approve", "deny"):
        client = OAuthClient(proxied.url)
        started = client.start()
        with Browser(proxied.url) as browser:
            asked = browser.sign_in(started["user_code"], person.email)
            device_session, _ = set_cookie(asked, COOKIE)
            decided = browser.confirm(asked, action)
            assert decided.status_code == 200, decided.text
            _, attributes = set_cookie(decided, COOKIE)
            assert attributes["max-age"] == "0" and COOKIE not in browser.http.cookies
            assert 'value="sign_in"' in browser.http.get("/account").text
            browser.http.cookies.set(COOKIE, device_session)  # the old cookie put back: ended where stored
            assert 'value="sign_in"' in browser.http.get("/account").text
        ended = await people.execute(
            "SELECT ended_at IS NOT NULL AS ended FROM browser_sessions WHERE id_hash = %s",
            (digest(device_session),),
        )
        assert ended == [{"ended": True}]
        client.close()

    client = OAuthClient(proxied.url)
    started = client.start()
    with Browser(proxied.url) as browser:
        account = browser.http.get("/account")
        form = {"csrf_token": csrf_token(account.text), "email": person.email, "password": PASSWORD}
        assert browser.http.post("/account", data={**form, "action": "sign_in"}).status_code == 303
        decided = browser.confirm(browser.sign_in(started["user_code"], person.email))
        assert decided.status_code == 200
        assert f"Signed in as <strong>{person.email}</strong>" in browser.http.get("/account").text
    assert client.poll(started["device_code"]).status_code == 200
    client.close()


async def test_a_reused_session_lasts_as_long_as_its_new_confirmation(
    proxied: Replica, people: SignInAccounts
) -> None:
    """A second /device sign-in in a browser whose session started 200 s before reused it as it was: the
    ticket could expire with it seconds after the password was entered. It lasts the confirmation's 5
    minutes now, in the database and in its cookie; a longer /account session is never shortened."""
    person = await people.create()
    client = OAuthClient(proxied.url)
    first, second = client.start(), client.start()
    with Browser(proxied.url) as browser:
        asked = browser.sign_in(first["user_code"], person.email)
        session_id, _ = set_cookie(asked, COOKIE)
        await people.execute(
            "UPDATE browser_sessions SET expires_at = now() + interval '100 seconds' WHERE id_hash = %s"
            " RETURNING 1",
            (digest(session_id),),
        )
        again = browser.sign_in(second["user_code"], person.email)
        assert 'name="confirmation"' in again.text
        _, attributes = set_cookie(again, COOKIE)
        assert 295 <= int(attributes["max-age"]) <= 300
        assert browser.http.cookies[COOKIE] == session_id  # the same session, extended
        lasts = await people.execute(
            "SELECT expires_at > now() + interval '295 seconds' AS extended FROM browser_sessions"
            " WHERE id_hash = %s",
            (digest(session_id),),
        )
        assert lasts == [{"extended": True}]
    client.close()

    with Browser(proxied.url) as browser:  # an /account session of 8 hours keeps its 8 hours
        account = browser.http.get("/account")
        form = {"csrf_token": csrf_token(account.text), "email": person.email, "password": PASSWORD}
        assert browser.http.post("/account", data={**form, "action": "sign_in"}).status_code == 303
        started = OAuthClient(proxied.url).start()
        asked = browser.sign_in(started["user_code"], person.email)
        _, attributes = set_cookie(asked, COOKIE)
        assert int(attributes["max-age"]) > 7 * 3600


async def test_a_device_confirmation_decides_nothing_after_the_operator_signs_the_account_out(
    proxied: Replica, people: SignInAccounts, gateway_env: dict[str, str]
) -> None:
    """`accounts sign-out` ends the browser's session, so a confirmation issued before cannot approve a code
    (which a client would then claim after the sign-out)."""
    person = await people.create()
    client = OAuthClient(proxied.url)
    started = client.start()
    with Browser(proxied.url) as browser:
        asked = browser.sign_in(started["user_code"], person.email)
        done = run_cli(["accounts", "sign-out", person.email], gateway_env)
        refused = browser.confirm(asked)
    assert refused.status_code == 400 and "confirmation expired" in refused.text
    assert client.poll(started["device_code"]).json()["error"] == "authorization_pending"
    assert "1 account page session(s)" in done.stdout  # the one signing in on /device started


async def test_account_sign_in_shares_the_device_pages_password_lock(
    proxied: Replica, people: SignInAccounts
) -> None:
    """Wrong passwords on /account and on /device count toward one lock per account: a guesser cannot get
    twice the tries by switching pages, and once locked, the right password is refused on both."""
    person = await people.create("pro")
    started = OAuthClient(proxied.url).start()
    limit = DEFAULTS.password_failures_per_account
    for attempt in range(limit):
        if attempt % 2:
            with Browser(proxied.url) as device_page:
                assert (
                    device_page.submit(started["user_code"], person.email, f"guess-{attempt}").status_code
                    == 401
                )
        else:
            browser = AccountBrowser(proxied.url)  # a new address every time
            try:
                assert browser.sign_in(person.email, f"guess-{attempt}").status_code == 401
            finally:
                browser.close()
    browser = AccountBrowser(proxied.url)
    try:
        locked = browser.sign_in(person.email)
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
        assert COOKIE not in browser.http.cookies
    finally:
        browser.close()


async def test_over_https_the_session_cookie_is_host_prefixed_secure_httponly_lax_and_host_only(
    https_public: Replica, people: SignInAccounts
) -> None:
    person = await people.create("pro")
    # Secure cookies: an HTTP client would keep them to itself over plain HTTP, so the test carries them.
    http = httpx2.Client(base_url=https_public.url, timeout=10, headers={"x-forwarded-for": new_address()})
    try:
        form_page = http.get("/account")
        csrf, csrf_attributes = set_cookie(form_page, SECURE_CSRF)
        assert "secure" in csrf_attributes and "domain" not in csrf_attributes
        http.cookies.clear()
        form = {"csrf_token": csrf_token(form_page.text), "action": "sign_in", "email": person.email}
        signed_in = http.post(
            "/account", data={**form, "password": PASSWORD}, headers={"cookie": f"{SECURE_CSRF}={csrf}"}
        )
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "https://gateway.test/account"
        session_id, attributes = set_cookie(signed_in, SECURE_COOKIE)
        assert {"secure", "httponly", "path", "samesite", "max-age"} <= set(attributes)
        assert attributes["path"] == "/" and attributes["samesite"].lower() == "lax"
        assert attributes["max-age"] == str(8 * 3600)
        assert "domain" not in attributes  # __Host- requires a host-only cookie (RFC 6265bis §4.1.3.2)
        assert not any(header.startswith(COOKIE + "=") for header in signed_in.headers.get_list("set-cookie"))
        http.cookies.clear()

        signed_in_page = http.get("/account", headers={"cookie": f"{SECURE_COOKIE}={session_id}"})
        assert f"Signed in as <strong>{person.email}</strong>" in signed_in_page.text
        # The same id under the unprefixed name (a cookie a sibling subdomain could plant) signs nobody in.
        planted = http.get("/account", headers={"cookie": f"{COOKIE}={session_id}"})
        assert person.email not in planted.text

        page = http.get("/account", headers={"cookie": f"{SECURE_COOKIE}={session_id}"})
        csrf, _ = set_cookie(page, SECURE_CSRF)
        cookies = f"{SECURE_CSRF}={csrf}; {SECURE_COOKIE}={session_id}"
        signed_out = http.post(
            "/account",
            data={"csrf_token": csrf_token(page.text), "action": "sign_out"},
            headers={"cookie": cookies},
        )
        assert signed_out.status_code == 303
        gone, gone_attributes = set_cookie(signed_out, SECURE_COOKIE)
        assert gone in {"", '""'} and gone_attributes["max-age"] == "0"
        assert "secure" in gone_attributes and gone_attributes["path"] == "/"  # else browsers ignore it
        http.cookies.clear()
        after = http.get("/account", headers={"cookie": f"{SECURE_COOKIE}={session_id}"})
        assert person.email not in after.text
    finally:
        http.close()


async def test_the_operators_sign_out_ends_the_accounts_page_sessions_too(
    proxied: Replica, people: SignInAccounts, gateway_env: dict[str, str]
) -> None:
    """`accounts sign-out` is for a lost laptop or a restored backup: every sign-in ends, the /account
    page's browser sessions included (a stolen cookie could otherwise sign the owner's devices out)."""
    person, bystander = await people.create(), await people.create()
    browser, other = AccountBrowser(proxied.url), AccountBrowser(proxied.url)
    try:
        assert browser.sign_in(person.email).status_code in (200, 303)
        assert other.sign_in(bystander.email).status_code in (200, 303)
        assert person.email in browser.page().text
        done = run_cli(["accounts", "sign-out", person.email], gateway_env)
        assert "1 account page session(s)" in done.stdout
        assert person.email not in browser.page().text
        assert bystander.email in other.page().text  # another account's session stays
        everyone = run_cli(["accounts", "sign-out", "--everyone"], gateway_env)
        assert "account page session(s)" in everyone.stdout
        assert bystander.email not in other.page().text
    finally:
        browser.close()
        other.close()


async def test_a_control_character_in_a_form_is_refused_as_what_it_names_not_blamed_on_postgresql(
    proxied: Replica, people: SignInAccounts
) -> None:
    """A NUL in the email reached PostgreSQL, whose text cannot hold it: psycopg's DataError was answered as
    an outage (503 "the ledger is unavailable", a WARNING "PostgreSQL unavailable"). Such an email is no
    account's now, refused like an unknown one; a family id with one is no family."""
    person = await people.create("pro")
    started = OAuthClient(proxied.url).start()
    for email in ("a\x00b@example.test", person.email + "\x00", "\x1b" + person.email):
        with Browser(proxied.url) as browser:
            device = browser.submit(started["user_code"], email)
        assert device.status_code == 401 and "email or the password is wrong" in device.text, device.text
        browser = AccountBrowser(proxied.url)
        try:
            account = browser.sign_in(email)
        finally:
            browser.close()
        assert account.status_code == 401 and "email or the password is wrong" in account.text, account.text
    mine = await device_sign_in(proxied, person)
    browser = AccountBrowser(proxied.url)
    try:
        browser.sign_in(person.email)
        [family] = family_ids(browser.page().text)
        assert browser.post(action="sign_out_device", family=family + "\x00").status_code == 303
        assert family_ids(browser.page().text) == [family]
    finally:
        browser.close()
    assert OAuthClient(proxied.url).refresh(mine["refresh_token"]).status_code == 200
    assert "PostgreSQL unavailable" not in proxied.log()


def test_only_errors_of_availability_are_answered_as_the_database_being_unavailable() -> None:
    available_again_soon = [
        psycopg.OperationalError("connection refused"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.CannotConnectNow("the database system is starting up"),
        psycopg.InterfaceError("the connection is closed"),
        psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction"),
        PoolTimeout("couldn't get a connection after 5.00 sec"),
        LedgerUnavailable("ConnectionRefusedError"),
    ]
    assert all(isinstance(error, LEDGER_ERRORS) for error in available_again_soon)
    bugs = [
        psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
        psycopg.errors.UniqueViolation("duplicate key"),
        psycopg.ProgrammingError("syntax error"),
    ]
    assert not any(isinstance(error, LEDGER_ERRORS) for error in bugs)

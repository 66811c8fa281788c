"""The browser pages: strict headers, no outside resources, CSRF, forgiving code entry, the account page."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import uuid

import httpx2
import pytest

from gateway.gateway_support import Replica, run_cli
from gateway.signin.signin_support import (
    PASSWORD,
    Browser,
    OAuthClient,
    SignInAccounts,
    csrf_token,
    field_value,
)
from switchboard.gateway.accounts import normalize_email


def test_the_device_page_is_self_contained_under_a_strict_policy(proxied: Replica) -> None:
    with Browser(proxied.url) as browser:
        page = browser.open("bcdf-ghjk")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "form-action 'self'" in policy and "script-src" not in policy
    assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert "<script" not in html and not re.search(r'(src|href)="(https?:)?//', html)
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy  # the one inline style is allowed by its hash
    assert 'value="BCDF-GHJK"' in html  # ?user_code= prefills the field, normalized
    for field in ("user_code", "email", "password"):
        assert f'<label for="{field}">' in html and f'id="{field}"' in html
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


async def test_a_post_without_the_matching_csrf_cookie_is_refused(
    proxied: Replica, people: SignInAccounts
) -> None:
    person = await people.create()
    client = OAuthClient(proxied.url)
    started = client.start()
    with Browser(proxied.url) as browser:
        token = csrf_token(browser.open().text)
    form = {
        "csrf_token": token,
        "user_code": started["user_code"],
        "email": person.email,
        "password": PASSWORD,
        "action": "approve",
    }
    # Another site can make a browser post the form, but not with the cookie the token belongs to.
    forged = httpx2.post(proxied.url + "/device", data=form, headers={"x-forwarded-for": "198.18.9.9"})
    assert forged.status_code == 403 and "another site" in forged.text
    with Browser(proxied.url) as browser:
        browser.open()
        mismatched = browser.http.post("/device", data={**form, "csrf_token": "x" * 43})
    assert mismatched.status_code == 403
    assert client.poll(started["device_code"]).json()["error"] == "authorization_pending"


async def test_a_code_typed_loosely_is_understood(
    proxied: Replica, people: SignInAccounts, browser: Browser
) -> None:
    person = await people.create()
    client = OAuthClient(proxied.url)
    started = client.start()
    page = browser.open()
    typed = " " + started["user_code"].lower().replace("-", " ") + " "
    form = {"csrf_token": csrf_token(page.text), "user_code": typed, "email": person.email.upper()}
    asked = browser.http.post("/device", data={**form, "password": PASSWORD, "action": "sign_in"})
    assert asked.status_code == 200 and f"the code <strong>{started['user_code']}</strong>" in asked.text
    answer = browser.confirm(asked)
    assert answer.status_code == 200 and "Device approved" in answer.text
    assert client.poll(started["device_code"]).status_code == 200
    not_a_code = browser.http.post("/device", data={**form, "user_code": "AEIOU-123", "password": PASSWORD})
    assert not_a_code.status_code == 400 and "eight letters" in not_a_code.text


def test_the_account_pages_say_what_the_plans_are_and_how_to_upgrade_and_sign_out(proxied: Replica) -> None:
    page = httpx2.get(proxied.url + "/account")
    assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
    html = page.text
    for name, credits in (("Free", "50"), ("Pro", "1,000"), ("Pro+", "2,000"), ("Power", "10,000")):
        assert f'<th scope="row">{name}</th><td>{credits}</td>' in html
    assert "All but Claude Opus 4.5" in html
    assert "switchboard gateway accounts set-plan" in html
    assert '<a href="mailto:support@example.test">support@example.test</a>' in html
    assert "Sign Out" in html
    upgrade = httpx2.get(proxied.url + "/account/upgrade")
    assert upgrade.status_code == 200 and "<h1>Upgrade your plan</h1>" in upgrade.text


async def test_after_signing_in_the_page_says_which_program_asks_for_what_before_anyone_decides(
    proxied: Replica, people: SignInAccounts
) -> None:
    """RFC 8628 §3.3, §5.4: signed in, a person (perhaps sent a link with a code filled in) sees which program
    the code would sign in, what it could do, and to approve only a code their own program shows; then
    Approve or Deny."""
    person = await people.create()
    full = OAuthClient(proxied.url, client_id="switchboard-terminal")
    full_started = full.start()
    chat_only = OAuthClient(proxied.url).start(scope="chat")
    with Browser(proxied.url) as browser:
        asked = browser.sign_in(full_started["user_code"], person.email)
        narrower = browser.sign_in(chat_only["user_code"], person.email).text
        assert asked.status_code == 200 and asked.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in asked.headers["content-security-policy"]
        assert asked.headers["x-frame-options"] == "DENY"
        html = asked.text
        assert "The Switchboard terminal client asks to sign in to your account" in html
        assert f"Signed in as <strong>{person.email}</strong>" in html
        assert "use your credits" in html and "change its spending budget" in html
        assert "If someone sent you this link or code, deny it" in html
        assert "Switchboard for VS Code asks" in narrower and "use your credits" in narrower
        assert "spending budget" not in narrower  # only what this code's scope grants
        assert 'name="password"' not in html and PASSWORD not in html  # step two sends a ticket, no password
        # Nothing is decided until a button is pressed.
        assert full.poll(full_started["device_code"]).json()["error"] == "authorization_pending"
        denied = browser.confirm(asked, "deny")
    assert denied.status_code == 200 and "Sign-in denied" in denied.text
    assert full.poll(full_started["device_code"]).json()["error"] == "access_denied"


def test_without_signing_in_the_page_says_nothing_about_a_code(proxied: Replica) -> None:
    """The page showed "… asks to sign in to your account" for a pending code to anyone: an oracle for
    guessing codes without an account, limited only per address. Opened with a pending code, an unknown one
    or none, it is now the same page."""
    pending = OAuthClient(proxied.url).start()["user_code"]
    with Browser(proxied.url) as browser:
        pages = [browser.open(code) for code in (pending, "BCDF-GHJK", None)]
    assert all(page.status_code == 200 for page in pages)
    texts = [re.sub(r'value="[^"]*"', 'value=""', page.text) for page in pages]
    assert texts[0] == texts[1] == texts[2]
    assert "asks to sign in" not in texts[0]


async def test_a_confirmation_works_only_in_its_own_browser_and_only_once(
    proxied: Replica, people: SignInAccounts
) -> None:
    person = await people.create()
    client = OAuthClient(proxied.url)
    started = client.start()
    with Browser(proxied.url) as browser, Browser(proxied.url) as another:
        asked = browser.sign_in(started["user_code"], person.email)
        confirmation = field_value(asked.text, "confirmation")
        # Another browser, with its own CSRF cookie and token, cannot use this ticket.
        token = csrf_token(another.open().text)
        form = {"csrf_token": token, "confirmation": confirmation, "action": "approve"}
        stolen = another.http.post("/device", data=form)
        assert stolen.status_code == 400 and "confirmation expired" in stolen.text
        tampered = confirmation.replace(person.id, "acct_0000000000000000")
        changed = browser.http.post(
            "/device",
            data={"csrf_token": csrf_token(asked.text), "confirmation": tampered, "action": "approve"},
        )
        assert changed.status_code == 400 and "confirmation expired" in changed.text
        assert client.poll(started["device_code"]).json()["error"] == "authorization_pending"
        assert browser.confirm(asked).status_code == 200
        # The decision ended the session /device started for it, so the ticket is spent with it.
        again = browser.confirm(asked, "deny")
        assert again.status_code == 400 and "confirmation expired" in again.text
    assert client.poll(started["device_code"]).status_code == 200


@pytest.mark.parametrize(
    ("typed", "email"),
    [
        ("Ada@Example.test", "Ada@Example.test"),  # the case is kept: PostgreSQL's lower() compares
        ("  Ada@Example.test\t\n", "Ada@Example.test"),
        ("\u3000ada@example.test", "ada@example.test"),  # an ideographic space, pasted
        ("ａｄａ@ｅｘａｍｐｌｅ.test", "ada@example.test"),  # full-width letters: NFKC
        ("ﬁona@example.test", "fiona@example.test"),
        ("ada @example.test", None),
        ("ada\u00a0@example.test", None),  # a no-break space inside
        ("a\x00b@example.test", None),
        ("ada\u200b@example.test", None),  # a zero-width space: invisible
        ("ada.example.test", None),
        ("@example.test", None),
        ("ada@", None),
        ("", None),
        ("a" * 310 + "@example.test", None),
    ],
)
def test_an_email_is_normalized_one_way_wherever_it_is_used(typed: str, email: str | None) -> None:
    assert normalize_email(typed) == email


async def test_an_email_typed_with_spaces_around_it_makes_an_account_that_can_sign_in(
    proxied: Replica, people: SignInAccounts, gateway_env: dict[str, str]
) -> None:
    """`accounts create --email " Spacey@Example.com"` stored the space: that account could never sign in
    (the page strips what is typed), and `spacey@example.com` could be created beside it."""
    spacey = f"Spacey-{uuid.uuid4().hex[:8]}@Example.test"
    create = ["accounts", "create", "--plan", "pro", "--password-stdin", "--email"]
    created = run_cli([*create, " " + spacey + " "], gateway_env, PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["email"] == spacey
    with pytest.raises(subprocess.CalledProcessError) as again:
        run_cli([*create, spacey.lower()], gateway_env, PASSWORD + "\n")
    assert again.value.returncode == 1 and "exists" in again.value.stderr
    with pytest.raises(subprocess.CalledProcessError) as inside:
        run_cli([*create, spacey.replace("@", " @")], gateway_env, PASSWORD + "\n")
    assert inside.value.returncode == 1 and "is not an email address" in inside.value.stderr
    rows = await people.execute("SELECT email FROM accounts WHERE lower(email) = lower(%s)", (spacey,))
    assert rows == [{"email": spacey}]
    for typed in (spacey.lower(), " " + spacey.upper(), "\u3000" + spacey):
        started = OAuthClient(proxied.url).start()
        with Browser(proxied.url) as browser:
            answer = browser.submit(started["user_code"], typed)
        assert answer.status_code == 200 and "Device approved" in answer.text, answer.text
    usage = run_cli(["accounts", "usage", f" {spacey.lower()} "], gateway_env)
    assert usage.returncode == 0 and json.loads(usage.stdout)["plan"] == "pro"

"""Rate limits (shared through PostgreSQL), X-Forwarded-For trust, and secrets kept out of the logs."""

from __future__ import annotations

import ipaddress
import random
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from gateway.gateway_support import Replica, access_lines
from gateway.signin.signin_support import (
    EXPOSED_DEVICE_AUTHORIZATIONS,
    PASSWORD,
    Browser,
    OAuthClient,
    SignInAccounts,
    new_address,
    settled_access_log,
    settled_log,
)
from switchboard.gateway.config import RateLimits
from switchboard.gateway.signin.codes import display_user_code, new_user_code
from switchboard.gateway.signin.ratelimit import address_key

DEFAULTS = RateLimits()  # the proxied replica runs with the default limits


def address_in(network: str) -> str:
    """A random address in an IPv6 network: the bits below its prefix are the client's to choose."""
    net = ipaddress.IPv6Network(network)
    return str(net.network_address + random.getrandbits(128 - net.prefixlen))


def wrong_code(right: str) -> str:
    while (guess := display_user_code(new_user_code())) == right:
        pass
    return guess


async def test_guessing_user_codes_is_stopped_per_account_whatever_the_address(
    proxied: Replica, people: SignInAccounts
) -> None:
    attacker = await people.create()
    victim = OAuthClient(proxied.url).start()
    limit = DEFAULTS.user_code_failures_per_account
    for _ in range(limit):
        with Browser(proxied.url) as browser:  # a new address every time
            guess = browser.submit(wrong_code(victim["user_code"]), attacker.email)
            assert guess.status_code == 400 and "unknown, expired or already used" in guess.text
    with Browser(proxied.url) as browser:
        # Even the right code is refused now: the account may not try again until the window ends.
        stopped = browser.submit(victim["user_code"], attacker.email)
    assert stopped.status_code == 429 and int(stopped.headers["retry-after"]) > 0
    assert "Too many attempts" in stopped.text
    rows = await people.execute(
        "SELECT status FROM device_authorizations WHERE account_id = %s", (attacker.id,)
    )
    assert rows == []


async def test_a_right_code_is_not_counted_among_the_wrong_ones(
    proxied: Replica, people: SignInAccounts
) -> None:
    """Each code is counted as wrong before it is looked up (so guesses sent at once cannot all pass the
    limit) and given back when it was pending: only wrong codes use up the account's tries."""
    person = await people.create()
    limit = DEFAULTS.user_code_failures_per_account
    for _ in range(limit - 1):
        with Browser(proxied.url) as browser:
            assert browser.submit(wrong_code("BCDF-GHJK"), person.email).status_code == 400
    with Browser(proxied.url) as browser:
        right = browser.sign_in(OAuthClient(proxied.url).start()["user_code"], person.email, PASSWORD)
    assert right.status_code == 200 and 'name="confirmation"' in right.text
    with Browser(proxied.url) as browser:
        last_try = browser.submit(wrong_code("BCDF-GHJK"), person.email)
        assert last_try.status_code == 400 and "unknown, expired or already used" in last_try.text
    with Browser(proxied.url) as browser:
        assert browser.submit(wrong_code("BCDF-GHJK"), person.email).status_code == 429


async def test_guessing_a_password_is_stopped_per_account_whatever_the_address(
    proxied: Replica, people: SignInAccounts
) -> None:
    person, bystander = await people.create(), await people.create()
    started = OAuthClient(proxied.url).start()
    for attempt in range(DEFAULTS.password_failures_per_account):
        with Browser(proxied.url) as browser:
            wrong = browser.submit(started["user_code"], person.email, password=f"guess-{attempt}")
            assert wrong.status_code == 401 and "email or the password is wrong" in wrong.text
    with Browser(proxied.url) as browser:
        locked = browser.submit(started["user_code"], person.email, password=PASSWORD)
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
        # Another account is not affected.
        assert browser.submit(started["user_code"], bystander.email).status_code == 200


async def test_the_device_form_is_limited_per_address(proxied: Replica, people: SignInAccounts) -> None:
    address = new_address()
    started = OAuthClient(proxied.url).start()
    person = await people.create()
    with Browser(proxied.url, address) as browser:
        for index in range(DEFAULTS.device_forms_per_address):
            answer = browser.submit(started["user_code"], f"nobody-{index}@example.test")
            assert answer.status_code == 401
        limited = browser.submit(started["user_code"], person.email)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    with Browser(proxied.url) as elsewhere:
        assert elsewhere.submit(started["user_code"], person.email).status_code == 200


def test_the_token_endpoint_is_limited_per_address(proxied: Replica) -> None:
    client = OAuthClient(proxied.url)
    for _ in range(DEFAULTS.token_requests_per_address):
        assert client.poll("guessed-device-code").json()["error"] == "invalid_grant"
    limited = client.poll("guessed-device-code")
    assert limited.status_code == 429
    assert limited.json()["error"] == "slow_down" and int(limited.headers["retry-after"]) > 0
    assert OAuthClient(proxied.url).poll("guessed-device-code").status_code == 400  # another address


def test_device_authorization_is_limited_per_address(proxied: Replica) -> None:
    client = OAuthClient(proxied.url)
    for _ in range(DEFAULTS.device_authorizations_per_address):
        client.start()
    limited = client.post("/oauth/device_authorization", client_id=client.client_id)
    assert limited.status_code == 429 and limited.json()["error"] == "slow_down"
    assert int(limited.headers["retry-after"]) > 0


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("unknown", "unknown"),
        ("not an address", "not an address"),
        ("", ""),
    ],
)
def test_the_address_key_is_an_ipv4_address_or_an_ipv6_slash_64(address: str, key: str) -> None:
    assert address_key(address) == key


def test_addresses_in_one_ipv6_slash_64_share_a_key_and_others_do_not() -> None:
    assert {address_key(address_in("2001:db8:7:8::/64")) for _ in range(20)} == {"2001:db8:7:8::/64"}
    assert address_key("2001:db8:7:9::1") != address_key("2001:db8:7:8::1")


def test_rotating_through_an_ipv6_slash_64_does_not_escape_the_address_limit(proxied: Replica) -> None:
    # A client holds a whole /64 (2001:db8::/32 is for documentation): a fresh address for every request.
    network = f"2001:db8:{random.getrandbits(16):x}:{random.getrandbits(16):x}::/64"
    for _ in range(DEFAULTS.device_authorizations_per_address):
        OAuthClient(proxied.url, address_in(network)).start()
    rotated = OAuthClient(proxied.url, address_in(network))
    limited = rotated.post("/oauth/device_authorization", client_id=rotated.client_id)
    assert limited.status_code == 429 and limited.json()["error"] == "slow_down"
    neighbour = ipaddress.IPv6Network(network).network_address + (1 << 64)  # the next /64
    OAuthClient(proxied.url, str(neighbour + random.getrandbits(64))).start()


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(exposed: Replica) -> None:
    # Every request claims another address, but the replica trusts no proxy: all count as 127.0.0.1.
    limit = EXPOSED_DEVICE_AUTHORIZATIONS  # configured through SWITCHBOARD_GATEWAY_RATE_LIMITS
    # Twice the limit plus one: a 429 must come even if a window boundary falls inside the loop, or other
    # tests of this run already spent part of 127.0.0.1's bucket in the shared database. With the header
    # believed, every request would have its own bucket and none would be refused.
    answers = [
        OAuthClient(exposed.url).post("/oauth/device_authorization", client_id="switchboard-nvim")
        for _ in range(2 * limit + 1)
    ]
    statuses = [a.status_code for a in answers]
    assert 429 in statuses and statuses.count(200) <= 2 * limit, statuses
    log = settled_log(exposed, '"path":"/oauth/device_authorization","status":429')
    lines = [line for line in access_lines(log) if line["path"] == "/oauth/device_authorization"]
    assert lines and all(line["client"] == "127.0.0.1" for line in lines)


def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(proxied: Replica) -> None:
    spoofed = httpx2.get(proxied.url + "/healthz", headers={"x-forwarded-for": "203.0.113.66, 198.51.100.23"})
    assert spoofed.status_code == 200
    honest = httpx2.get(proxied.url + "/readyz", headers={"x-forwarded-for": "198.51.100.24"})
    assert honest.status_code == 200
    log = settled_log(proxied, '"client":"198.51.100.24"')
    clients = {line["path"]: line["client"] for line in access_lines(log)}
    # The trusted proxy (127.0.0.1) added the address it saw; what the client wrote before it is not believed.
    assert clients["/healthz"] == "198.51.100.23"
    assert clients["/readyz"] == "198.51.100.24"


async def test_tokens_codes_and_passwords_never_reach_the_log(
    proxied: Replica, people: SignInAccounts
) -> None:
    person = await people.create()
    client = OAuthClient(proxied.url)
    started = client.start()
    client.poll(started["device_code"])
    with Browser(proxied.url) as browser:
        browser.submit(started["user_code"], person.email, password="a wrong password")
        browser.submit(started["user_code"], person.email)
    approved = client.poll(started["device_code"])
    assert approved.status_code == 200, approved.text
    tokens = approved.json()
    rotated = client.refresh(tokens["refresh_token"]).json()
    client.refresh(tokens["refresh_token"])
    client.post("/oauth/revoke", token=rotated["refresh_token"])
    log = settled_access_log(
        proxied, lambda line: line["path"] == "/oauth/revoke" and line.get("account") == person.id
    )
    secrets = [
        PASSWORD,
        "a wrong password",
        started["device_code"],
        started["user_code"],
        started["user_code"].replace("-", ""),
        tokens["access_token"],
        tokens["refresh_token"],
        rotated["access_token"],
        rotated["refresh_token"],
    ]
    assert [secret for secret in secrets if secret in log] == []
    mine = [line for line in access_lines(log) if line.get("account") == person.id]
    assert {(line["path"], line.get("grant"), line.get("device_result")) for line in mine} >= {
        ("/device", None, "approved"),
        ("/oauth/token", "urn:ietf:params:oauth:grant-type:device_code", None),
        ("/oauth/token", "refresh_token", None),
        ("/oauth/revoke", None, None),
    }, mine


async def test_a_spelling_postgresql_folds_onto_the_account_shares_its_password_lock(
    proxied: Replica, people: SignInAccounts
) -> None:
    """PostgreSQL's lower() finds the account for `İ` typed for `i` (Python's lower() does not fold them the
    same way): failures typed that way lock the account itself, not a lock of their own."""
    person = await people.create(email=f"iris-{random.getrandbits(40):x}@example.test")
    folded = person.email.replace("i", "İ", 1)
    started = OAuthClient(proxied.url).start()
    for attempt in range(DEFAULTS.password_failures_per_account):
        with Browser(proxied.url) as browser:
            wrong = browser.submit(started["user_code"], folded, password=f"guess-{attempt}")
            assert wrong.status_code == 401, wrong.text
    with Browser(proxied.url) as browser:
        locked = browser.submit(started["user_code"], person.email, password=PASSWORD)
    assert locked.status_code == 429, "the other spelling's failures did not lock the account"


async def test_guesses_sent_at_once_are_all_counted_before_the_lock_is_checked(
    proxied: Replica, people: SignInAccounts
) -> None:
    """Checked, then counted after the password hash, parallel guesses all passed the lock before any was
    counted. Each is counted first now: no more than the limit are ever checked in a window."""
    person = await people.create()
    started = OAuthClient(proxied.url).start()
    guesses = DEFAULTS.password_failures_per_account + 8

    def guess(attempt: int) -> int:
        with Browser(proxied.url) as browser:
            return browser.submit(started["user_code"], person.email, password=f"guess-{attempt}").status_code

    with ThreadPoolExecutor(max_workers=guesses) as pool:
        statuses = list(pool.map(guess, range(guesses)))
    assert statuses.count(401) == DEFAULTS.password_failures_per_account, statuses
    assert statuses.count(429) == guesses - DEFAULTS.password_failures_per_account, statuses


async def test_a_right_password_is_not_counted_against_the_lock(
    proxied: Replica, people: SignInAccounts
) -> None:
    person = await people.create()
    limit = DEFAULTS.password_failures_per_account
    for attempt in range(limit - 1):
        with Browser(proxied.url) as browser:
            started = OAuthClient(proxied.url).start()
            assert browser.submit(started["user_code"], person.email, f"guess-{attempt}").status_code == 401
    for _ in range(3):  # each counted ahead, then given back
        with Browser(proxied.url) as browser:
            started = OAuthClient(proxied.url).start()
            assert browser.submit(started["user_code"], person.email).status_code == 200
    with Browser(proxied.url) as browser:
        started = OAuthClient(proxied.url).start()
        assert browser.submit(started["user_code"], person.email, "the last guess").status_code == 401
        assert browser.submit(started["user_code"], person.email).status_code == 429

"""The opaque secrets of sign-in (refresh tokens, browser session ids, device codes): one helper makes them
and finds them again by digest."""

from __future__ import annotations

import base64
import hashlib

from switchboard.gateway.signin.codes import MAX_OPAQUE_LENGTH, REFRESH_TOKEN_PREFIX, Opaque, presented_digest
from switchboard.gateway.signin.confirmations import CONFIRMATION_SECONDS, Confirmations, page_key


def test_a_new_opaque_secret_carries_256_random_bits_and_only_its_digest_is_meant_for_storage() -> None:
    secrets = [Opaque.new() for _ in range(50)]
    assert len({secret.value for secret in secrets}) == 50
    for secret in secrets:
        assert len(base64.urlsafe_b64decode(secret.value + "=")) == 32
        assert secret.digest == hashlib.sha256(secret.value.encode()).hexdigest()
        assert secret.value not in secret.digest


def test_a_prefixed_secret_keeps_its_prefix_for_secret_scanners_and_fits_the_presented_limit() -> None:
    token = Opaque.new(REFRESH_TOKEN_PREFIX)
    assert token.value.startswith("sbr_") and len(token.value) <= MAX_OPAQUE_LENGTH
    assert presented_digest(token.value) == token.digest


def test_what_cannot_be_an_opaque_secret_is_never_hashed_or_looked_up() -> None:
    assert presented_digest("") is None
    assert presented_digest("x" * (MAX_OPAQUE_LENGTH + 1)) is None
    assert presented_digest("x" * MAX_OPAQUE_LENGTH) == hashlib.sha256(b"x" * MAX_OPAQUE_LENGTH).hexdigest()


def test_a_confirmation_ticket_is_bound_to_its_browser_and_session_and_lives_five_minutes() -> None:
    now = [1_000_000.0]
    current, upcoming = page_key(b"a" * 32), page_key(b"b" * 32)
    issuer = Confirmations([current, upcoming], clock=lambda: now[0])
    ticket = issuer.issue("csrf-one", "session-one", "acct_0123456789abcdef", "BCDFGHJK")
    assert issuer.check("csrf-one", "session-one", ticket) == ("acct_0123456789abcdef", "BCDFGHJK", False)
    assert issuer.check("csrf-two", "session-one", ticket) is None  # another browser's CSRF token
    assert issuer.check("csrf-one", "session-two", ticket) is None  # another session (signed in again)
    assert issuer.check("csrf-one", "", ticket) is None  # no session (signed out)
    assert issuer.check("csrf-one", "session-one", ticket.replace("BCDFGHJK", "BCDFGHJL")) is None
    assert issuer.check("csrf-one", "session-one", "") is None
    assert issuer.check("csrf-one", "session-one", "a.b.c.d.e") is None
    # A replica that has moved the next key to the front still accepts it; one without the key does not.
    rotated = Confirmations([upcoming, current], clock=lambda: now[0])
    assert rotated.check("csrf-one", "session-one", ticket) is not None
    assert Confirmations([upcoming], clock=lambda: now[0]).check("csrf-one", "session-one", ticket) is None
    now[0] += CONFIRMATION_SECONDS
    assert issuer.check("csrf-one", "session-one", ticket) is not None
    now[0] += 1
    assert issuer.check("csrf-one", "session-one", ticket) is None

"""The opaque secrets of sign-in (refresh tokens, browser session ids, device codes): one helper makes them
and finds them again by digest."""

from __future__ import annotations

import base64
import hashlib

from switchboard.gateway.signin.codes import MAX_OPAQUE_LENGTH, REFRESH_TOKEN_PREFIX, Opaque, presented_digest


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

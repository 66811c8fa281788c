"""The secrets of sign-in: user codes people type, device codes and refresh tokens machines keep.

User codes are 8 letters from 20 consonants (no vowels, so no words; no 0/O or 1/I to confuse), shown as
ABCD-EFGH: 20^8 ≈ 2.6·10^10 codes. Device codes, refresh tokens and browser session ids are `Opaque`
secrets: 256 random bits. The database stores only SHA-256 digests of all of them; a fast hash is enough for
values this random (a password needs argon2 because people choose it; nobody chooses these).

An opaque secret is found again by the digest of what is presented, in an index: no comparison of the secret
itself happens anywhere, so there is nothing to time (the digest an index walk compares is not the secret,
and finding a secret with a given digest prefix is as hard as guessing it).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import NewType

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
REFRESH_TOKEN_PREFIX = "sbr_"  # lets secret scanners recognise a leaked one
OPAQUE_BYTES = 32
# Longer than any opaque secret this module makes (a prefix and 43 characters); anything longer is not one,
# and is refused before it is hashed or looked up.
MAX_OPAQUE_LENGTH = 64

Digest = NewType("Digest", str)  # the hex SHA-256 of a secret: what the database holds and is searched by


def new_user_code() -> str:
    """A fresh user code in its compact form (8 letters, no dash)."""
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def display_user_code(compact: str) -> str:
    half = USER_CODE_LENGTH // 2
    return f"{compact[:half]}-{compact[half:]}"


def normalize_user_code(typed: str) -> str | None:
    """The compact code a person meant ("abcd efgh", "ABCD-EFGH"), or None if it cannot be one."""
    compact = "".join(char for char in typed.upper() if char not in " -\t")
    if len(compact) != USER_CODE_LENGTH or any(char not in USER_CODE_ALPHABET for char in compact):
        return None
    return compact


@dataclass(frozen=True)
class Opaque:
    """A fresh opaque secret: `value` goes to its holder once and is never stored; `digest` is stored."""

    value: str
    digest: Digest

    @classmethod
    def new(cls, prefix: str = "") -> Opaque:
        value = prefix + secrets.token_urlsafe(OPAQUE_BYTES)
        return cls(value, digest(value))


def presented_digest(presented: str) -> Digest | None:
    """The digest to look a presented opaque secret up by, or None when it cannot be one (empty, too long)."""
    if not presented or len(presented) > MAX_OPAQUE_LENGTH:
        return None
    return digest(presented)


def digest(value: str) -> Digest:
    return Digest(hashlib.sha256(value.encode("utf-8")).hexdigest())

"""The secrets of sign-in: user codes people type, device codes and refresh tokens machines keep.

User codes are 8 letters from 20 consonants (no vowels, so no words; no 0/O or 1/I to confuse), shown as
ABCD-EFGH: 20^8 ≈ 2.6·10^10 codes. Device codes and refresh tokens carry 256 random bits. The database
stores only SHA-256 digests of all three; a fast hash is enough for values this random (a password needs
argon2 because people choose it; nobody chooses these).
"""

from __future__ import annotations

import hashlib
import secrets

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
REFRESH_TOKEN_PREFIX = "sbr_"  # lets secret scanners recognise a leaked one


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


def new_device_code() -> str:
    return secrets.token_urlsafe(32)


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()

"""Confirmation tickets: what lets the /device page's Approve and Deny buttons decide a code.

Step one of the page checks the password, then the code, and shows what the code asks for; the buttons of
step two send a ticket instead of the password. A ticket names the account and the code, lives
`CONFIRMATION_SECONDS`, and is an HMAC-SHA256 over them, the browser's CSRF token and its browser session
id (`browser`: step one signs the browser in), so it works only with the cookies it was issued with and
cannot be made or changed without the key. The page checks the session is still live too: signed out, or
its session ended, a browser's tickets decide nothing. A ticket says too whether step one started that
session for it (the browser was not signed in to the account): deciding ends such a session, so the next
person at a shared computer does not find /account signed in.

The key is derived from each signing key (HMAC-SHA256 of the raw private key over a label of its own, so
the derived key says nothing about the signing key and is no signature). Every replica has the same keys,
so any replica can check a ticket another issued; a ticket is issued with the first key and checked
against every configured one, so it survives a key rotation as an access token does. Nothing is stored: a
ticket used twice decides nothing the second time (the code is no longer pending).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

CONFIRMATION_SECONDS = 300
_LABEL = b"switchboard /device confirmation ticket v1"
_OWN_SESSION = "own"  # the ticket body's last part when step one started the session


def page_key(private_key: bytes) -> bytes:
    """The ticket key derived from one signing key's raw private bytes."""
    return hmac.new(private_key, _LABEL, hashlib.sha256).digest()


class Ticket(NamedTuple):
    account_id: str
    user_code: str  # compact
    own_session: bool  # step one started the browser's session for this ticket


class Confirmations:
    def __init__(self, keys: Sequence[bytes], clock: Callable[[], float] = time.time) -> None:
        if not keys:
            raise ValueError("confirmation tickets need at least one key")
        self._keys, self._clock = tuple(keys), clock

    def issue(
        self, csrf_token: str, session_id: str, account_id: str, user_code: str, own_session: bool = False
    ) -> str:
        """A ticket for `account_id` to decide the (compact) `user_code`, in the browser of `csrf_token` and
        its session `session_id`; `own_session`: step one started that session for this ticket."""
        expires = int(self._clock()) + CONFIRMATION_SECONDS
        body = f"{account_id}.{user_code}.{expires}" + (f".{_OWN_SESSION}" if own_session else "")
        return f"{body}.{_mac(self._keys[0], csrf_token, session_id, body)}"

    def check(self, csrf_token: str, session_id: str, ticket: str) -> Ticket | None:
        """What an unexpired ticket issued for this CSRF token and session says; None otherwise. Whether the
        session is still live is the caller's to check."""
        body, _, mac = ticket.rpartition(".")
        parts = body.split(".")
        own_session = len(parts) == 4 and parts[3] == _OWN_SESSION
        if own_session:
            parts.pop()
        if len(parts) != 3 or not parts[2].isdigit():
            return None
        presented = mac.encode()
        macs = (_mac(key, csrf_token, session_id, body).encode() for key in self._keys)
        if not any(hmac.compare_digest(expected, presented) for expected in macs):
            return None
        account_id, user_code, expires = parts
        if int(expires) < self._clock():
            return None
        return Ticket(account_id, user_code, own_session)


def _mac(key: bytes, csrf_token: str, session_id: str, body: str) -> str:
    message = b"\x00".join(part.encode() for part in (csrf_token, session_id, body))
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).rstrip(b"=").decode()

"""OAuth scopes (RFC 6749 §3.3): what a sign-in lets its tokens do.

- `chat`: send turns (`POST /v1/messages`) and read the account's figures (`GET /v1/switchboard/usage`,
  `GET /v1/switchboard/turns/{id}`).
- `billing`: change what the account may spend (`POST /v1/switchboard/overage`).

A device authorization without `scope` gets both (the documented default; what the language server asks
for). An unknown scope is refused with `invalid_scope`. The granted scope is stored with the device
authorization and then with the refresh family, so every refresh grants the same (or, if the client asks,
less: never more); each access token carries it in its `scope` claim and the endpoints check it.
"""

from __future__ import annotations

from typing import Final, Literal

from .forms import OAuthError

# A scope an endpoint requires: a Literal, so a misspelt one is a type error, not an endpoint that answers
# every token with 403 forever.
Scope = Literal["chat", "billing"]
CHAT: Final = "chat"
BILLING: Final = "billing"
SCOPES: tuple[Scope, ...] = (CHAT, BILLING)
DEFAULT_SCOPE: frozenset[Scope] = frozenset(SCOPES)


def parse_scope(raw: str | None, *, within: frozenset[str] = DEFAULT_SCOPE) -> frozenset[str]:
    """The scopes named in `raw` (space-separated; missing or empty: all of `within`); raises
    `invalid_scope` for a scope that does not exist or is not in `within`."""
    if raw is None or not raw.strip():
        return within
    asked = frozenset(raw.split())
    unknown = sorted(asked - DEFAULT_SCOPE)
    if unknown:
        named = " ".join(unknown)
        raise OAuthError("invalid_scope", f"Unknown scope {named}: the scopes are chat and billing.")
    beyond = sorted(asked - within)
    if beyond:
        raise OAuthError("invalid_scope", f"This sign-in was not granted {' '.join(beyond)}.")
    return asked


def scope_text(scopes: frozenset[str]) -> str:
    """The scopes as RFC 6749 writes them (space-separated, in a fixed order)."""
    return " ".join(scope for scope in SCOPES if scope in scopes)

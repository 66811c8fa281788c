"""Access tokens: short-lived EdDSA entitlements signed by the gateway, verifiable by any replica.

An access token is the same JWT as the language server's entitlement (`plans.entitlement`), signed with the
first configured key; every configured key is published at `/.well-known/jwks.json` and accepted, so a key
can be added, promoted and retired without a replica ever refusing a live token (docs/gateway.md).
Whether the account is still active is checked against the database on every request, not here.
"""

from __future__ import annotations

import logging
import os
import stat
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from switchboard.plans.entitlement import Entitlement, EntitlementRefused, check_entitlement_claims
from switchboard.plans.period import utc_now
from switchboard.plans.signing import public_jwk, read_private_key, sign_entitlement, write_private_key
from switchboard.plans.trust import TrustedKeys, parse_jwks

from .config import ConfigError, GatewaySettings
from .signin.codes import Digest, digest
from .signin.confirmations import page_key
from .signin.scopes import DEFAULT_SCOPE, scope_text

# Tokens already verified, kept until they expire: a client sends the same token for up to 15 minutes, and
# checking its signature (Ed25519 plus PyJWT's parsing, 0.3-2 ms) on every request is the largest CPU cost
# of authentication. Bounded; the least recently used entry goes first, so a replica serving more clients
# than this still answers its busy ones from memory.
VERIFIED_CACHE_SIZE = 4096

ALL_SCOPES = scope_text(DEFAULT_SCOPE)
_log = logging.getLogger("switchboard.gateway.tokens")


class TokenRefused(Exception):
    """The bearer token proves nothing; `str()` is the reason, safe to show (it never echoes the token)."""


@dataclass(frozen=True)
class VerifiedToken:
    """What a verified access token grants: its entitlement (account, plan, expiry) and its scopes."""

    entitlement: Entitlement
    scopes: frozenset[str]


class VerifiedTokens:
    """Verified tokens, each one entry until its token expires, at most `size` (the least recently used goes
    first). Entries are found by the token's SHA-256 digest: no bearer token is held here.

    One entry holds everything a request needs from its token, so a token is parsed once per replica."""

    def __init__(self, size: int = VERIFIED_CACHE_SIZE) -> None:
        if size < 1:
            raise ValueError(f"a verified-token cache holds at least one token (size {size})")
        self.size = size
        self._entries: OrderedDict[Digest, tuple[datetime, VerifiedToken]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: datetime) -> VerifiedToken | None:
        key = digest(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, verified = entry
        if expires_at <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return verified

    def put(self, token: str, verified: VerifiedToken) -> None:
        expires_at = verified.entitlement.expires_at
        assert expires_at is not None, "a verified token has an expiry (`exp` is a required claim)"
        key = digest(token)
        self._entries[key] = (expires_at, verified)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


@dataclass(frozen=True)
class TokenAuthority:
    issuer: str
    lifetime: timedelta
    signing_keys: tuple[Ed25519PrivateKey, ...]
    clock: Callable[[], datetime] = field(default=utc_now, compare=False, repr=False)
    _verified: VerifiedTokens = field(default_factory=VerifiedTokens, init=False, compare=False, repr=False)

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> TokenAuthority:
        """The authority of the configured keys; raises `ConfigError` for a key that cannot be read, or for
        one key listed twice (the same path, or two files holding the same key)."""
        keys = tuple(_load_key(path) for path in settings.signing_keys)
        _require_distinct(settings.signing_keys, keys)
        return cls(settings.token_issuer, timedelta(seconds=settings.access_token_seconds), keys)

    def jwks(self) -> dict[str, Any]:
        """The public keys, every one bound to this issuer."""
        return {"keys": [public_jwk(key.public_key(), iss=self.issuer) for key in self.signing_keys]}

    def issue(
        self, account_id: str, plan: str, *, scope: str = ALL_SCOPES, now: datetime | None = None
    ) -> str:
        """An access token for `account_id` on `plan`, allowed `scope` (space-separated, RFC 8693 §4.2)."""
        return sign_entitlement(
            self.signing_keys[0],
            plan=plan,
            sub=account_id,
            iss=self.issuer,
            lifetime=self.lifetime,
            now=now or self.clock(),
            extra_claims={"scope": scope},
        )

    @cached_property
    def page_keys(self) -> tuple[bytes, ...]:
        """The keys of the /device page's confirmation tickets, one derived from each signing key (the first
        from the signing one): `signin.confirmations`."""
        raw = (
            key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()) for key in self.signing_keys
        )
        return tuple(page_key(private) for private in raw)

    @cached_property
    def _trusted(self) -> TrustedKeys:
        keys, _ = parse_jwks(self.jwks(), "gateway signing keys")
        return TrustedKeys(tuple(keys))

    def verify(self, token: str) -> VerifiedToken:
        """What `token` grants at the authority's clock; raises `TokenRefused`.

        A token verified before is answered from memory until it expires (the keys never change while a
        replica runs, and a valid token only stops being valid by expiring; revocation is the account
        row's business, checked on every request)."""
        now = self.clock()
        known = self._verified.get(token, now)
        if known is not None:
            return known
        try:
            entitlement, claims = check_entitlement_claims(token, self._trusted, now=now)
        except EntitlementRefused as refused:
            raise TokenRefused(str(refused).replace("Entitlement", "Access token", 1)) from None
        verified = VerifiedToken(entitlement, _scopes(claims))
        self._verified.put(token, verified)
        return verified


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """The scopes in a verified token's claims. A token from before scopes existed (no claim; it lives 15
    minutes at most) could do everything."""
    scope = claims.get("scope", ALL_SCOPES)
    return frozenset(scope.split()) if isinstance(scope, str) else frozenset()


def _require_distinct(paths: Sequence[Path], keys: Sequence[Ed25519PrivateKey]) -> None:
    """Refuse a key configured twice: it would pass the two-key rule (a key published before it signs, so
    a rotation never refuses a live token) with one key, and the JWKS would list its `kid` twice."""
    seen: dict[str, Path] = {}
    for path, key in zip(paths, keys, strict=True):
        kid = public_jwk(key.public_key(), iss=None)["kid"]
        if kid in seen:
            raise ConfigError(
                f"signing_keys lists the same key twice ({seen[kid]} and {path}, key id {kid}): give two"
                " different keys (create one: switchboard gateway keys new)"
            )
        seen[kid] = path


def _load_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = read_private_key(path)
    except FileNotFoundError:
        raise ConfigError(
            f"signing key {path} does not exist (create it: switchboard gateway keys new)"
        ) from None
    except PermissionError:
        raise ConfigError(
            f"cannot read signing key {path} (permission denied): the user the gateway runs as must own it"
        ) from None
    except OSError as error:
        raise ConfigError(
            f"cannot read signing key {path} ({error.strerror or type(error).__name__})"
        ) from None
    except ValueError as error:
        raise ConfigError(
            f"signing key {path} is not an Ed25519 PEM private key ({type(error).__name__})"
        ) from None
    _warn_if_shared(path)
    return key


def _warn_if_shared(path: Path) -> None:
    """A signing key anyone but its owner can read lets them issue tokens for any account: warn (`keys new`
    writes 0600; a copy or an archive may not have kept it)."""
    if os.name != "posix":
        return  # Windows has ACLs, not these bits
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & 0o077:
        _log.warning(
            "signing key %s can be read by its group or others (mode %04o): chmod 600 it",
            path,
            stat.S_IMODE(mode),
        )


def new_signing_key(path: Path) -> str:
    """Create an Ed25519 key at `path` (0600; refuses to overwrite) and return its `kid`."""
    if path.exists():
        raise FileExistsError(f"{path} exists: a signing key is never overwritten")
    key = Ed25519PrivateKey.generate()
    write_private_key(path, key)
    return public_jwk(key.public_key(), iss=None)["kid"]

"""Entitlements: which plan a token proves, or Free with the reason why not.

An entitlement is a JWT signed with EdDSA (Ed25519) by the account service, with claims `iss`, `sub`
(the account id), `plan`, `iat` and `exp`. It is verified only against keys from the server's own
configuration (see `trust`); the token itself is never logged or kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from switchboard.protocol.messages import PlanId

from .catalog import get_plan, is_known_plan
from .period import as_utc, utc_now
from .trust import TRUSTED_KEYS_ENV, TRUSTED_KEYS_FILE, TrustedKey, TrustedKeys, load_trusted_keys

ALGORITHM = "EdDSA"
REQUIRED_CLAIMS = ("iss", "sub", "plan", "iat", "exp")
LOCAL_ACCOUNT = "local"
# Tolerated clock skew between the account service and this machine, for `iat` and `nbf` only.
_SKEW = timedelta(minutes=5)
_ON_FREE = ": you are on Free"
_DECODE_OPTIONS: Any = {
    "require": list(REQUIRED_CLAIMS),
    # Times are checked against the injected clock below, not PyJWT's wall clock.
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
    # Claim types are checked below, with a reason that names the claim.
    "verify_sub": False,
}


@dataclass(frozen=True)
class Entitlement:
    plan: PlanId
    account: str | None
    issuer: str | None
    expires_at: datetime | None
    reason: str

    @property
    def account_key(self) -> str:
        """The ledger account: the token's `sub`, or "local" without a valid entitlement."""
        return self.account or LOCAL_ACCOUNT

    @classmethod
    def free(cls, why: str) -> Entitlement:
        return cls("free", None, None, None, why + _ON_FREE)


NO_ENTITLEMENT = Entitlement.free("No entitlement")


class EntitlementRefused(Exception):
    """A token that grants nothing; `str()` is the human reason."""


_Refused = EntitlementRefused


def resolve_entitlement(
    token: str | None,
    *,
    config_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Entitlement:
    """Load the trusted keys from configuration and verify `token` against them."""
    return verify_entitlement(token, load_trusted_keys(config_dir, environ), now=now)


def verify_entitlement(
    token: str | None, trusted: TrustedKeys, *, now: datetime | None = None
) -> Entitlement:
    """The plan `token` proves against the `trusted` keys, or Free with the reason why not; never raises."""
    if not token or not token.strip():
        return NO_ENTITLEMENT
    try:
        return check_entitlement(token, trusted, now=now)
    except _Refused as refused:
        return Entitlement.free(str(refused))


def check_entitlement(token: str, trusted: TrustedKeys, *, now: datetime | None = None) -> Entitlement:
    """The entitlement `token` proves against `trusted`; raises `EntitlementRefused` with the reason."""
    return check_entitlement_claims(token, trusted, now=now)[0]


def check_entitlement_claims(
    token: str, trusted: TrustedKeys, *, now: datetime | None = None
) -> tuple[Entitlement, Mapping[str, Any]]:
    """As `check_entitlement`, with every claim of the token from the same signature-checked parse (for a
    service's own claims, such as the gateway's `scope`)."""
    key, claims = _verify_signature(token.strip(), trusted)
    return _entitlement(claims, key, as_utc(now or utc_now())), claims


def _verify_signature(token: str, trusted: TrustedKeys) -> tuple[TrustedKey, dict[str, Any]]:
    header = _header(token)
    if not trusted.keys:
        raise _Refused(
            "Entitlement can't be checked: no trusted issuer keys are configured "
            f"(set {TRUSTED_KEYS_ENV} or add {TRUSTED_KEYS_FILE} to the config directory)"
        )
    kid = header.get("kid")
    for key in trusted.for_kid(kid if isinstance(kid, str) else None):
        try:
            return key, jwt.decode(token, key.public_key, algorithms=[ALGORITHM], options=_DECODE_OPTIONS)
        except jwt.InvalidSignatureError:
            continue
        except jwt.MissingRequiredClaimError as error:
            raise _Refused(f"Entitlement is missing the `{error.claim}` claim") from None
        except jwt.InvalidAudienceError:
            raise _Refused("Entitlement is meant for another service (it has an `aud` claim)") from None
        except jwt.PyJWTError:
            raise _Refused("Entitlement is malformed") from None
    raise _Refused("Entitlement signature is not from a trusted issuer")


def _header(token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _Refused("Entitlement is malformed") from None
    alg = header.get("alg")
    if alg != ALGORITHM:
        shown = alg if isinstance(alg, str) and len(alg) <= 20 else "unknown"
        raise _Refused(f"Entitlement is signed with {shown!r}, not EdDSA")
    return header


def _entitlement(claims: dict[str, Any], key: TrustedKey, now: datetime) -> Entitlement:
    issuer, account, plan = (_text(claims, name) for name in ("iss", "sub", "plan"))
    expires_at, issued_at = _time(claims, "exp"), _time(claims, "iat")
    if key.issuer is not None and issuer != key.issuer:
        raise _Refused(f"Entitlement issuer {_short(issuer)} does not match its trusted key")
    if issued_at > now + _SKEW or ("nbf" in claims and _time(claims, "nbf") > now + _SKEW):
        raise _Refused("Entitlement is not valid yet (check this machine's clock)")
    if expires_at <= now:
        raise _Refused(f"Entitlement expired on {expires_at:%Y-%m-%d}")
    if not is_known_plan(plan):
        raise _Refused(f"Entitlement names an unknown plan {_short(plan)}")
    spec = get_plan(plan)
    reason = f"{spec.name} for {account} until {expires_at:%Y-%m-%d} (signed by {issuer})"
    return Entitlement(spec.id, account, issuer, expires_at, reason)


def _text(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise _Refused(f"Entitlement has an invalid `{name}` claim")
    return value


def _time(claims: dict[str, Any], name: str) -> datetime:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Refused(f"Entitlement has an invalid `{name}` claim")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise _Refused(f"Entitlement has an invalid `{name}` claim") from None


def _short(value: str) -> str:
    """A claim value for a message, quoted and cut short (it came from the token)."""
    return repr(value if len(value) <= 40 else value[:40] + "…")

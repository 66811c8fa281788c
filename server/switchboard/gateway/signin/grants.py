"""The token endpoint's two grants: a device code (RFC 8628 §3.4) and a refresh token (RFC 6749 §6).

Both end in the same answer: a fresh access token carrying the account's plan as the database has it now,
and a refresh token. Database changes (a claimed code, a spent token, a revoked family) are committed
before any error is raised, so an error answer never undoes them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..accounts import Account, get_account
from ..service import Gateway
from . import device, ratelimit, refresh
from .forms import OAuthError
from .scopes import parse_scope, scope_text

log = logging.getLogger("switchboard.gateway.signin")

_POLL_ERRORS = {
    "authorization_pending": "The code is not approved yet: poll again after the interval.",
    "slow_down": "Polling too fast: wait 5 seconds longer between polls from now on.",
    "expired_token": "The device code expired: start signing in again.",
    "access_denied": "The sign-in was denied.",
    "invalid_grant": "The device code is unknown, already used, or was issued to another client.",
}
_REFRESH_REFUSED = "The refresh token is not valid (unknown, spent, expired or revoked): sign in again."


@dataclass(frozen=True)
class Issued:
    account: Account
    access_token: str
    refresh_token: str
    expires_in: int
    scope: str

    def response_body(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
        }


async def device_code_grant(gateway: Gateway, device_code: str, client_id: str) -> Issued:
    refresh_token: str | None = None
    account: Account | None = None
    async with gateway.pool.connection() as conn, conn.transaction():
        polled = await device.poll(conn, device_code, client_id)
        if polled.outcome == "approved" and polled.account_id is not None:
            account = await get_account(conn, polled.account_id)
            if account is not None and account.active:
                refresh_token = await refresh.start_family(
                    conn, account.id, client_id, polled.scope, gateway.settings.refresh_token_seconds
                )
    if polled.outcome != "approved":
        raise OAuthError(polled.outcome, _POLL_ERRORS[polled.outcome])
    if account is None or refresh_token is None:
        raise OAuthError("access_denied", "The account that approved this code is disabled.")
    log.info("device sign-in completed", extra={"account": account.id})
    return _issue(gateway, account, refresh_token, polled.scope)


async def refresh_token_grant(
    gateway: Gateway, token: str, client_id: str, scope: str | None, address: str
) -> Issued:
    """RFC 6749 §6: `scope`, if sent, may narrow this access token to part of the family's grant; the
    family keeps its grant. Asking for more is `invalid_scope`, checked before the token is spent.
    `address` is the client's (after a trusted proxy): a spent token's grace holds only from the address
    that spent it (refresh.py)."""
    async with gateway.pool.connection() as conn:
        # Only a token that can still rotate counts against its account's refresh limit: a dead one
        # (spent, expired, revoked, another client's) is refused below, and an old copy sent over and over
        # must not lock the account's live devices out of refreshing. A reuse from another address is not
        # live either: it goes straight to `rotate`, which revokes the family (a 429 here would spare it).
        grace = gateway.settings.refresh_reuse_grace_seconds
        holder = await refresh.live_holder(conn, token, client_id, grace, address=address)
        if holder is not None:
            parse_scope(scope, within=parse_scope(holder.scope))
            # Checked before the token is spent: a refused refresh must leave the client its token.
            try:
                rule = ratelimit.rules_for(gateway.settings.rate_limits).refresh_per_account
                await ratelimit.hit(conn, rule, holder.account_id)
            except ratelimit.RateLimited as limited:
                raise OAuthError.rate_limited(limited) from None
        async with conn.transaction():
            lifetime = gateway.settings.refresh_token_seconds
            outcome = await refresh.rotate(conn, token, client_id, lifetime, grace, address=address)
            account = None
            if isinstance(outcome, refresh.Rotated):
                account = await get_account(conn, outcome.holder.account_id)
                if account is None or not account.active:
                    await refresh.revoke_family(conn, outcome.holder.family_id, "account_revoked")
    if isinstance(outcome, refresh.Refused):
        _log_refusal(outcome)
        raise OAuthError("invalid_grant", _REFRESH_REFUSED)
    if account is None or not account.active:
        log.info(
            "refresh refused: the account is revoked; family %s revoked",
            outcome.holder.family_id,
            extra={"account": outcome.holder.account_id},
        )
        raise OAuthError("invalid_grant", "This account is disabled: contact support.")
    if outcome.again:
        log.info(
            "a refresh token spent moments ago was presented again (within the grace): family %s keeps "
            "two live tokens",
            outcome.holder.family_id,
            extra={"account": outcome.holder.account_id},
        )
    granted = parse_scope(scope, within=parse_scope(outcome.holder.scope))
    return _issue(gateway, account, outcome.refresh_token, scope_text(granted))


def _log_refusal(refused: refresh.Refused) -> None:
    if refused.holder is None:
        return
    family, extra = refused.holder.family_id, {"account": refused.holder.account_id}
    if refused.reason == "reused":
        log.warning("a spent refresh token was presented again: family %s revoked", family, extra=extra)
    else:
        log.info("refresh refused (%s) for family %s", refused.reason, family, extra=extra)


def _issue(gateway: Gateway, account: Account, refresh_token: str, scope: str) -> Issued:
    access_token = gateway.authority.issue(account.id, account.plan, scope=scope)
    return Issued(account, access_token, refresh_token, gateway.settings.access_token_seconds, scope)

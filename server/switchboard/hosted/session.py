"""A signed-in session with Switchboard Cloud: the tokens (in memory only), their refresh, and sign-in.

- The access token is the gateway's EdDSA entitlement, verified against the gateway's JWKS, so the plan
  check before routing works offline (`plans.entitlement`), as it does for a pasted token.
- It is refreshed before it expires, by the wall clock: a machine that slept past the refresh time
  refreshes before its next request instead of sending a dead token (the event loop's clock stops during
  sleep). A request the gateway still answers 401 refreshes once and is sent again.
- Every refresh rotates the refresh token: the new one goes to the client at once (`on_credentials`), even
  when a later step fails (a key to fetch, a token that does not verify), since the old one is dead and
  presenting it again would end the session (reuse detection revokes the family). Refreshes are
  single-flight for the same reason.
- Signing in while signed in keeps the current session until the new one is in hand: a sign-in that is
  cancelled, denied or expires changes nothing; one that succeeds revokes the session it replaces.
- Nothing here writes a token to disk or a log; every token is registered with the log scrubber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2

from switchboard.logs import scrubber
from switchboard.plans import Entitlement, TrustedKeys
from switchboard.plans.entitlement import EntitlementRefused, check_entitlement
from switchboard.plans.trust import parse_jwks
from switchboard.protocol.messages import AccountInfo, SignInCode, UsageReport

from .gateway_http import (
    DeviceCode,
    Endpoints,
    GatewayHttp,
    GatewayRefused,
    GatewayUnreachable,
    OAuthError,
    TokenGrant,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Refresh when this share of the access token's life is left (but at least a few seconds ahead).
REFRESH_AT_SHARE = 0.25
REFRESH_MARGIN_MAX_SECONDS = 60.0
RETRY_AFTER_FAILURE_SECONDS = 15.0
CLOSE_REFRESH_WAIT_SECONDS = 3.0
SLOW_DOWN_STEP_SECONDS = 5
# How long to wait for the gateway to settle a turn the user stopped (it settles when it sees the cut).
SETTLE_WAIT_SECONDS = 20.0
SETTLE_POLL_MAX_SECONDS = 2.0

# OAuth answers to a refresh that mean the refresh token is dead (spent, revoked, expired, another client's).
SESSION_OVER = ("invalid_grant", "invalid_client", "unauthorized_client")
SESSION_ENDED = (
    "Your Switchboard Cloud session has ended (signed out elsewhere, revoked, or its refresh token was "
    "used twice): sign in again."
)

CredentialsCallback = Callable[[str | None, str | None], None]
Clock = Callable[[], float]


class SignInFailed(Exception):
    """A sign-in that did not happen; `reason` is the AuthErrorData reason, `str()` the user's message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class NotSignedIn(Exception):
    """The session ended (or never started) while something needed a token."""


@dataclass
class _Tokens:
    access: str
    refresh: str
    entitlement: Entitlement
    refresh_due: float  # when to refresh, on the session's (wall) clock


class GatewaySession:
    def __init__(
        self,
        base_url: str,
        client_id: Callable[[], str],
        *,
        clock: Clock = time.time,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._clock = clock
        self._http = GatewayHttp(self.base_url, transport)
        self._endpoints: Endpoints | None = None
        self._trusted: TrustedKeys | None = None
        self._tokens: _Tokens | None = None
        self._refreshing: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.email: str | None = None
        self.on_credentials: list[CredentialsCallback] = []
        self.on_plan_change: list[Callable[[], None]] = []  # a refresh brought another plan
        # A running session ended (a refused refresh): its reason, after `on_credentials` had (None, reason).
        # Not for a stored token that could not resume: no session was running here.
        self.on_ended: list[Callable[[str], None]] = []
        self._closed = False

    # --- state --------------------------------------------------------------------------------------

    @property
    def signed_in(self) -> bool:
        return self._tokens is not None

    @property
    def entitlement(self) -> Entitlement | None:
        return self._tokens.entitlement if self._tokens else None

    def account_info(self) -> AccountInfo:
        endpoints = self._endpoints
        return AccountInfo(
            mode="hosted" if self.signed_in else "local",
            email=self.email if self.signed_in else None,
            gateway_url=self.base_url,
            account_url=endpoints.account if endpoints else None,
            upgrade_url=endpoints.upgrade if endpoints else None,
        )

    async def access_token(self) -> str:
        """The current access token, refreshed first if it is due; raises `NotSignedIn`."""
        tokens = self._tokens
        if tokens is None:
            raise NotSignedIn(SESSION_ENDED)
        if self._clock() >= tokens.refresh_due:
            await self.refresh()
        tokens = self._tokens
        if tokens is None:
            raise NotSignedIn(SESSION_ENDED)
        return tokens.access

    # --- signing in ---------------------------------------------------------------------------------

    async def device_sign_in(self, on_code: Callable[[SignInCode], None]) -> str:
        """The device flow (RFC 8628): shows the code, polls until the user decides; returns the refresh
        token. Cancelling the awaiting task stops the polling."""
        endpoints = await self._discover()
        code = await self._call(self._http.device_code(endpoints, self._client_id()))
        on_code(
            SignInCode(
                user_code=code.user_code,
                verification_uri=code.verification_uri,
                verification_uri_complete=code.verification_uri_complete,
                expires_in=code.expires_in,
            )
        )
        grant = await self._poll(endpoints, code)
        await self._replace(grant, revoke_previous=True)
        return grant.refresh_token

    async def _poll(self, endpoints: Endpoints, code: DeviceCode) -> TokenGrant:
        interval = code.interval
        deadline = time.monotonic() + code.expires_in
        while time.monotonic() < deadline:
            await asyncio.sleep(interval)
            try:
                return await self._http.poll_device(endpoints, self._client_id(), code.device_code)
            except GatewayUnreachable as error:  # a blip while the user is at the browser: poll again
                log.warning("A device-flow poll got no answer: %s", error)
                continue
            except OAuthError as answer:
                if answer.error == "authorization_pending":
                    continue
                if answer.error == "slow_down":
                    interval += SLOW_DOWN_STEP_SECONDS
                    continue
                if answer.error == "access_denied":
                    raise SignInFailed("denied", "The sign-in was denied in the browser.") from None
                if answer.error == "expired_token":
                    break
                raise SignInFailed(
                    "unreachable", f"Switchboard Cloud refused the sign-in: {answer}"
                ) from None
        raise SignInFailed("expired", "The sign-in code expired before it was approved: sign in again.")

    async def resume(self, refresh_token: str) -> str:
        """Resumes a stored session; returns the rotated refresh token (the stored one is now dead).

        The gateway's keys are read before the stored token is spent, so a gateway that cannot give them
        leaves that token alive. If the new access token then does not verify, the rotated refresh token
        still reaches the client (`on_credentials`) before the failure does."""
        scrubber.add(refresh_token)
        endpoints = await self._discover()
        await self._trusted_keys(fresh=False)
        try:
            grant = await self._call(self._http.refresh(endpoints, self._client_id(), refresh_token))
        except OAuthError as answer:
            if answer.error not in SESSION_OVER:
                raise SignInFailed(
                    "unreachable", f"Switchboard Cloud could not resume the session: {answer}"
                ) from None
            log.info("The stored session could not be resumed (%s)", answer.error)
            # The client's stored token is dead: tell it to delete it. A session this server already holds
            # (another family) is not the one that ended, and stays.
            if self._tokens is None:
                self._emit(None, SESSION_ENDED)
            raise SignInFailed("session_ended", SESSION_ENDED) from None
        await self._replace(grant, revoke_previous=False)
        return grant.refresh_token

    def adopt_refresh_token(self, refresh_token: str) -> bool:
        """Takes a newer refresh token of this session's family, stored by another window whose server
        refreshed with (and so spent) the one held here; the next refresh presents it. No network call and
        no `on_credentials` echo: the client already has it. Ignored when signed out or unchanged."""
        tokens = self._tokens
        if tokens is None or refresh_token == tokens.refresh:
            return False
        scrubber.add(refresh_token)
        tokens.refresh = refresh_token
        return True

    async def sign_out(self) -> None:
        """Forgets the tokens and revokes the refresh token's family at the gateway (best effort)."""
        tokens, self._tokens = self._tokens, None
        self._cancel_timer()
        if tokens is not None:
            await self._revoke(tokens.refresh)

    async def _revoke(self, refresh_token: str) -> None:
        if self._endpoints is None:
            return
        try:
            await self._http.revoke(self._endpoints, self._client_id(), refresh_token)
        except (GatewayUnreachable, OAuthError) as error:
            log.warning("Could not revoke the session at the gateway: %s", error)

    def forget(self) -> None:
        """Not signed in here any more, without revoking: the session's latest refresh token (a refresh may
        have rotated the one its sign-in returned) goes to the client (`on_credentials`) to resume with
        later. Nothing is sent for a session that has already ended."""
        tokens, self._tokens = self._tokens, None
        self._cancel_timer()
        if tokens is not None:
            self._emit(tokens.refresh, None)

    async def close(self) -> None:
        """At shutdown: no more refreshes, and the HTTP client's connections closed. The tokens stay
        valid (the client keeps the refresh token for the next start). A refresh already sent is let finish
        (briefly): the gateway may have rotated the token, and the client must get the new one."""
        self._closed = True
        self._cancel_timer()
        if (refreshing := self._refreshing) is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(refreshing), CLOSE_REFRESH_WAIT_SECONDS)
        self._cancel_timer()  # a refresh that finished meanwhile scheduled the next one
        await self._http.close()

    # --- refreshing ---------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Rotates the tokens; concurrent callers share one refresh (a second would reuse a dead token)."""
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._refresh_once())
            self._refreshing.add_done_callback(lambda _: setattr(self, "_refreshing", None))
        await asyncio.shield(self._refreshing)

    async def _refresh_once(self) -> None:
        tokens = self._tokens
        if tokens is None:
            return
        try:
            endpoints = await self._discover()
            grant = await self._call(self._http.refresh(endpoints, self._client_id(), tokens.refresh))
            if self._tokens is not tokens:
                return  # signed out (or in anew) meanwhile: this refresh must not bring the session back
            # The presented token is spent: keep and hand over the new one before anything else can fail.
            scrubber.add(grant.refresh_token)
            tokens.refresh = grant.refresh_token
            self._emit(grant.refresh_token, None)
            await self._adopt(grant)
            if (adopted := self.entitlement) is not None and adopted.plan != tokens.entitlement.plan:
                for callback in self.on_plan_change:
                    callback()
        except OAuthError as answer:
            if answer.error not in SESSION_OVER:  # slow_down (rate limited) and the like: try again later
                log.warning("The gateway did not refresh the session (%s); retrying later", answer.error)
                if self._tokens is tokens:
                    self._schedule(RETRY_AFTER_FAILURE_SECONDS)
                return
            if self._tokens is not tokens:
                return  # signed out (or in anew) meanwhile: that session's end changes nothing held now
            log.warning("The gateway ended the session on refresh (%s)", answer.error)
            self._end(SESSION_ENDED)
        except (SignInFailed, GatewayUnreachable) as error:
            # Keep the session: the gateway may be back before the access token dies.
            log.warning("Could not refresh the access token: %s", error)
            if self._tokens is tokens:
                self._schedule(RETRY_AFTER_FAILURE_SECONDS)

    async def _replace(self, grant: TokenGrant, *, revoke_previous: bool) -> None:
        """A new sign-in's tokens in place of the session held (if any), which a device sign-in revokes (a
        resumed token may be of the same family as the one held, so that one is not revoked)."""
        previous = self._tokens
        scrubber.add(grant.refresh_token)
        try:
            await self._adopt(grant)
        except SignInFailed:
            # Not signed in with it, but the grant's refresh token is alive (and a resumed one is spent): the
            # client keeps it to try again later.
            self._emit(grant.refresh_token, None)
            raise
        if previous is not None and revoke_previous:
            await self._revoke(previous.refresh)

    async def _adopt(self, grant: TokenGrant) -> None:
        scrubber.add(grant.access_token)
        scrubber.add(grant.refresh_token)
        entitlement = await self._verify(grant.access_token)
        life = float(grant.expires_in)
        margin = min(REFRESH_MARGIN_MAX_SECONDS, life * REFRESH_AT_SHARE)
        self._tokens = _Tokens(
            grant.access_token, grant.refresh_token, entitlement, self._clock() + life - margin
        )
        self._schedule(life - margin)

    async def _verify(self, access_token: str) -> Entitlement:
        """The access token's entitlement, against the gateway's JWKS (re-read once for a new key)."""
        for fresh in (False, True):
            trusted = await self._trusted_keys(fresh)
            try:
                return check_entitlement(access_token, trusted)
            except EntitlementRefused as refused:
                if fresh:
                    raise SignInFailed(
                        "unreachable", f"The gateway's access token does not verify: {refused}"
                    ) from None
        raise AssertionError("unreachable")

    async def _trusted_keys(self, fresh: bool) -> TrustedKeys:
        if self._trusted is None or fresh:
            endpoints = await self._discover()
            document = await self._call(self._http.jwks(endpoints))
            keys, problems = parse_jwks(document, endpoints.jwks)
            for problem in problems:
                log.warning("Gateway JWKS: %s", problem)
            self._trusted = TrustedKeys(tuple(keys), tuple(problems))
        return self._trusted

    def _schedule(self, delay: float) -> None:
        self._cancel_timer()
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(delay, 0.5), self._refresh_in_background)

    def _refresh_in_background(self) -> None:
        self._timer = None
        task = asyncio.ensure_future(self.refresh())
        task.add_done_callback(_log_failure)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _end(self, reason: str) -> None:
        had = self._tokens is not None
        self._tokens = None
        self._cancel_timer()
        if had:
            self._emit(None, reason)
            for callback in self.on_ended:
                callback(reason)

    def _emit(self, refresh_token: str | None, reason: str | None) -> None:
        for callback in self.on_credentials:
            callback(refresh_token, reason)

    # --- the gateway's figures ----------------------------------------------------------------------

    async def usage(self) -> UsageReport:
        report = await self._authorized(lambda token: self._http.usage(token))
        if report.account_info.email:
            self.email = report.account_info.email
        return report

    async def set_overage(self, enabled: bool, budget_usd: float | None) -> UsageReport:
        return await self._authorized(lambda token: self._http.set_overage(token, enabled, budget_usd))

    async def settled_charge(self, turn_id: str, wait: float = SETTLE_WAIT_SECONDS) -> dict[str, Any] | None:
        """The gateway's charge object for `turn_id` once its ledger has settled the turn (not `reserved`),
        asking again with a growing pause; None if it has not within `wait` seconds (or has no such turn)."""
        deadline = time.monotonic() + wait
        pause = 0.05
        while True:
            charge = await self._call(self._http.turn_charge(await self.access_token(), turn_id))
            if charge is not None and charge.get("status") != "reserved":
                return charge
            if time.monotonic() + pause > deadline:
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, SETTLE_POLL_MAX_SECONDS)

    async def _authorized(self, call: Callable[[str], Awaitable[UsageReport]]) -> UsageReport:
        token = await self.access_token()
        try:
            return await self._call(call(token))
        except GatewayRefused as refused:
            if refused.status != 401 or not await self.renewed(token):
                raise
        return await self._call(call(await self.access_token()))

    async def renewed(self, rejected: str) -> bool:
        """After the gateway answered 401 to the access token `rejected`: refreshes (unless another request
        already did since); whether tokens newer than that one are held now. A refresh the gateway refuses
        ends the session as any refresh does; one that could not be done (no answer, `slow_down`) leaves it
        signed in, with no newer tokens: callers tell the two apart by `signed_in`."""
        tokens = self._tokens
        if tokens is None:
            return False
        if tokens.access != rejected:
            return True
        await self.refresh()
        return self._tokens is not None and self._tokens is not tokens

    # --- plumbing -----------------------------------------------------------------------------------

    async def _discover(self) -> Endpoints:
        if self._endpoints is None:
            self._endpoints = await self._call(self._http.endpoints())
        return self._endpoints

    @staticmethod
    async def _call(call: Awaitable[T]) -> T:
        """`call`, with an unreachable gateway as `SignInFailed("unreachable")` for sign-in's callers."""
        try:
            return await call
        except GatewayUnreachable as error:
            raise SignInFailed("unreachable", str(error)) from None


def _log_failure(task: asyncio.Future[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        if (error := task.exception()) is not None:
            log.warning("Background refresh failed: %s", error)


__all__ = [
    "SESSION_ENDED",
    "GatewayRefused",
    "GatewaySession",
    "NotSignedIn",
    "SignInFailed",
]

"""Signing in to Switchboard Cloud from the terminal: the device code printed with its link, the session
resumed at start from the keyring, and every rotated refresh token written back over the stored one.

A device sign-in made while a stored session was never resumed here (the gateway failed to resume it) would
overwrite a refresh token that is still alive at the gateway: that one is revoked (RFC 7009) in the
background, best effort, as the server revokes a session it replaces. Only a token this process read from
the keyring itself: one it never saw (the keyring did not answer) may be another `switchboard chat`'s, and a
session left alive is better than a live one signed out."""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import logging
from collections.abc import Callable
from typing import Any

from pygls.exceptions import JsonRpcException

from switchboard.config import canonical_gateway_url
from switchboard.hosted.gateway_http import GatewayHttp, GatewayUnreachable, OAuthError
from switchboard.protocol.messages import CredentialsChanged, SignInCode, SignInResult, UsageReport

from .console import Console
from .credentials import KeyringUnavailable, StoredSession
from .errors import describe, is_cancelled, session_over, sign_in_help
from .loop import LoopThread, wait_done
from .session import Session

log = logging.getLogger(__name__)

CANCEL_GRACE_SECONDS = 3.0
CLIENT_ID = "switchboard-terminal"  # the gateway's OAuth client id for this client (docs/gateway.md)
# After Ctrl-C during the resume at start: how long to wait for its result (and the rotated token in it).
LATE_RESUME_SECONDS = 10.0


class SignIn:
    def __init__(
        self,
        bridge: LoopThread,
        session: Session,
        stored: StoredSession,
        out: Console,
        first_time: Callable[[str], bool] = lambda _text: True,
        *,
        repl: bool = True,
    ) -> None:
        self._first_time = first_time  # whether a note was not just printed already
        self._repl = repl  # /signin exists only in the REPL
        self._bridge = bridge
        self._session = session
        self._stored = stored
        self._out = out
        self._ids = itertools.count(1)
        self._keyring_warned = False
        # The refresh token this process last read from the keyring (not one it wrote), and the tokens the
        # server sent during the current device sign-in (the new session rotated): neither those nor a
        # token this process never read is revoked as the stored session the sign-in replaces.
        self._read: str | None = None
        self._received: set[str] = set()
        self.signed_in = False  # whether chats go to the gateway now (it charges them)

    # --- notifications (on the loop thread) ---------------------------------------------------------

    def on_code(self, params: Any) -> None:
        code = SignInCode.model_validate(params)
        link = code.verification_uri_complete or code.verification_uri
        minutes = max(1, code.expires_in // 60)
        self._out.line(f"To sign in, open {link}", "bold")
        self._out.line(
            f"and enter the code {code.user_code} (it expires in {minutes} minutes). Waiting… (Ctrl-C stops)"
        )

    def on_credentials(self, params: Any) -> None:
        """The server rotated the refresh token (store the new one: the old one is dead) or the session
        ended (delete it)."""
        changed = CredentialsChanged.model_validate(params)
        if changed.refresh_token is None:
            self.signed_in = False
            self._delete()
            if changed.reason and self._first_time(changed.reason):
                self._out.line(changed.reason, "yellow")
            return
        self._received.add(changed.refresh_token)
        self._keep(changed.refresh_token)

    # --- commands -------------------------------------------------------------------------------------

    def resume(self) -> SignInResult | None:
        """At start: the stored session, if there is one. One the server says is over is deleted; after any
        other failure (the gateway unreachable, the server stopped) it is kept for the next start."""
        try:
            stored = self._load()
        except KeyringUnavailable as error:
            self._keyring_warning(error)
            return None
        if stored is None:
            return None
        return self._resume(stored)

    def _resume(self, stored: str) -> SignInResult | None:
        future = self._bridge.submit(self._session.sign_in({"refreshToken": stored}, self._next_id()))
        try:
            wait_done(future)
        except KeyboardInterrupt:
            self._settle_late(future)
            raise
        try:
            result = future.result()
        except Exception as error:
            if session_over(error):
                self._delete()
            said = isinstance(error, JsonRpcException) and not self._first_time(error.message)
            if said:  # the session's end was just printed with this very reason
                self._out.line(f"Not signed in. {sign_in_help(repl=self._repl)}", "yellow")
            else:
                self._out.line(f"Not signed in: {describe(error, repl=self._repl)}", "yellow")
            return None
        self._signed_in(result)
        return result

    def _settle_late(self, future: concurrent.futures.Future[SignInResult]) -> None:
        """Ctrl-C during the resume: the gateway may already have rotated the stored token, whose successor
        comes only in the result. Waits a little for it (a second Ctrl-C stops waiting) and keeps it, so
        the next start does not present a spent token."""
        self._out.line("Leaving once the session is kept… (Ctrl-C again leaves now)", "dim")
        with contextlib.suppress(KeyboardInterrupt):
            wait_done(future, LATE_RESUME_SECONDS)
        if not future.done() or future.cancelled():
            return
        error = future.exception()
        if error is None:
            if (refresh_token := future.result().refresh_token) is not None:
                self._keep(refresh_token)
        elif session_over(error):
            self._delete()

    def sign_in(self) -> SignInResult | None:
        """`/signin`: a session kept from before (its resume at start failed: the gateway could not be
        reached, say) is resumed first, rather than replaced by a new one while it stays valid. Else the
        device flow: the code is printed by `on_code`; waits until it is approved, denied or expires. Ctrl-C
        cancels the request."""
        # Signed in, the server revokes the session the new one replaces; else this client revokes a stored
        # session that was never resumed (`_revoke_unresumed`).
        replacing = self.signed_in
        if not replacing and (resumed := self._resume_kept()) is not None:
            return resumed
        self._received.clear()
        request_id = self._next_id()
        future = self._bridge.submit(self._session.sign_in({}, request_id))
        try:
            wait_done(future)
        except KeyboardInterrupt:
            self._bridge.call(self._session.cancel_request(request_id))
            wait_done(future, CANCEL_GRACE_SECONDS)
            self._out.line("Sign-in cancelled.", "dim")
            return None
        try:
            result = future.result()
        except Exception as error:
            if is_cancelled(error):
                self._out.line("Sign-in cancelled.", "dim")
                return None
            raise
        if not replacing:
            self._revoke_unresumed(result.refresh_token)
        self._signed_in(result)
        return result

    def _resume_kept(self) -> SignInResult | None:
        try:
            stored = self._load()
        except KeyringUnavailable:
            return None  # said at start, or by the save of the next sign-in
        if stored is None:
            return None
        self._out.line("Resuming the session kept from before…", "dim")
        return self._resume(stored)

    def sign_out(self) -> UsageReport:
        """Revokes the session at the gateway (through the server) and deletes the stored token, even if the
        server cannot be asked (it stopped): signed out here means not resumed at the next start."""
        try:
            report = self._bridge.call(self._session.sign_out())
        finally:
            self.signed_in = False
            self._delete()
        self._out.line("Signed out of Switchboard Cloud; chats use your own Anthropic key again.")
        return report

    def _signed_in(self, result: SignInResult) -> None:
        self.signed_in = True
        if result.refresh_token:
            self._keep(result.refresh_token)
        account = result.account
        who = account.email or result.usage.account or "your account"
        self._out.line(f"Signed in to Switchboard Cloud as {who} ({result.usage.plan_name}).", "bold")

    def _revoke_unresumed(self, replacement: str | None) -> None:
        """A device sign-in is about to overwrite the stored token: one this process read and never resumed
        is alive at the gateway, so revoke it there, in the background (the sign-in does not wait; a failure
        is only logged). Any other stored token is left alone: one this process never read (the keyring did
        not answer) or that another `switchboard chat` on the same gateway wrote since may be in use
        elsewhere, and one the server sent during this sign-in is the new session's own."""
        try:
            stored = self._stored.load()
        except KeyringUnavailable:
            return  # nor will the new token be kept over it
        if stored is None or stored != self._read or stored == replacement or stored in self._received:
            return
        url, _problem = canonical_gateway_url(self._stored.gateway_url)
        if url is not None:  # the server would not have sent a token to any other
            self._bridge.submit(_revoke(url, stored))

    def _load(self) -> str | None:
        stored = self._stored.load()
        self._read = stored
        return stored

    def _delete(self) -> None:
        self._stored.delete()

    def _keep(self, refresh_token: str) -> None:
        try:
            self._stored.save(refresh_token)
        except KeyringUnavailable as error:
            self._keyring_warning(error)

    def _keyring_warning(self, error: KeyringUnavailable) -> None:
        """Once per run: every rotation (every few minutes) would repeat it."""
        if not self._keyring_warned:
            self._keyring_warned = True
            self._out.line(str(error), "yellow")

    def _next_id(self) -> str:
        return f"signin-{next(self._ids)}"


async def _revoke(gateway_url: str, refresh_token: str) -> None:
    http = GatewayHttp(gateway_url)
    try:
        await http.revoke(await http.endpoints(), CLIENT_ID, refresh_token)
        log.info("Revoked the stored session that the new sign-in replaced")
    except (GatewayUnreachable, OAuthError) as error:
        log.warning("Could not revoke the stored session that the new sign-in replaced: %s", error)
    finally:
        await http.close()

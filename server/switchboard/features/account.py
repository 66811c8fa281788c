"""The user's plan and credits: entitlement, enforcement before routing, metering after, and reports.

The plan comes only from a signed entitlement verified against keys in the server's own configuration;
nothing a client sends can raise it. Ledger calls block on SQLite (another window may hold the write
lock), so they run off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from switchboard.catalog import CATALOG, concrete_id
from switchboard.plans import (
    Entitlement,
    TrustedKeys,
    cancelled_usage,
    credits_for,
    default_config_dir,
    forbidden_reason,
    load_trusted_keys,
    period_of,
    plan_allows,
    utc_now,
    verify_entitlement,
)
from switchboard.plans.catalog import get_plan
from switchboard.plans.ledger import Ledger
from switchboard.plans.meter import ChargeResult, Meter, require_plan_allows
from switchboard.protocol import methods
from switchboard.protocol.errors import CreditsExhausted, InvalidParams, SwitchboardError, UpstreamFailed
from switchboard.protocol.messages import (
    AccountInfo,
    AdoptRefreshToken,
    ConcreteModelId,
    CredentialsChanged,
    Empty,
    SetOverageParams,
    SignInCode,
    SignInParams,
    SignInResult,
    UpstreamErrorData,
    Usage,
    UsageParams,
    UsageReport,
)
from switchboard.store import BillableAnswer
from switchboard.store import utc_now as stored_now

from .base import Feature, dump, parse_params, plain, register_request
from .host import Editor, Services

if TYPE_CHECKING:
    from switchboard.hosted.session import GatewaySession

    from .feedback import AutoFeedback

log = logging.getLogger(__name__)
ENTITLEMENT_ENV = "SWITCHBOARD_ENTITLEMENT"
PERIOD_CHECK_SECONDS = 60.0
RECONCILE_PAGE = 200
# How long the charge of a signed-in turn cut off by a dead gateway is asked for: its reservation must
# expire before a reaper settles it (a minute, by default); while the gateway is away, asked this often.
CRASHED_SETTLE_SECONDS = 120.0
UNREACHABLE_PAUSE_SECONDS = 2.0
# Signed in, a model the access token's plan forbids makes the server ask the gateway for its report (which
# names the plan: an upgrade made there is followed at once) at most this often.
PLAN_RECHECK_SECONDS = 45.0
# How long a chat waits for a resume of the stored session under way (its calls to the gateway time out
# after 15 s each) before it is refused: a chat must not go to the own key while the session is resumed.
RESUME_WAIT_SECONDS = 30.0
RESUME_PENDING = (
    "Still resuming your Switchboard Cloud session (the gateway is slow to answer): try again in a moment."
)
SIGNED_OUT_FOR_ENTITLEMENT = "Signed out of Switchboard Cloud: signed in with an entitlement token instead."


class AccountFeature(Feature):
    def __init__(self, editor: Editor, services: Services, learning: AutoFeedback | None = None) -> None:
        super().__init__(editor)
        self.services = services
        self._learning = learning
        self._token: str | None = os.environ.get(ENTITLEMENT_ENV) or None
        self._trusted: TrustedKeys | None = None
        self._verified: Entitlement | None = None
        self._meter: asyncio.Future[Meter] | None = None
        self._rollover: asyncio.TimerHandle | None = None
        self._period_seen: str | None = None
        self.on_plan_change: list[Callable[[], None]] = []
        self._publishing: asyncio.Future[UsageReport] | None = None
        self._gateway_report: UsageReport | None = None  # the gateway's last figures (signed in)
        # (account, period start, alerts known) of the gateway's last report: its new alerts are shown once.
        self._alerts_seen: tuple[str, str, int] | None = None
        self._refreshed_for_plan: str | None = None  # a report's plan the access token lacked, refreshed for
        self._plan_rechecked: float | None = None  # when a forbidden model last made it ask (monotonic)
        self._background: set[asyncio.Future[None]] = set()
        self._resumes: set[asyncio.Future[SignInResult]] = set()  # `signIn {refreshToken}` under way
        # Turns this process stores are its own to charge: the crash reconcile looks only at older ones.
        self._started_at = stored_now()
        if (session := self._session) is not None:
            session.on_credentials.append(self._credentials_changed)
            session.on_plan_change.append(self._hosted_plan_changed)
            session.on_ended.append(self._session_ended)

    def register(self) -> None:
        register_request(self.editor, methods.USAGE, self.usage)
        register_request(self.editor, methods.SET_OVERAGE, self.set_overage)
        register_request(self.editor, methods.SIGN_IN, self.sign_in)
        register_request(self.editor, methods.SIGN_OUT, self.sign_out)
        self.editor.feature(methods.ADOPT_REFRESH_TOKEN.method)(plain(self._adopt_refresh_token))

    # --- hosted mode --------------------------------------------------------------------------------

    @property
    def _session(self) -> GatewaySession | None:
        return self.services.upstream.gateway

    @property
    def hosted(self) -> bool:
        """Signed in to Switchboard Cloud: the plan, the charges and the figures are the gateway's."""
        return self.services.upstream.hosted

    def account_info(self) -> AccountInfo:
        session = self._session
        return session.account_info() if session is not None else AccountInfo()

    async def _hosted_report(self) -> UsageReport:
        from switchboard.hosted import errors
        from switchboard.hosted.gateway_http import GatewayRefused
        from switchboard.hosted.session import NotSignedIn, SignInFailed

        session = self._session
        assert session is not None
        try:
            report = await session.usage()
            await self._follow_plan(session, report)
        except GatewayRefused as refused:
            raise errors.refused(refused, self.entitlement().plan, signed_in=session.signed_in) from None
        except SignInFailed as failure:
            raise errors.unreachable(str(failure)) from None
        except NotSignedIn as ended:
            raise errors.sign_in_failed(SignInFailed("session_ended", str(ended))) from None
        report.account_info = session.account_info()
        self._gateway_report = report
        self._show_new_alerts(report)
        return report

    def _show_new_alerts(self, report: UsageReport) -> None:
        """The gateway's threshold alerts this report has and the account's previous one did not, shown once
        each (as the local ledger's are when a charge crosses a threshold). The first report of an account (at
        sign-in) only sets what is known: its alerts were shown when they were reached. Alerts come in
        threshold order (80 % before 100 %), so they are counted, not compared by text (the 100 % one's
        wording changes with the overage settings); fewer than before (a larger plan) count from there."""
        account, period = self.entitlement().account_key, report.period_start
        seen = self._alerts_seen
        if seen is None or seen[0] != account:
            known = len(report.alerts)
        elif seen[1] != period:
            known = 0  # a new month: its alerts are new
        else:
            known = seen[2]
        for alert in report.alerts[known:]:
            self.editor.show_message(alert, lsp.MessageType.Warning)
        self._alerts_seen = (account, period, len(report.alerts))

    async def _follow_plan(self, session: GatewaySession, report: UsageReport) -> None:
        """The gateway's report names another plan than the access token (changed there since the token was
        issued): refreshes at once, so the plan check and the models follow now rather than at the next
        refresh, minutes away (a refresh that brings another plan sends modelChanged and usageChanged).
        Once per plan the report names, so a gateway whose tokens lag its figures is not asked in a loop."""
        from switchboard.hosted.session import SESSION_ENDED, NotSignedIn

        token = session.entitlement
        if token is None or report.plan == token.plan:
            self._refreshed_for_plan = None
            return
        if self._refreshed_for_plan == report.plan:
            return
        self._refreshed_for_plan = report.plan
        log.info(
            "Switchboard Cloud reports plan %s, the access token says %s: refreshing", report.plan, token.plan
        )
        await session.refresh()
        if not session.signed_in:  # the refresh ended the session (as any refused refresh does)
            raise NotSignedIn(SESSION_ENDED)

    def _adopt_refresh_token(self, raw: Any) -> None:
        """Another window stored a newer refresh token of the shared session (never logged: a secret)."""
        try:
            params = parse_params(AdoptRefreshToken, raw)
        except InvalidParams as error:  # a notification has no answer: say so in the log, keep going
            log.warning("Ignored switchboard/adoptRefreshToken: %s", error)
            return
        session = self._session
        if session is not None and session.adopt_refresh_token(params.refresh_token):
            log.info("Adopted the refresh token another window stored")

    def _credentials_changed(self, refresh_token: str | None, reason: str | None) -> None:
        """The session rotated its refresh token (the client stores the new one) or ended."""
        params = CredentialsChanged(refresh_token=refresh_token, reason=reason)
        self.editor.notify(methods.CREDENTIALS_CHANGED.method, dump(params))
        if refresh_token is None:
            self._gateway_report = None
            self._plan_changed()
            self._publishing = asyncio.ensure_future(self.publish())

    def _session_ended(self, reason: str) -> None:
        """A running session ended (after credentialsChanged null): say why. A stored token that could not
        resume is only the signIn's error (and credentialsChanged's reason): the client says so itself."""
        self.editor.show_message(reason, lsp.MessageType.Warning)

    def _hosted_plan_changed(self) -> None:
        """A refreshed access token carries another plan (changed at the gateway): new figures, new models."""
        log.info("Switchboard Cloud changed the plan to %s", self.entitlement().plan)
        self._gateway_report = None
        self._plan_changed()
        self._publishing = asyncio.ensure_future(self.publish())

    def _plan_changed(self) -> None:
        self._verified = None
        for callback in self.on_plan_change:
            callback()

    # --- entitlement ------------------------------------------------------------------------------

    def use_token(self, token: object) -> None:
        """A token from initializationOptions (verified like any other); non-strings are ignored."""
        if isinstance(token, str) and token.strip():
            self._token = token.strip()
            self._verified = None

    def entitlement(self) -> Entitlement:
        """The verified entitlement, re-verified when the token or keys change and once it has expired.
        Signed in, the access token's (verified against the gateway's keys when it was issued)."""
        if (session := self._session) is not None and (hosted := session.entitlement) is not None:
            return hosted
        return self._local_entitlement()

    def _local_entitlement(self) -> Entitlement:
        """The pasted (or configured) entitlement's, whatever the session: the local ledger's own plan."""
        cached = self._verified
        if cached is not None and (cached.expires_at is None or utc_now() < cached.expires_at):
            return cached
        if self._trusted is None:
            self._trusted = load_trusted_keys(default_config_dir())
        self._verified = verify_entitlement(self._token, self._trusted)
        return self._verified

    def allows(self, model_id: str) -> bool:
        return plan_allows(self.entitlement().plan, model_id)

    @staticmethod
    def forbidden_reason(model_id: str) -> str:
        return forbidden_reason(model_id)

    async def meter(self) -> Meter:
        """The ledger, opened off the event loop on first use, after charging what a crash left unmetered."""
        if self._meter is None:
            self._meter = asyncio.ensure_future(self._open_ledger())
        return await asyncio.shield(self._meter)

    async def _open_ledger(self) -> Meter:
        """Opens the ledger, then walks the stored answers back from the newest, a page at a time, charging
        the ones the ledger has no record of, until a page needs nothing (earlier starts saw to the rest).

        Only answers the local ledger bills (`billed_by` local: never one Switchboard Cloud answered and
        charged, so a deleted ledger costs nothing), stored by earlier processes: this process's own turns
        are charged by this process once stored, whenever the ledger happens to open (a signed-in turn
        opens it after its answer is stored). They are charged to the local entitlement's account."""
        path = self.services.settings.ledger_db
        meter = await asyncio.to_thread(lambda: Meter(Ledger(path)))
        offset = 0
        while True:
            page = self.services.store.recent_billable_answers(
                limit=RECONCILE_PAGE, offset=offset, started_before=self._started_at
            )
            charged = await asyncio.to_thread(self._charge_unrecorded, meter, page)
            if charged == 0 or len(page) < RECONCILE_PAGE:
                return meter
            offset += RECONCILE_PAGE

    def _charge_unrecorded(self, meter: Meter, answers: list[BillableAnswer]) -> int:
        missing = meter.unrecorded([answer.turn_id for answer in answers])
        for answer in (a for a in reversed(answers) if a.turn_id in missing):
            log.warning("Charging turn %s, stored before a crash but never metered", answer.turn_id)
            meter.charge(
                answer.turn_id,
                self._local_entitlement(),
                model_id=answer.model_id,
                routed_model=concrete_id(CATALOG[answer.routed_model]),
                usage=answer.usage,
                workspace=answer.workspace,
                conversation_id=answer.conversation_id,
            )
        return len(missing)

    # --- metering, for the chat feature ------------------------------------------------------------

    async def recheck_plan(self, model_id: str) -> None:
        """Signed in, before a model is refused because the access token's plan forbids it: the plan may
        have changed at the gateway since the token was issued (an upgrade), so its report is fetched (at
        most every PLAN_RECHECK_SECONDS; it names the plan, which is then followed at once). A usage fetch,
        never a chat round trip."""
        if not self.hosted or self.allows(model_id):
            return
        now = time.monotonic()
        if self._plan_rechecked is not None and now - self._plan_rechecked < PLAN_RECHECK_SECONDS:
            return
        self._plan_rechecked = now
        try:
            await self._hosted_report()
        except SwitchboardError as error:  # the gateway cannot say now: the token's plan stands
            log.info("Could not ask Switchboard Cloud for the plan again: %s", error)

    async def check(self, model_id: str) -> Entitlement:
        """Raises 1001 (plan forbids the model) or 1002 (credits exhausted) before anything is routed."""
        await self.recheck_plan(model_id)
        entitlement = self.entitlement()
        if self.hosted:
            await self._check_hosted(entitlement, model_id)
            return entitlement
        await asyncio.to_thread((await self.meter()).check, entitlement, model_id)
        return entitlement

    async def _check_hosted(self, entitlement: Entitlement, model_id: str) -> None:
        """The check against the gateway's last report; an empty balance there is asked again before the
        turn is refused (credits bought, overage turned on elsewhere, a new month), once per turn. The plan
        (the access token's) is checked first: a forbidden model costs no round trip, even for the report."""
        from switchboard.hosted.check import check_turn

        require_plan_allows(get_plan(entitlement.plan), model_id)
        cached = self._gateway_report
        try:
            check_turn(entitlement, cached or await self._hosted_report(), model_id)
        except CreditsExhausted as refusal:
            if cached is None:
                raise
            try:
                report = await self._hosted_report()
            except SwitchboardError:  # the gateway cannot say now: the last figures stand
                raise refusal from None
            check_turn(entitlement, report, model_id)

    @staticmethod
    def price(model_id: str, usage: Usage) -> float:
        return float(credits_for(model_id, usage))

    @staticmethod
    def consumed(usage: Usage, streamed_text: str, output_reported: bool) -> Usage:
        return cancelled_usage(usage, streamed_text, output_reported=output_reported)

    async def charge(
        self,
        entitlement: Entitlement,
        turn_id: str,
        *,
        model_id: str,
        routed_model: ConcreteModelId,
        usage: Usage,
        workspace: str,
        conversation_id: str,
    ) -> Decimal:
        result = await asyncio.to_thread(
            (await self.meter()).charge,
            turn_id,
            entitlement,
            model_id=model_id,
            routed_model=routed_model,
            usage=usage,
            workspace=workspace,
            conversation_id=conversation_id,
        )
        await self._after_charge(entitlement, result)
        return result.credits

    async def record_uncharged(
        self,
        entitlement: Entitlement,
        turn_id: str,
        *,
        reason: str,
        model_id: str,
        routed_model: ConcreteModelId | None,
    ) -> None:
        await asyncio.to_thread(
            (await self.meter()).record_uncharged,
            turn_id,
            entitlement,
            reason=reason,
            model_id=model_id,
            routed_model=routed_model,
        )

    async def charged_by_gateway(
        self,
        entitlement: Entitlement,
        turn_id: str,
        *,
        credits: float | None,
        model_id: str,
        routed_model: ConcreteModelId | None,
        publish: bool = True,
    ) -> None:
        """A signed-in turn: the gateway charged it. The local ledger only notes that it did (so a crash
        reconciliation never charges it locally), and the figures are fetched from the gateway (unless
        `publish` is False: `settle_cut_turn` fetches them once the gateway has settled the turn)."""
        note = (
            f"charged by Switchboard Cloud: {credits} credits"
            if credits is not None
            else "answered through Switchboard Cloud (any charge is in its ledger)"
        )
        try:
            await self.record_uncharged(
                entitlement, turn_id, reason=note, model_id=model_id, routed_model=routed_model
            )
        except Exception:
            log.exception("Could not note turn %s in the local ledger", turn_id)
        # A session that ended during the turn sent usageChanged with the local figures when it ended: the
        # turn's entitlement is the dead session's, and local figures built from it would show its plan.
        if publish and self.hosted:
            await self.publish()

    def settle_cut_turn(
        self, turn_id: str, on_charge: Callable[[float], None], *, crashed: bool = False
    ) -> None:
        """A signed-in turn the user stopped, or one cut off mid-answer (`crashed`: the gateway died or the
        connection broke): its stream ended before the gateway's charge arrived. In the background (the
        request is answered at once), waits for the gateway to settle the turn, hands its figure to
        `on_charge` (the stored turn), then sends usageChanged with the gateway's totals."""
        task = asyncio.ensure_future(self._settle_cut_turn(turn_id, on_charge, crashed))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _settle_cut_turn(self, turn_id: str, on_charge: Callable[[float], None], crashed: bool) -> None:
        from switchboard.hosted.provider import parse_charge
        from switchboard.hosted.session import SETTLE_WAIT_SECONDS, SignInFailed

        session = self._session
        if session is None:
            return
        # A turn whose gateway died is settled by another replica's reaper once its reservation expires,
        # and the gateway may be unreachable meanwhile (restarting): ask for longer, through outages.
        deadline = time.monotonic() + (CRASHED_SETTLE_SECONDS if crashed else SETTLE_WAIT_SECONDS)
        try:
            settled = None
            while settled is None:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    break
                try:
                    settled = await session.settled_charge(turn_id, wait=wait)
                except SignInFailed as error:
                    if not crashed or error.reason != "unreachable":
                        raise
                    await asyncio.sleep(min(UNREACHABLE_PAUSE_SECONDS, max(0.0, wait)))
                    continue
                if not crashed:
                    break
            charge = parse_charge({"switchboard": settled}) if settled is not None else None
            if charge is None:
                log.warning("Switchboard Cloud has not settled cut-off turn %s yet", turn_id)
            else:
                on_charge(charge.credits)
            await self.publish()
        except Exception as error:  # the next usage fetch shows the gateway's figures anyway
            log.warning("Could not fetch the charge of cut-off turn %s: %s", turn_id, error)

    async def _after_charge(self, entitlement: Entitlement, result: ChargeResult) -> None:
        for alert in result.alerts:
            self.editor.show_message(alert, lsp.MessageType.Warning)
        await self.publish(entitlement)

    async def publish(self, entitlement: Entitlement | None = None) -> UsageReport:
        report = await self._report(entitlement)
        self.editor.notify(methods.USAGE_CHANGED.method, dump(report))
        return report

    async def _report(
        self, entitlement: Entitlement | None = None, workspace: str | None = None
    ) -> UsageReport:
        if self.hosted:
            report = await self._hosted_report()
        else:
            info = self.account_info()
            report = await asyncio.to_thread((await self.meter()).report, entitlement or self.entitlement())
            if self.hosted:  # a resumed session signed in meanwhile: this ledger's figures are stale already
                report = await self._hosted_report()
            else:
                report.account_info = info
        return await self._with_auto_for_you(report, workspace)

    # --- requests ----------------------------------------------------------------------------------

    async def usage(self, params: UsageParams) -> UsageReport:
        return await self._report(workspace=params.workspace_uri)

    async def _with_auto_for_you(self, report: UsageReport, workspace: str | None) -> UsageReport:
        """The report plus "Auto for you" for `workspace` (default: the editor's first folder), read off
        the event loop (SQLite may wait for another window's write lock)."""
        workspace = workspace or self.editor.default_workspace()
        if self._learning is None or workspace is None:
            return report
        # The store's times carry milliseconds; the period's start does not.
        start = report.period_start
        since = start.replace("Z", ".000Z") if "." not in start else start
        try:
            auto = await asyncio.to_thread(self._learning.month, workspace, since)
        except sqlite3.Error:  # the credits do not depend on the conversation store: report them anyway
            log.exception("Could not read Auto's figures for the usage report")
            return report
        return report.model_copy(update={"auto_for_you": auto})

    async def set_overage(self, params: SetOverageParams) -> UsageReport:
        entitlement = self.entitlement()
        if self.hosted:
            return await self._hosted_overage(params)
        meter = await self.meter()
        await asyncio.to_thread(meter.set_overage, entitlement, params.enabled, params.budget_usd)
        return await self.publish(entitlement)

    async def _hosted_overage(self, params: SetOverageParams) -> UsageReport:
        from switchboard.hosted import errors
        from switchboard.hosted.gateway_http import GatewayRefused
        from switchboard.hosted.session import NotSignedIn, SignInFailed

        session = self._session
        assert session is not None
        try:
            await session.set_overage(params.enabled, params.budget_usd)
        except GatewayRefused as refused:
            raise errors.refused(refused, self.entitlement().plan, signed_in=session.signed_in) from None
        except SignInFailed as failure:
            raise errors.unreachable(str(failure)) from None
        except NotSignedIn as ended:
            raise errors.sign_in_failed(SignInFailed("session_ended", str(ended))) from None
        return await self.publish()

    async def sign_in(self, params: SignInParams) -> SignInResult:
        if params.token is not None:
            return await self._sign_in_with_entitlement(params.token)
        if params.refresh_token is None:
            return await self._hosted_sign_in(params)
        # Noted before this handler first yields, so a chat read right behind it finds it (`resumed`).
        resume = asyncio.ensure_future(self._hosted_sign_in(params))
        self._resumes.add(resume)
        resume.add_done_callback(self._resumes.discard)
        return await resume

    async def resumed(self) -> None:
        """Before a chat: waits for the resumes of a stored session under way (at most RESUME_WAIT_SECONDS),
        so the chat goes where their outcome says. Until one ends this server is not signed in, and a chat
        it answered meanwhile would go to the own key and the local ledger. One still running by then
        refuses the chat (a retryable 1003), unless a session is held anyway."""
        running = await self._resumes_outlasting_the_wait()
        if running and not self.hosted:
            raise UpstreamFailed(
                RESUME_PENDING, UpstreamErrorData(status=None, type="timeout", retryable=True)
            )

    async def _resumes_outlasting_the_wait(self) -> set[asyncio.Future[SignInResult]]:
        """Waits for the resumes under way, at most RESUME_WAIT_SECONDS; those still running then."""
        if not self._resumes:
            return set()
        _, running = await asyncio.wait(set(self._resumes), timeout=RESUME_WAIT_SECONDS)
        return running

    async def _hosted_sign_in(self, params: SignInParams) -> SignInResult:
        from switchboard.hosted import errors
        from switchboard.hosted.session import SignInFailed

        session = self._session
        if session is None:
            raise errors.no_gateway(self.services.settings.gateway_url_refused)
        # A session held now stays until the new one is in hand (the session replaces it then).
        try:
            if params.refresh_token is not None:
                refresh_token = await session.resume(params.refresh_token)
            else:
                refresh_token = await session.device_sign_in(self._show_code)
        except SignInFailed as failure:
            raise errors.sign_in_failed(failure) from None
        log.info("Signed in to Switchboard Cloud: plan %s", self.entitlement().plan)
        self._gateway_report = None
        self._plan_changed()
        try:
            report = await self.publish()
        except SwitchboardError as error:
            # Signed in, but the gateway's figures did not come: not signed in here after all (nothing
            # shown could be right), and the rotated token goes to the client, which resumes with it later.
            log.warning("Signed in, but the gateway's usage did not come: %s", error)
            session.forget()
            self._plan_changed()
            message = f"Signed in, but Switchboard Cloud did not give this account's figures: {error}"
            failure = SignInFailed("unreachable", message)
            raise errors.sign_in_failed(failure) from None
        return SignInResult(usage=report, account=report.account_info, refresh_token=refresh_token)

    def _show_code(self, code: SignInCode) -> None:
        self.editor.notify(methods.SIGN_IN_CODE.method, dump(code))

    async def _sign_in_with_entitlement(self, token: str) -> SignInResult:
        """A pasted entitlement (offline, or a development token): local mode with that plan. A Switchboard
        Cloud session held ends (revoked at the gateway), and the client is told to delete its stored refresh
        token, as for a session that ended: else the next start would resume it over the pasted plan.

        A resume of the stored session under way ends first (as a chat waits for it): else it would sign in
        after this, over the pasted plan, and hand the client a token to store. One that outlasts
        RESUME_WAIT_SECONDS is cancelled: the pasted plan is what the user asked for last."""
        running = await self._resumes_outlasting_the_wait()
        for resume in running:
            resume.cancel()
        if running:
            await asyncio.wait(running)
        cancelled = bool(running)  # the stored token is still the client's: it must go too
        signed_in = (session := self._session) is not None and session.signed_in
        if session is not None and signed_in:
            await session.sign_out()
        if signed_in or cancelled:
            self._gateway_report = None
            ended = CredentialsChanged(refresh_token=None, reason=SIGNED_OUT_FOR_ENTITLEMENT)
            self.editor.notify(methods.CREDENTIALS_CHANGED.method, dump(ended))
        self._token = token.strip()
        self._trusted = None  # re-read the trusted keys: the user may have just added one
        self._verified = None
        entitlement = self.entitlement()
        log.info("Signed in: plan %s", entitlement.plan)
        self._plan_changed()
        report = await self.publish(entitlement)
        return SignInResult(usage=report, account=report.account_info, refresh_token=None)

    async def sign_out(self, _params: Empty) -> UsageReport:
        """Ends the gateway session (revoked there, best effort) and forgets its tokens: local mode."""
        if (session := self._session) is not None:
            await session.sign_out()
        self._gateway_report = None
        self._plan_changed()
        return await self.publish()

    # --- period rollover ----------------------------------------------------------------------------

    def schedule_rollover(self) -> None:
        """At the start of each month (UTC) the credits reset: tell the client.

        The timer runs on the event loop's monotonic clock, which stops while the machine sleeps and
        ignores changes of the wall clock, so it never waits longer than `PERIOD_CHECK_SECONDS` before
        comparing the wall clock's billing period with the one it last saw.
        """
        now = utc_now()
        self._period_seen = self._period_seen or period_of(now).key
        delay = min((period_of(now).end - now).total_seconds(), PERIOD_CHECK_SECONDS)
        self._rollover = asyncio.get_running_loop().call_later(max(delay, 0.05), self._check_period)

    def _check_period(self) -> None:
        period = period_of(utc_now()).key
        if period != self._period_seen:
            self._period_seen = period
            self._publishing = asyncio.ensure_future(self.publish())
        self.schedule_rollover()

    def close(self) -> None:
        if self._rollover is not None:
            self._rollover.cancel()
        for task in self._background:
            task.cancel()

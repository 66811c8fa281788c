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
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from lsprotocol import types as lsp

from switchboard.catalog import CATALOG, concrete_id
from switchboard.plans import (
    ChargeResult,
    Entitlement,
    Ledger,
    Meter,
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
from switchboard.protocol import methods
from switchboard.protocol.messages import (
    ConcreteModelId,
    SetOverageParams,
    SignInParams,
    Usage,
    UsageParams,
    UsageReport,
)
from switchboard.store import BillableAnswer

from .base import Feature, dump, register_request
from .host import Editor, Services

if TYPE_CHECKING:
    from .feedback import AutoFeedback

log = logging.getLogger(__name__)
ENTITLEMENT_ENV = "SWITCHBOARD_ENTITLEMENT"
PERIOD_CHECK_SECONDS = 60.0
RECONCILE_PAGE = 200


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

    def register(self) -> None:
        register_request(self.editor, methods.USAGE, self.usage)
        register_request(self.editor, methods.SET_OVERAGE, self.set_overage)
        register_request(self.editor, methods.SIGN_IN, self.sign_in)

    # --- entitlement ------------------------------------------------------------------------------

    def use_token(self, token: object) -> None:
        """A token from initializationOptions (verified like any other); non-strings are ignored."""
        if isinstance(token, str) and token.strip():
            self._token = token.strip()
            self._verified = None

    def entitlement(self) -> Entitlement:
        """The verified entitlement, re-verified when the token or keys change and once it has expired."""
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
        Every chat waits for this before it starts, so none of this process's own turns is in flight."""
        path = self.services.settings.ledger_db
        meter = await asyncio.to_thread(lambda: Meter(Ledger(path)))
        offset = 0
        while True:
            page = self.services.store.recent_billable_answers(limit=RECONCILE_PAGE, offset=offset)
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
                self.entitlement(),
                model_id=answer.model_id,
                routed_model=concrete_id(CATALOG[answer.routed_model]),
                usage=answer.usage,
                workspace=answer.workspace,
                conversation_id=answer.conversation_id,
            )
        return len(missing)

    # --- metering, for the chat feature ------------------------------------------------------------

    async def check(self, model_id: str) -> Entitlement:
        """Raises 1001 (plan forbids the model) or 1002 (credits exhausted) before anything is routed."""
        entitlement = self.entitlement()
        await asyncio.to_thread((await self.meter()).check, entitlement, model_id)
        return entitlement

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

    async def _after_charge(self, entitlement: Entitlement, result: ChargeResult) -> None:
        for alert in result.alerts:
            self.editor.show_message(alert, lsp.MessageType.Warning)
        await self.publish(entitlement)

    async def publish(self, entitlement: Entitlement | None = None) -> UsageReport:
        report = await self._report(entitlement or self.entitlement(), None)
        self.editor.notify(methods.USAGE_CHANGED.method, dump(report))
        return report

    # --- requests ----------------------------------------------------------------------------------

    async def usage(self, params: UsageParams) -> UsageReport:
        return await self._report(self.entitlement(), params.workspace_uri)

    async def _report(self, entitlement: Entitlement, workspace: str | None) -> UsageReport:
        """The ledger's report, plus "Auto for you" for `workspace` (default: the editor's first folder)."""
        report = await asyncio.to_thread((await self.meter()).report, entitlement)
        workspace = workspace or self.editor.default_workspace()
        if self._learning is None or workspace is None:
            return report
        # The store's times carry milliseconds; the period's start does not.
        start = report.period_start
        since = start.replace("Z", ".000Z") if "." not in start else start
        try:
            auto = self._learning.month(workspace, since)
        except sqlite3.Error:  # the credits do not depend on the conversation store: report them anyway
            log.exception("Could not read Auto's figures for the usage report")
            return report
        return report.model_copy(update={"auto_for_you": auto})

    async def set_overage(self, params: SetOverageParams) -> UsageReport:
        entitlement = self.entitlement()
        meter = await self.meter()
        await asyncio.to_thread(meter.set_overage, entitlement, params.enabled, params.budget_usd)
        return await self.publish(entitlement)

    async def sign_in(self, params: SignInParams) -> UsageReport:
        self._token = params.token.strip()
        self._trusted = None  # re-read the trusted keys: the user may have just added one
        self._verified = None
        entitlement = self.entitlement()
        log.info("Signed in: plan %s", entitlement.plan)
        for callback in self.on_plan_change:
            callback()
        return await self.publish(entitlement)

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

"""The meter: may this turn run, what did it cost, and how much is left this month.

Amounts inside are integer hundredths of a credit (`_h`), so every comparison is exact. A turn that starts
with credits left may finish past zero: the overshoot is overage when overage is on (up to the budget),
otherwise it is absorbed and the next turn is refused. The overage budget is a hard cap on what is billed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from switchboard.catalog.models import is_known_model
from switchboard.protocol.errors import CreditsExhausted, InvalidParams, PlanForbidsModel
from switchboard.protocol.messages import (
    ConcreteModelId,
    CreditsExhaustedData,
    DailyModelCredits,
    DailyUsage,
    InvalidParamsData,
    ModelUsage,
    OverageInfo,
    PlanForbidsData,
    Usage,
    UsageReport,
)

from . import wording
from .catalog import OVERAGE_USD_PER_CREDIT, PlanSpec, allowed_plans, get_plan
from .credits import CENT, credits_for, from_hundredths, to_hundredths
from .entitlement import Entitlement
from .errors import OverageNotAvailable
from .ledger import AccountSettings, Ledger, LedgerView, LedgerWriter, ModelTotals, Totals, TurnRecord
from .period import Clock, Period, iso_utc, period_of, utc_now

ALERT_THRESHOLDS = (80, 100)


@dataclass(frozen=True)
class ChargeResult:
    turn_id: str
    credits: Decimal
    overage_credits: Decimal
    charged: bool
    reason: str | None = None
    # True when the turn was already in the ledger: this is its first result, nothing was added.
    duplicate: bool = False
    # Thresholds (percent of the included credits) crossed for the first time this period, and their alerts.
    crossed: tuple[int, ...] = ()
    alerts: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Overage:
    """The overage terms in force for an account on a plan."""

    enabled: bool
    budget_usd: Decimal | None

    @classmethod
    def of(cls, plan: PlanSpec, settings: AccountSettings) -> _Overage:
        budget = None if settings.budget_cents is None else Decimal(settings.budget_cents) / 100
        return cls(plan.overage_available and settings.overage_enabled, budget)


class Meter:
    def __init__(self, ledger: Ledger, clock: Clock = utc_now) -> None:
        self._ledger = ledger
        self._clock = clock

    # --- enforcement ---------------------------------------------------------------------------------

    def unrecorded(self, turn_ids: list[str]) -> set[str]:
        """The turns the ledger has no record of (charged or not)."""
        with self._ledger.read() as view:
            return {turn_id for turn_id in turn_ids if view.turn(turn_id) is None}

    def check(self, entitlement: Entitlement, model_id: str) -> None:
        """Raise if the turn may not start: the plan forbids the model, or credits (and overage) are gone."""
        plan = get_plan(entitlement.plan)
        require_plan_allows(plan, model_id)
        period = period_of(self._clock())
        with self._ledger.read() as view:
            used = view.totals(entitlement.account_key, period)
            overage = _Overage.of(plan, view.settings(entitlement.account_key))
        if used.credits < _included_h(plan):
            return
        if not overage.enabled:
            raise _exhausted(plan, wording.credits_exhausted(plan.id, period))
        budget = overage.budget_usd
        if budget is not None and used.overage >= _usd_to_hundredths(budget):
            raise _exhausted(plan, wording.budget_reached(budget, period), overage_enabled=True)

    # --- recording -----------------------------------------------------------------------------------

    def charge(
        self,
        turn_id: str,
        entitlement: Entitlement,
        *,
        model_id: str,
        routed_model: ConcreteModelId,
        usage: Usage,
        workspace: str | None = None,
        conversation_id: str | None = None,
    ) -> ChargeResult:
        """Charge a finished (or cancelled) turn once; a repeated `turn_id` returns the first charge."""
        credits_h = to_hundredths(credits_for(model_id, usage))
        plan, now = get_plan(entitlement.plan), self._clock()
        period, account = period_of(now), entitlement.account_key
        with self._ledger.write() as tx:
            if (existing := tx.turn(turn_id)) is not None:
                return _result(existing, duplicate=True)
            before = tx.totals(account, period)
            overage = _Overage.of(plan, tx.settings(account))
            overage_h = _overage_part(credits_h, before, _included_h(plan), overage)
            record = TurnRecord(
                turn_id=turn_id,
                account=account,
                plan=plan.id,
                model_id=model_id,
                routed_model=routed_model,
                usage=usage,
                credits=credits_h,
                overage=overage_h,
                charged=True,
                reason=None,
                at=now,
                workspace=workspace,
                conversation_id=conversation_id,
            )
            tx.insert(record)
            alerts = _mark_alerts(tx, plan, period, before.credits + credits_h, overage, now, account)
        return _result(record, alerts=alerts)

    def record_uncharged(
        self,
        turn_id: str,
        entitlement: Entitlement,
        *,
        reason: str,
        model_id: str,
        routed_model: ConcreteModelId | None = None,
        usage: Usage | None = None,
        workspace: str | None = None,
        conversation_id: str | None = None,
    ) -> ChargeResult:
        """Record a turn that costs nothing (failed before any output, or rejected upstream), once."""
        record = TurnRecord(
            turn_id=turn_id,
            account=entitlement.account_key,
            plan=entitlement.plan,
            model_id=model_id,
            routed_model=routed_model,
            usage=usage or Usage(),
            credits=0,
            overage=0,
            charged=False,
            reason=reason,
            at=self._clock(),
            workspace=workspace,
            conversation_id=conversation_id,
        )
        with self._ledger.write() as tx:
            if (existing := tx.turn(turn_id)) is not None:
                return _result(existing, duplicate=True)
            tx.insert(record)
        return _result(record)

    # --- settings and reports ------------------------------------------------------------------------

    def set_overage(
        self, entitlement: Entitlement, enabled: bool, budget_usd: float | Decimal | None
    ) -> UsageReport:
        """Turn overage on or off, with an optional USD budget (rounded down to cents); returns the report."""
        plan = get_plan(entitlement.plan)
        if enabled and not plan.overage_available:
            raise OverageNotAvailable(plan.id)
        settings = AccountSettings(enabled, _budget_cents(budget_usd))
        with self._ledger.write() as tx:
            tx.save_settings(entitlement.account_key, settings)
        return self.report(entitlement)

    def report(self, entitlement: Entitlement) -> UsageReport:
        plan, now = get_plan(entitlement.plan), self._clock()
        period, account = period_of(now), entitlement.account_key
        with self._ledger.read() as view:
            used = view.totals(account, period)
            overage = _Overage.of(plan, view.settings(account))
            by_model = view.by_model(account, period)
            daily = _daily(view, account, period, now)
            alerts = view.alerts(account, period.key)
        return UsageReport(
            plan=plan.id,
            plan_name=plan.name,
            plan_reason=entitlement.reason,
            account=entitlement.account,
            period_start=iso_utc(period.start),
            period_end=iso_utc(period.end),
            included_credits=plan.monthly_credits,
            used_credits=_float(used.credits),
            remaining_credits=_float(max(0, _included_h(plan) - used.credits)),
            overage=_overage_info(plan, overage, used),
            by_model=[_model_usage(row) for row in by_model],
            daily=daily,
            alerts=alerts,
        )


# --- policy ------------------------------------------------------------------------------------------


def _included_h(plan: PlanSpec) -> int:
    return plan.monthly_credits * 100


def require_plan_allows(plan: PlanSpec, model_id: str) -> None:
    """Raises `-32602` for an unknown model and `1001` for one the plan does not include."""
    if not is_known_model(model_id):
        raise InvalidParams(f"Unknown model {model_id!r}.", InvalidParamsData(model_id=model_id))
    if not plan.allows(model_id):
        data = PlanForbidsData(model_id=model_id, plan=plan.id, allowed_plans=allowed_plans(model_id))
        raise PlanForbidsModel(wording.plan_forbids(model_id, plan.id), data)


def _exhausted(plan: PlanSpec, message: str, *, overage_enabled: bool = False) -> CreditsExhausted:
    """1002 with no credits left; `overage_enabled`: overage is on and its budget is what ran out."""
    data = CreditsExhaustedData(
        plan=plan.id,
        remaining_credits=0.0,
        overage_available=plan.overage_available,
        overage_enabled=overage_enabled,
    )
    return CreditsExhausted(message, data)


def _overage_part(credits_h: int, before: Totals, included_h: int, overage: _Overage) -> int:
    """The part of a charge past the included credits, capped by what is left of the budget."""
    if not overage.enabled:
        return 0
    part = min(credits_h, max(0, before.credits + credits_h - included_h))
    if overage.budget_usd is None:
        return part
    return min(part, max(0, _usd_to_hundredths(overage.budget_usd) - before.overage))


def _usd_to_hundredths(usd: Decimal) -> int:
    """How many hundredths of a credit `usd` of overage buys (rounded down)."""
    return to_hundredths((usd / OVERAGE_USD_PER_CREDIT).quantize(CENT, rounding=ROUND_FLOOR))


def _mark_alerts(
    tx: LedgerWriter,
    plan: PlanSpec,
    period: Period,
    used_h: int,
    overage: _Overage,
    now: datetime,
    account: str,
) -> dict[int, str]:
    """The alerts this charge earns that were not sent yet this period (now marked sent), by threshold."""
    alerts: dict[int, str] = {}
    for threshold in ALERT_THRESHOLDS:
        # threshold% of the included hundredths is threshold × monthly credits.
        if used_h < threshold * plan.monthly_credits:
            continue
        message = wording.threshold_alert(threshold, plan.id, period, overage.enabled, overage.budget_usd)
        if tx.mark_alert(account, period.key, threshold, message, now):
            alerts[threshold] = message
    return alerts


def _budget_cents(budget_usd: float | Decimal | None) -> int | None:
    if budget_usd is None:
        return None
    cents = (Decimal(str(budget_usd)) * 100).to_integral_value(rounding=ROUND_FLOOR)
    if cents < 1:
        raise InvalidParams("The overage budget must be at least $0.01.", InvalidParamsData())
    return int(cents)


# --- report pieces -----------------------------------------------------------------------------------


def _float(hundredths: int) -> float:
    return float(from_hundredths(hundredths))


def _result(
    record: TurnRecord, *, duplicate: bool = False, alerts: dict[int, str] | None = None
) -> ChargeResult:
    alerts = alerts or {}
    return ChargeResult(
        turn_id=record.turn_id,
        credits=from_hundredths(record.credits),
        overage_credits=from_hundredths(record.overage),
        charged=record.charged,
        reason=record.reason,
        duplicate=duplicate,
        crossed=tuple(alerts),
        alerts=tuple(alerts.values()),
    )


def _overage_info(plan: PlanSpec, overage: _Overage, used: Totals) -> OverageInfo:
    credits = from_hundredths(used.overage)
    return OverageInfo(
        available=plan.overage_available,
        enabled=overage.enabled,
        budget_usd=float(overage.budget_usd) if overage.budget_usd is not None else None,
        credits=float(credits),
        cost_usd=float(credits * OVERAGE_USD_PER_CREDIT),
    )


def _model_usage(row: ModelTotals) -> ModelUsage:
    return ModelUsage.model_validate(
        {
            "model_id": row.model_id,
            "routed_model": row.routed_model,
            "turns": row.turns,
            "credits": _float(row.credits),
        }
    )


def _daily(view: LedgerView, account: str, period: Period, now: datetime) -> list[DailyUsage]:
    """One entry per day of the period so far, zeros included, so a chart needs no gap-filling."""
    charged = view.daily(account, period)
    return [_day(day.isoformat(), charged.get(day.isoformat(), {})) for day in period.days_until(now)]


def _day(date: str, models: dict[tuple[str, str], int]) -> DailyUsage:
    by_model = [
        DailyModelCredits.model_validate({"model_id": m, "routed_model": r, "credits": _float(credits)})
        for (m, r), credits in models.items()
    ]
    return DailyUsage(date=date, credits=_float(sum(models.values())), by_model=by_model)

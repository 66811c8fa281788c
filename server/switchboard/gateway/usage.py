"""`GET /v1/switchboard/usage` and `POST /v1/switchboard/overage`: the authoritative figures.

The report has the shape of the language server's `switchboard/usage` (`protocol.messages.UsageReport`),
with the credits held by turns in flight as `reserved`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from switchboard.plans import wording
from switchboard.plans.catalog import OVERAGE_USD_PER_CREDIT, PLANS
from switchboard.plans.credits import from_hundredths
from switchboard.plans.period import Period, iso_utc, period_of
from switchboard.protocol.messages import (
    AccountInfo,
    DailyModelCredits,
    DailyUsage,
    ModelUsage,
    OverageInfo,
    SetOverageParams,
    UsageReport,
)

from . import accounts
from .accounts import Account
from .errors import GatewayRefusal, invalid_request
from .service import Gateway, account_endpoint

Conn = AsyncConnection[DictRow]
ALERT_THRESHOLDS = (80, 100)


@account_endpoint()
async def usage_endpoint(request: Request, gateway: Gateway, account: Account) -> Response:
    async with gateway.pool.connection() as conn:
        report = await usage_report(conn, account)
    return JSONResponse(report.model_dump(mode="json", by_alias=True))


@account_endpoint(scope="billing")
async def overage_endpoint(request: Request, gateway: Gateway, account: Account) -> Response:
    params = _overage_params(await request.body())
    if params.enabled and not account.spec.overage_available:
        allowed = [plan.id for plan in PLANS.values() if plan.overage_available]
        details = {"plan": account.spec.id, "allowed_plans": allowed}
        refusal = wording.overage_for_paid_plans()
        raise GatewayRefusal(403, "overage_not_available", refusal, details=details)
    budget_cents = _budget_cents(params.budget_usd)
    async with gateway.pool.connection() as conn:
        updated = await accounts.set_overage(conn, account.id, params.enabled, budget_cents)
        report = await usage_report(conn, updated)
    return JSONResponse(report.model_dump(mode="json", by_alias=True))


def _overage_params(raw: bytes) -> SetOverageParams:
    try:
        return SetOverageParams.model_validate_json(raw or b"{}")
    except ValidationError as error:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_input=False)]
        raise invalid_request("Send {enabled: bool, budgetUsd?: number}: " + "; ".join(problems)) from None


def _budget_cents(budget_usd: float | None) -> int | None:
    if budget_usd is None:
        return None
    cents = int((Decimal(str(budget_usd)) * 100).to_integral_value(rounding=ROUND_FLOOR))
    if cents < 1:
        raise invalid_request("The overage budget must be at least $0.01.")
    return cents


async def usage_report(conn: Conn, account: Account, now: datetime | None = None) -> UsageReport:
    moment = now or datetime.now(UTC)
    period = period_of(moment)
    plan = account.spec
    cursor = await conn.execute(
        "SELECT used_h, overage_h, reserved_h FROM account_periods WHERE account_id = %s AND period = %s",
        (account.id, period.key),
    )
    balance = await cursor.fetchone() or {"used_h": 0, "overage_h": 0, "reserved_h": 0}
    used_h, overage_h = balance["used_h"], balance["overage_h"]
    included_h = plan.monthly_credits * 100
    return UsageReport(
        plan=plan.id,
        plan_name=plan.name,
        plan_reason=f"{plan.name} for {account.email} (Switchboard Cloud)",
        account=account.id,
        period_start=iso_utc(period.start),
        period_end=iso_utc(period.end),
        included_credits=plan.monthly_credits,
        used_credits=_credits(used_h),
        # What the plan still includes: its credits less those used that were not overage (after a move to a
        # larger plan mid-month, credits billed as overage before do not use up the new plan's).
        remaining_credits=_credits(max(0, included_h - (used_h - overage_h))),
        reserved=_credits(balance["reserved_h"]),
        overage=OverageInfo(
            available=plan.overage_available,
            enabled=account.overage_on,
            budget_usd=float(account.budget_usd) if account.budget_usd is not None else None,
            credits=_credits(overage_h),
            cost_usd=float(from_hundredths(overage_h) * OVERAGE_USD_PER_CREDIT),
        ),
        by_model=await _by_model(conn, account.id, period),
        daily=await _daily(conn, account.id, period, moment),
        alerts=_alerts(account, period, used_h - overage_h),
        # who is signed in, for the editors' status bar; the language server adds where (its gateway URL)
        account_info=AccountInfo(mode="hosted", email=account.email),
    )


async def _by_model(conn: Conn, account_id: str, period: Period) -> list[ModelUsage]:
    cursor = await conn.execute(
        """
        SELECT model_id, routed_model, count(*) AS turns, sum(credits_h) AS credits_h FROM turns
        WHERE account_id = %s AND period = %s AND status IN ('complete', 'cut')
        GROUP BY model_id, routed_model ORDER BY model_id, routed_model
        """,
        (account_id, period.key),
    )
    return [
        ModelUsage.model_validate(
            {
                "model_id": row["model_id"],
                "routed_model": row["routed_model"],
                "turns": row["turns"],
                "credits": _credits(int(row["credits_h"])),
            }
        )
        for row in await cursor.fetchall()
    ]


async def _daily(conn: Conn, account_id: str, period: Period, now: datetime) -> list[DailyUsage]:
    cursor = await conn.execute(
        """
        SELECT (settled_at AT TIME ZONE 'UTC')::date AS day, model_id, routed_model,
               sum(credits_h) AS credits_h
        FROM turns WHERE account_id = %s AND period = %s AND status IN ('complete', 'cut')
        GROUP BY 1, 2, 3
        """,
        (account_id, period.key),
    )
    by_day: dict[str, list[DailyModelCredits]] = {}
    totals: dict[str, int] = {}
    for row in await cursor.fetchall():
        day = row["day"].isoformat()
        credits_h = int(row["credits_h"])
        totals[day] = totals.get(day, 0) + credits_h
        by_day.setdefault(day, []).append(
            DailyModelCredits.model_validate(
                {
                    "model_id": row["model_id"],
                    "routed_model": row["routed_model"],
                    "credits": _credits(credits_h),
                }
            )
        )
    days = [day.isoformat() for day in period.days_until(now)]
    return [
        DailyUsage(date=day, credits=_credits(totals.get(day, 0)), by_model=by_day.get(day, []))
        for day in days
    ]


def _alerts(account: Account, period: Period, included_used_h: int) -> list[str]:
    """The usage alerts in force: each threshold (percent of the included credits) that the credits used
    against them (not overage) passed this period."""
    plan = account.spec
    return [
        wording.threshold_alert(threshold, plan.id, period, account.overage_on, account.budget_usd)
        for threshold in ALERT_THRESHOLDS
        if included_used_h >= threshold * plan.monthly_credits
    ]


def _credits(hundredths: int) -> float:
    return float(from_hundredths(hundredths))

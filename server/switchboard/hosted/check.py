"""The check before routing a signed-in turn: the plan from the verified access token and the credits from
the gateway's last report, so a forbidden model or an empty balance never costs a round trip.

The gateway checks both again (and reserves the credits), so a stale report can only let a turn through
to a refusal there, never past it.
"""

from __future__ import annotations

from decimal import Decimal

from switchboard.plans import Entitlement, period_of, utc_now, wording
from switchboard.plans.catalog import get_plan
from switchboard.plans.meter import require_plan_allows
from switchboard.protocol.errors import CreditsExhausted
from switchboard.protocol.messages import CreditsExhaustedData, UsageReport


def check_turn(entitlement: Entitlement, report: UsageReport | None, model_id: str) -> None:
    """Raises 1001 (the plan forbids the model) or 1002 (no credits and no overage left)."""
    plan = get_plan(entitlement.plan)
    require_plan_allows(plan, model_id)
    if report is None or report.remaining_credits > 0:
        return
    overage, period = report.overage, period_of(utc_now())
    on = overage.available and overage.enabled
    data = CreditsExhaustedData(
        plan=plan.id, remaining_credits=0.0, overage_available=plan.overage_available, overage_enabled=on
    )
    if not on:
        raise CreditsExhausted(wording.credits_exhausted(plan.id, period), data)
    if overage.budget_usd is not None and overage.cost_usd >= overage.budget_usd:
        raise CreditsExhausted(wording.budget_reached(Decimal(str(overage.budget_usd)), period), data)

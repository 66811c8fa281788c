"""What the meter tells the user: each message says what happened and what to do about it."""

from __future__ import annotations

from decimal import Decimal

from switchboard.protocol.messages import PlanId

from .catalog import OVERAGE_USD_PER_CREDIT, UPGRADES, forbidden_reason, get_plan
from .period import Period

OVERAGE_PRICE = f"${OVERAGE_USD_PER_CREDIT} a credit"


def usd(amount: Decimal) -> str:
    return f"${amount:,.2f}"


def _used_all(plan: PlanId) -> str:
    spec = get_plan(plan)
    return f"You've used all {spec.monthly_credits:,} {spec.name} credits this month."


def _upgrade(plan: PlanId) -> str:
    if plan not in UPGRADES:
        return ""
    better = get_plan(UPGRADES[plan])
    return f"; upgrade to {better.name} for {better.monthly_credits:,} a month"


def plan_forbids(model_id: str, plan: PlanId) -> str:
    return (
        f"{forbidden_reason(model_id)}; you're on {get_plan(plan).name}. "
        "Upgrade, or pick another model (Auto picks the best one your plan allows)."
    )


def credits_exhausted(plan: PlanId, period: Period) -> str:
    """No credits left and no overage to fall back on."""
    if get_plan(plan).overage_available:
        return (
            f"{_used_all(plan)} Enable overage to keep going at {OVERAGE_PRICE}, "
            f"or wait until they reset on {period.reset_label}."
        )
    return f"{_used_all(plan)} They reset on {period.reset_label}{_upgrade(plan)}."


def budget_reached(budget_usd: Decimal, period: Period) -> str:
    return (
        f"You've reached your {usd(budget_usd)} overage budget for this month. Raise the budget to keep "
        f"going, or wait until your credits reset on {period.reset_label}."
    )


def overage_for_paid_plans() -> str:
    pro = get_plan("pro")
    return f"Overage is for paid plans: upgrade to {pro.name} to keep going past your credits."


def threshold_alert(
    threshold: int, plan: PlanId, period: Period, overage_on: bool, budget: Decimal | None
) -> str:
    spec = get_plan(plan)
    if threshold < 100:
        return (
            f"You've used {threshold}% of your {spec.monthly_credits:,} {spec.name} credits this month. "
            f"They reset on {period.reset_label}."
        )
    if not overage_on:
        return credits_exhausted(plan, period)
    cap = f", up to your {usd(budget)} budget" if budget is not None else ""
    return f"{_used_all(plan)} Overage is on: you keep going at {OVERAGE_PRICE}{cap}."

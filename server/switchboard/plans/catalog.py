"""The four plans: monthly credits, overage terms and which models each may use."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from switchboard.catalog.models import CATALOG, get_model
from switchboard.protocol.messages import PlanId

OVERAGE_USD_PER_CREDIT = Decimal("0.04")


@dataclass(frozen=True)
class PlanSpec:
    id: PlanId
    name: str
    monthly_credits: int
    overage_available: bool
    # Models this plan may not use; every other catalog model is allowed.
    excluded_models: frozenset[str] = frozenset()

    @property
    def overage_usd_per_credit(self) -> Decimal | None:
        return OVERAGE_USD_PER_CREDIT if self.overage_available else None

    def allows(self, model_id: str) -> bool:
        return model_id in CATALOG and model_id not in self.excluded_models


FREE = PlanSpec("free", "Free", 50, overage_available=False, excluded_models=frozenset({"claude-opus-4.5"}))
PRO = PlanSpec("pro", "Pro", 1_000, overage_available=True)
PRO_PLUS = PlanSpec("pro_plus", "Pro+", 2_000, overage_available=True)
POWER = PlanSpec("power", "Power", 10_000, overage_available=True)

PLANS: dict[str, PlanSpec] = {plan.id: plan for plan in (FREE, PRO, PRO_PLUS, POWER)}
# The plan to suggest when a user outgrows one (Power has nowhere to go).
UPGRADES: dict[PlanId, PlanId] = {"free": "pro", "pro": "pro_plus", "pro_plus": "power"}


def is_known_plan(plan_id: str) -> bool:
    return plan_id in PLANS


def get_plan(plan_id: str) -> PlanSpec:
    """The spec of a known plan id (raises `KeyError` otherwise)."""
    return PLANS[plan_id]


def allowed_plans(model_id: str) -> list[PlanId]:
    """The plans that may use `model_id`, cheapest first (empty for an unknown model)."""
    return [plan.id for plan in PLANS.values() if plan.allows(model_id)]


def plan_allows(plan: str, model_id: str) -> bool:
    return plan in PLANS and PLANS[plan].allows(model_id)


def forbidden_reason(model_id: str) -> str:
    """Why a model is out of reach, e.g. "Claude Opus 4.5 needs Pro, Pro+ or Power"."""
    names = [PLANS[plan].name for plan in allowed_plans(model_id)]
    return f"{get_model(model_id).name} needs {join_or(names)}"


def join_or(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]

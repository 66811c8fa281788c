"""The one refusal the protocol's error types don't cover: turning on overage on a plan without it."""

from __future__ import annotations

from switchboard.protocol.errors import ErrorCode, SwitchboardError
from switchboard.protocol.messages import PlanId, Wire

from .catalog import PLANS
from .wording import overage_for_paid_plans


class OverageNotAvailableData(Wire):
    """Like `PlanForbidsData` without a model: the plan, and the plans that do offer overage."""

    plan: PlanId
    allowed_plans: list[PlanId]


class OverageNotAvailable(SwitchboardError):
    """Code 1001 (the plan forbids it): overage is for paid plans."""

    code = ErrorCode.PLAN_FORBIDS_MODEL

    def __init__(self, plan: PlanId) -> None:
        allowed: list[PlanId] = [spec.id for spec in PLANS.values() if spec.overage_available]
        super().__init__(overage_for_paid_plans(), OverageNotAvailableData(plan=plan, allowed_plans=allowed))

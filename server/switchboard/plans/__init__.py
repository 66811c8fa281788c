"""Plans and credits: what each plan includes, who is entitled to which, and what each turn costs."""

from .catalog import (
    OVERAGE_USD_PER_CREDIT,
    PLANS,
    PlanSpec,
    allowed_plans,
    forbidden_reason,
    get_plan,
    is_known_plan,
    plan_allows,
)
from .credits import (
    base_credits,
    cancelled_usage,
    credits_for,
    estimate_credits,
    from_hundredths,
    multiplier,
    to_hundredths,
)
from .entitlement import NO_ENTITLEMENT, Entitlement, resolve_entitlement, verify_entitlement
from .errors import OverageNotAvailable, OverageNotAvailableData
from .ledger import Ledger, TurnRecord
from .meter import ALERT_THRESHOLDS, ChargeResult, Meter, require_plan_allows
from .period import Clock, Period, period_of, utc_now
from .trust import TrustedKey, TrustedKeys, default_config_dir, load_trusted_keys

__all__ = [
    "ALERT_THRESHOLDS",
    "NO_ENTITLEMENT",
    "OVERAGE_USD_PER_CREDIT",
    "PLANS",
    "ChargeResult",
    "Clock",
    "Entitlement",
    "Ledger",
    "Meter",
    "OverageNotAvailable",
    "OverageNotAvailableData",
    "Period",
    "PlanSpec",
    "TrustedKey",
    "TrustedKeys",
    "TurnRecord",
    "allowed_plans",
    "base_credits",
    "cancelled_usage",
    "credits_for",
    "default_config_dir",
    "estimate_credits",
    "forbidden_reason",
    "from_hundredths",
    "get_plan",
    "is_known_plan",
    "load_trusted_keys",
    "multiplier",
    "period_of",
    "plan_allows",
    "require_plan_allows",
    "resolve_entitlement",
    "to_hundredths",
    "utc_now",
    "verify_entitlement",
]

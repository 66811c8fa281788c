"""Plans and credits: what each plan includes, who is entitled to which, and what each turn costs.

The language server's own pieces (the local `ledger`, the `meter`, the JSON-RPC `errors`) are imported from
their modules, not re-exported here: the hosted gateway imports this package, and they would load pygls and
lsprotocol into every replica (about 20 MB of memory and 0.4 s of start-up it never uses)."""

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
from .period import Clock, Period, period_of, utc_now
from .trust import TrustedKey, TrustedKeys, default_config_dir, load_trusted_keys

__all__ = [
    "NO_ENTITLEMENT",
    "OVERAGE_USD_PER_CREDIT",
    "PLANS",
    "Clock",
    "Entitlement",
    "Period",
    "PlanSpec",
    "TrustedKey",
    "TrustedKeys",
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
    "resolve_entitlement",
    "to_hundredths",
    "utc_now",
    "verify_entitlement",
]

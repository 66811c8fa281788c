"""Auto's router: an escalation model over what the ask asks, plus plan, cache and fallback rules
(see docs/router.md)."""

from switchboard.routing.features import RouteFeatures
from switchboard.routing.policy import (
    AUTO_MODELS,
    BUSY_STATUSES,
    auto_fallback,
    is_busy,
    next_fallback,
    stronger_model,
)
from switchboard.routing.reasons import busy_reason
from switchboard.routing.router import (
    DEFAULT_PREFERENCE,
    PREFERENCES,
    NoRoutableModelError,
    Preference,
    RouteDecision,
    RouteInput,
    Router,
)

__all__ = [
    "AUTO_MODELS",
    "BUSY_STATUSES",
    "DEFAULT_PREFERENCE",
    "PREFERENCES",
    "NoRoutableModelError",
    "Preference",
    "RouteDecision",
    "RouteFeatures",
    "RouteInput",
    "Router",
    "auto_fallback",
    "busy_reason",
    "is_busy",
    "next_fallback",
    "stronger_model",
]

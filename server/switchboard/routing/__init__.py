"""Auto's router: an escalation model over what the ask asks, plus plan, cache and fallback rules
(see docs/router.md)."""

from switchboard.routing.features import RouteFeatures
from switchboard.routing.policy import AUTO_MODELS, next_fallback, stronger_model
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
    "DEFAULT_PREFERENCE",
    "PREFERENCES",
    "NoRoutableModelError",
    "Preference",
    "RouteDecision",
    "RouteFeatures",
    "RouteInput",
    "Router",
    "next_fallback",
    "stronger_model",
]

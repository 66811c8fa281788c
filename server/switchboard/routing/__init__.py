"""Auto's router: a learned difficulty model plus plan, cache and fallback rules (see docs/router.md)."""

from switchboard.routing.features import RouteFeatures
from switchboard.routing.policy import AUTO_MODELS, ThresholdShift, next_fallback, stronger_model
from switchboard.routing.router import NoRoutableModelError, RouteDecision, RouteInput, Router

__all__ = [
    "AUTO_MODELS",
    "NoRoutableModelError",
    "RouteDecision",
    "RouteFeatures",
    "RouteInput",
    "Router",
    "ThresholdShift",
    "next_fallback",
    "stronger_model",
]

"""Plan-aware helpers around a routing decision: model order, fallbacks, "stronger"."""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from switchboard.protocol.messages import ConcreteModelId

HAIKU: Final = "claude-haiku-4.5"
SONNET_45: Final = "claude-sonnet-4.5"
SONNET_40: Final = "claude-sonnet-4.0"
OPUS: Final = "claude-opus-4.5"

# What Auto may answer with, cheapest first. Never Opus.
AUTO_MODELS: tuple[ConcreteModelId, ...] = (HAIKU, SONNET_45, SONNET_40)
# Capability tiers: the two Sonnets are one tier (same price, same cache economics).
TIER: dict[str, int] = {HAIKU: 0, SONNET_40: 1, SONNET_45: 1, OPUS: 2}

# When a model is overloaded: the other model of its class first, then the other class. Never Opus.
_FALLBACKS: dict[str, tuple[ConcreteModelId, ...]] = {
    SONNET_45: (SONNET_40, HAIKU),
    SONNET_40: (SONNET_45, HAIKU),
    HAIKU: (SONNET_45, SONNET_40),
    OPUS: (SONNET_45, SONNET_40),
}
# "Retry with a stronger model": the next one up that the plan allows (Opus included: the user asked).
_STRONGER: dict[str, tuple[ConcreteModelId, ...]] = {
    HAIKU: (SONNET_45, SONNET_40, OPUS),
    SONNET_40: (SONNET_45, OPUS),
    SONNET_45: (OPUS,),
    OPUS: (),
}


def auto_candidates(allowed: Collection[str]) -> list[ConcreteModelId]:
    return [m for m in AUTO_MODELS if m in allowed]


def auto_model(model: str | None, candidates: Collection[ConcreteModelId]) -> ConcreteModelId | None:
    """`model` as one of the candidates, or None when it is not one of them."""
    for candidate in candidates:
        if candidate == model:
            return candidate
    return None


def strong_choice(candidates: Collection[str]) -> ConcreteModelId:
    """Sonnet 4.5, else Sonnet 4.0, else Haiku (candidates is non-empty)."""
    for model in (SONNET_45, SONNET_40, HAIKU):
        if model in candidates:
            return model
    raise ValueError("no Auto model in the candidates")


def cheap_choice(candidates: Collection[str]) -> ConcreteModelId:
    return HAIKU if HAIKU in candidates else strong_choice(candidates)


# An upstream answer that says the model is busy rather than the turn wrong: rate-limited or overloaded.
BUSY_STATUSES: Final = (429, 529)


def is_busy(status: int | None, error_type: str | None) -> bool:
    """Whether an upstream refusal means the model is busy (429, 529 or an `overloaded_error`)."""
    return status in BUSY_STATUSES or error_type == "overloaded_error"


def auto_fallback(model: str, allowed: Collection[str], tried: Collection[str]) -> ConcreteModelId | None:
    """The model Auto falls back to when `model` is busy: `next_fallback` among Auto's models of `allowed`
    (the plan's, narrowed by the user's list). The one rule the language server (local mode) and the gateway
    (signed in) apply."""
    return next_fallback(model, auto_candidates(allowed), tried)


def next_fallback(model: str, allowed: Collection[str], tried: Collection[str]) -> ConcreteModelId | None:
    """The model to try when `model` is overloaded: Sonnet 4.5 → 4.0 → Haiku 4.5; Haiku → Sonnet 4.5."""
    for candidate in _FALLBACKS.get(model, ()):
        if candidate in allowed and candidate not in tried and candidate != model:
            return candidate
    return None


def stronger_model(model: str, allowed: Collection[str]) -> ConcreteModelId | None:
    """The next model up that the plan allows, for "Retry with a stronger model" (None at the top)."""
    return next((m for m in _STRONGER.get(model, ()) if m in allowed), None)

"""Plan-aware helpers around a routing decision: model order, fallbacks, "stronger", the per-user shift."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
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


def next_fallback(model: str, allowed: Collection[str], tried: Collection[str]) -> ConcreteModelId | None:
    """The model to try when `model` is overloaded: Sonnet 4.5 → 4.0 → Haiku 4.5; Haiku → Sonnet 4.5."""
    for candidate in _FALLBACKS.get(model, ()):
        if candidate in allowed and candidate not in tried and candidate != model:
            return candidate
    return None


def stronger_model(model: str, allowed: Collection[str]) -> ConcreteModelId | None:
    """The next model up that the plan allows, for "Retry with a stronger model" (None at the top)."""
    return next((m for m in _STRONGER.get(model, ()) if m in allowed), None)


@dataclass(frozen=True)
class ThresholdShift:
    """Per-user counters of "retry with a stronger model" events and routed turns, and the shift they imply.

    The shift is a share of traffic (0.1 ≈ ten percentage points more requests to Sonnet); it grows with the
    user's retry rate, smoothed by `PRIOR_TURNS` so one early retry does not swing it, and is capped at
    `MAX_SHIFT`.
    Counters are halved when the window fills, so old behaviour fades. Plain ints: the server persists them.
    """

    retries: int = 0
    routed_turns: int = 0

    PRIOR_TURNS = 10
    SHIFT_PER_RETRY_RATE = 1.0
    MAX_SHIFT = 0.2
    WINDOW_TURNS = 100

    @property
    def shift(self) -> float:
        rate = self.retries / (self.routed_turns + self.PRIOR_TURNS)
        return min(self.MAX_SHIFT, self.SHIFT_PER_RETRY_RATE * rate)

    def after_routed_turn(self) -> ThresholdShift:
        return self._windowed(self.retries, self.routed_turns + 1)

    def after_retry(self) -> ThresholdShift:
        return self._windowed(self.retries + 1, self.routed_turns)

    def _windowed(self, retries: int, routed_turns: int) -> ThresholdShift:
        if routed_turns >= self.WINDOW_TURNS:
            return ThresholdShift(retries // 2, routed_turns // 2)
        return ThresholdShift(min(retries, routed_turns + self.PRIOR_TURNS), routed_turns)

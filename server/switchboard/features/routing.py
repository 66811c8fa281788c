"""Auto's choices for a turn: which model answers, which steps in when it is busy, which is stronger.

The decisions live in `switchboard.routing` (a learned router); this module only gathers what it needs
from the conversation and the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from switchboard.catalog import CATALOG, ModelSpec
from switchboard.protocol.messages import ContextItem
from switchboard.store import StoredTurn

# Fallback order when a model is busy: a model of the same class first, then the other one.
FALLBACKS: dict[str, tuple[str, ...]] = {
    "claude-sonnet-4.5": ("claude-sonnet-4.0", "claude-haiku-4.5"),
    "claude-sonnet-4.0": ("claude-sonnet-4.5", "claude-haiku-4.5"),
    "claude-haiku-4.5": ("claude-sonnet-4.5", "claude-sonnet-4.0"),
    "claude-opus-4.5": ("claude-sonnet-4.5", "claude-sonnet-4.0"),
}
STRONGER: dict[str, tuple[str, ...]] = {
    "claude-haiku-4.5": ("claude-sonnet-4.5", "claude-sonnet-4.0", "claude-opus-4.5"),
    "claude-sonnet-4.0": ("claude-sonnet-4.5", "claude-opus-4.5"),
    "claude-sonnet-4.5": ("claude-opus-4.5",),
    "claude-opus-4.5": (),
}
AUTO_CHOICES = ("claude-haiku-4.5", "claude-sonnet-4.5", "claude-sonnet-4.0")


@dataclass(frozen=True)
class AutoChoice:
    model: ModelSpec
    reason: str


@dataclass(frozen=True)
class TurnFacts:
    """What Auto looks at: the prompt, its context, and the conversation so far."""

    prompt: str
    context: list[ContextItem]
    history: list[StoredTurn]
    retries: int


class AutoRouting:
    def choose(self, facts: TurnFacts, allowed: list[str]) -> AutoChoice:
        candidates = [model for model in AUTO_CHOICES if model in allowed]
        default = CATALOG[candidates[1] if len(candidates) > 1 else candidates[0]]
        return AutoChoice(default, f"Auto → {default.name}")

    @staticmethod
    def fallback(model_id: str, allowed: list[str], tried: list[str], *, auto: bool) -> ModelSpec | None:
        for candidate in FALLBACKS.get(model_id, ()):
            if candidate in allowed and candidate not in tried and (not auto or candidate in AUTO_CHOICES):
                return CATALOG[candidate]
        return None

    @staticmethod
    def stronger(model_id: str, allowed: list[str]) -> ModelSpec | None:
        return next((CATALOG[m] for m in STRONGER.get(model_id, ()) if m in allowed), None)


def last_answer(history: list[StoredTurn]) -> StoredTurn | None:
    return next((t for t in reversed(history) if t.role == "assistant" and t.routed_model), None)


def seconds_since(timestamp: str) -> float:
    then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return (datetime.now(UTC) - then).total_seconds()

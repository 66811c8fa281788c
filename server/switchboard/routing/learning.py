"""Auto's online learning: what a user's feedback on an Auto answer says, and how it moves their threshold.

Pure functions over plain values; the server stores the labels and the shift (`features/feedback.py`), and
docs/router.md ("Learning online") gives the reasoning behind every number here.

A label belongs to one Auto answer and is recomputed from scratch whenever something about that answer
changes (its rating, a retry of it, the next message after it), so the same event twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from .policy import TIER

Rating = Literal["up", "down"]
Label = Literal["should_have_escalated", "should_not_have_escalated", "weak_positive"]
# What produced the label, for the "Auto for you" line.
Cause = Literal[
    "thumbs_down",  # on a Haiku answer
    "stronger_retry",  # "retry with a stronger model" on a Haiku answer
    "switch_up",  # the next message went to a dearer model the user chose
    "cheaper_correction",  # thumbs-down on a Sonnet answer, then a retry or next message on a cheaper model
    "thumbs_up",
    "moved_on",  # the next message went to Auto again, without a thumbs-down
]
FollowUpKind = Literal["retry", "next"]

# Shift steps, in share points of traffic (+0.04 ≈ four percentage points more requests to Sonnet).
STEP: Final[dict[Cause, float]] = {
    "thumbs_down": 0.04,
    "stronger_retry": 0.04,
    "switch_up": 0.04,
    "cheaper_correction": -0.03,
    "thumbs_up": -0.01,
    "moved_on": -0.001,
}
# A weak positive on a Sonnet answer says the escalation was fine, not that the share should move.
WEAK_ON_SONNET: Final = 0.0
# Each Auto turn in the workspace multiplies the shift by this (half-life ≈ 34 Auto turns).
DECAY_PER_TURN: Final = 0.98
MIN_SHIFT: Final = -0.10
MAX_SHIFT: Final = 0.20
# Below this size the shift is reported as neutral ("at your preference").
NEUTRAL_BAND: Final = 0.01


@dataclass(frozen=True)
class FollowUp:
    """What came right after an answer in its conversation: a retry of it, or the next message."""

    kind: FollowUpKind
    model_id: str  # the model asked for ("auto" or a concrete model)


@dataclass(frozen=True)
class Judgement:
    label: Label
    cause: Cause
    delta: float


def judge(routed_model: str, rating: Rating | None, follow_up: FollowUp | None) -> Judgement | None:
    """The label an Auto answer from `routed_model` earns; None when it says nothing about the threshold."""
    answered = TIER.get(routed_model)
    if answered is None:
        return None
    asked = TIER.get(follow_up.model_id) if follow_up and follow_up.model_id != "auto" else None
    dearer = asked is not None and asked > answered
    cheaper = asked is not None and asked < answered
    if answered == 0:  # Haiku answered
        if rating == "down":
            return _judged("should_have_escalated", "thumbs_down")
        if follow_up is not None and dearer:
            cause: Cause = "stronger_retry" if follow_up.kind == "retry" else "switch_up"
            return _judged("should_have_escalated", cause)
    elif answered == 1 and rating == "down":  # a Sonnet answered, and the user did not like it
        return _judged("should_not_have_escalated", "cheaper_correction") if cheaper else None
    if rating == "down" or (follow_up is not None and (dearer or cheaper)):
        return None  # a complaint, or a model change, that moving the threshold would not answer
    if rating == "up":
        return _judged("weak_positive", "thumbs_up", sonnet=answered > 0)
    if follow_up is not None and follow_up.kind == "next":
        return _judged("weak_positive", "moved_on", sonnet=answered > 0)
    return None


def _judged(label: Label, cause: Cause, *, sonnet: bool = False) -> Judgement:
    return Judgement(label, cause, WEAK_ON_SONNET if sonnet else STEP[cause])


def decayed(shift: float, turns_since: int) -> float:
    return shift * DECAY_PER_TURN ** max(0, turns_since)


def bounded(shift: float) -> float:
    return max(MIN_SHIFT, min(MAX_SHIFT, shift))


def direction(shift: float) -> Literal["stronger", "cheaper", "neutral"]:
    if shift > NEUTRAL_BAND:
        return "stronger"
    if shift < -NEUTRAL_BAND:
        return "cheaper"
    return "neutral"

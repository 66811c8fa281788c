"""Short human reasons for a routing decision, naming the signal that decided, e.g. "Security review of code
or configuration → Claude Sonnet 4.5" or "Local or mechanical edit → Claude Haiku 4.5"."""

from __future__ import annotations

from collections.abc import Collection

from switchboard.catalog.models import CATALOG
from switchboard.routing.features import RouteFeatures
from switchboard.routing.policy import HAIKU, SONNET_40, SONNET_45

# What each escalation signal is called in a reason (docs/router.md lists them).
ESCALATION_LABELS: dict[str, str] = {
    "design": "Multi-step design or architecture",
    "security": "Security review",
    "security_in_code": "Security review of code or configuration",
    "concurrency": "Concurrency or memory-ordering reasoning",
    "algorithm": "Hard algorithmic reasoning",
    "whole_context": "Reasoning across the attached context",
    "wide_ask": "Reasoning across the attached context",
    "structural": "Cross-cutting change",
    "care": "Change that must keep behaviour exactly",
    "systemic": "Diagnosis with no pointer to the cause",
    "log_ask_words": "Long, detailed request",
    "wording": "Worded like requests that need deeper reasoning",
    "meaning": "Reads like requests that need deeper reasoning",
    "escalated_conversation": "Long conversation that already needed Sonnet",
    "thinking_on_hard_ask": "Extended thinking on hard reasoning",
    "stronger_retry": "Earlier retry with a stronger model",
    "question": "Question a stronger model answers better",
}
# Why a turn stays on Haiku, from the strongest signal against escalating.
STAY_LABELS: dict[str, str] = {
    "bounded_design": "Small, bounded design or plan",
    "mechanical": "Local or mechanical edit",
    "error_pasted": "Error that points at its cause",
    "large_context": "Large attachment, local ask",
    "short": "Short request",
    "below_bar": "No signal strong enough to escalate",
    "question": "Question Claude Haiku 4.5 answers as well",
}
# Diffuse parts of the logit: they can tip a decision, but "a signal spoke, too weakly" needs a named signal.
DIFFUSE = ("log_ask_words", "wording", "meaning")
SHORT_ASK_WORDS = 12
LARGE_CONTEXT_CHARS = 6_000


def model_name(model: str) -> str:
    return CATALOG[model].name


def busy_reason(busy: str, instead: str) -> str:
    """The route reason of a turn another model answers because `busy` was overloaded or rate-limited."""
    return f"{model_name(busy)} is busy → {model_name(instead)} answers instead"


def deciding_signal(features: RouteFeatures, wants_strong: bool) -> str:
    """The signal with the largest part of the logit in the direction that won. Towards Sonnet a named
    signal comes before the diffuse parts (length, wording, meaning): since round 7 the meaning part often
    outweighs any one signal, and "Security review" tells the user more than "reads like"."""
    parts = features.contributions
    if wants_strong:
        pushing = {name: value for name, value in parts.items() if name in ESCALATION_LABELS and value > 0}
        named = {name: value for name, value in pushing.items() if name not in DIFFUSE}
        ranked = named or pushing
        return max(ranked, key=lambda name: ranked[name]) if ranked else "log_ask_words"
    holding = {name: value for name, value in parts.items() if name in STAY_LABELS and value < 0}
    if holding:
        return min(holding, key=lambda name: holding[name])
    spoke = [name for name, value in parts.items() if value > 0 and name in ESCALATION_LABELS]
    if any(name not in DIFFUSE for name in spoke):
        return "below_bar"  # a signal spoke, too weakly: "short" or "large attachment" would hide it
    if features.context.chars >= LARGE_CONTEXT_CHARS or features.context.files >= 2:
        return "large_context"
    return "short" if features.ask.ask_words <= SHORT_ASK_WORDS else "below_bar"


def _plan_note(
    model: str, wants_strong: bool, candidates: Collection[str], user_models: Collection[str] | None
) -> str:
    """Why the choice differs from what the ask wanted: the plan, or the user's own list of Auto models."""

    def missing(other: str) -> str:
        if user_models is not None and other not in user_models:
            return f"{model_name(other)} isn't in your Auto models"
        return f"{model_name(other)} isn't on your plan"

    if wants_strong and model == HAIKU:
        if user_models is not None and not any(m in user_models for m in (SONNET_45, SONNET_40)):
            return " (the strongest of your Auto models)"
        return " (the strongest model your plan allows for Auto)"
    if wants_strong and model == SONNET_40 and SONNET_45 not in candidates:
        return f" ({missing(SONNET_45)})"
    if not wants_strong and model != HAIKU:
        return f" ({missing(HAIKU)})"
    return ""


def choice_reason(
    model: str,
    wants_strong: bool,
    signal: str,
    candidates: Collection[str],
    user_models: Collection[str] | None = None,
) -> str:
    label = (ESCALATION_LABELS if wants_strong else STAY_LABELS)[signal]
    return f"{label} → {model_name(model)}{_plan_note(model, wants_strong, candidates, user_models)}"


def stay_reason(model: str, *, for_cache: bool) -> str:
    if for_cache:
        return f"Staying on {model_name(model)} to keep its prompt cache warm"
    return f"Borderline request → staying on {model_name(model)}"

"""Short human reasons for a routing decision, e.g. "Multi-file refactor → Claude Sonnet 4.5"."""

from __future__ import annotations

from collections.abc import Collection

from switchboard.catalog.models import CATALOG
from switchboard.routing.features import RouteFeatures
from switchboard.routing.policy import HAIKU, SONNET_40, SONNET_45

LONG_PROMPT_CHARS = 2_000
SHORT_PROMPT_CHARS = 200


def model_name(model: str) -> str:
    return CATALOG[model].name


def _hard_kind(f: RouteFeatures) -> str:
    s, files = f.signals, f.context.files
    if s.refactor:
        return "Multi-file refactor" if files >= 2 else "Refactor"
    if s.design:
        return "Design question"
    if files >= 2:
        return "Question across several files"
    if s.proof:
        return "Proof or derivation"
    if s.debug:
        return "Tricky debugging"
    if s.reasoning:
        return "Question that needs careful reasoning"
    if s.code or f.context.has_code:
        return "Complex coding task"
    if f.prompt_chars >= LONG_PROMPT_CHARS:
        return "Long, detailed request"
    return "Harder question"


def _easy_kind(f: RouteFeatures) -> str:
    if f.signals.small_talk:
        return "Small talk"
    if f.signals.code or f.context.has_code:
        return "Small code question"
    if f.context.files == 1:
        return "Quick question about one file"
    if f.prompt_chars <= SHORT_PROMPT_CHARS:
        return "Short factual question" if f.signals.question else "Short request"
    return "Straightforward request"


def _plan_note(model: str, wants_strong: bool, candidates: Collection[str]) -> str:
    if wants_strong and model == HAIKU:
        return " (the strongest model your plan allows for Auto)"
    if wants_strong and model == SONNET_40 and SONNET_45 not in candidates:
        return " (Claude Sonnet 4.5 isn't on your plan)"
    if not wants_strong and model != HAIKU:
        return " (Claude Haiku 4.5 isn't on your plan)"
    return ""


def choice_reason(
    model: str, wants_strong: bool, features: RouteFeatures, candidates: Collection[str]
) -> str:
    kind = _hard_kind(features) if wants_strong else _easy_kind(features)
    return f"{kind} → {model_name(model)}{_plan_note(model, wants_strong, candidates)}"


def stay_reason(model: str, *, for_cache: bool) -> str:
    if for_cache:
        return f"Staying on {model_name(model)} to keep its prompt cache warm"
    return f"Borderline request → staying on {model_name(model)}"

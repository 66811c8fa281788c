"""Auto's choices for a turn: which model answers, which steps in when it is busy, which is stronger.

The decisions live in `switchboard.routing` (a learned router, see docs/router.md); this module only
gathers what it needs from the conversation, the plan and the user's history of retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from switchboard.catalog import CATALOG, ModelSpec
from switchboard.protocol.messages import ContextItem
from switchboard.providers.base import AutoHints
from switchboard.routing import (
    AUTO_MODELS,
    DEFAULT_PREFERENCE,
    Preference,
    RouteInput,
    Router,
    auto_fallback,
    next_fallback,
    stronger_model,
)
from switchboard.store import StoredTurn
from switchboard.tokens import estimate_tokens


@dataclass(frozen=True)
class AutoChoice:
    model: ModelSpec
    reason: str


@dataclass(frozen=True)
class TurnFacts:
    """What Auto looks at: the prompt, its context, the conversation so far, the threshold shift learnt
    from the user's feedback (features/feedback.py), the preference, and the turn's thinking budget."""

    prompt: str
    context: list[ContextItem]
    history: list[StoredTurn]
    shift: float = 0.0
    thinking_budget: int | None = None
    preference: Preference = DEFAULT_PREFERENCE
    user_models: list[str] | None = None  # the user's allow-list for Auto (already applied to `allowed`)


class AutoRouting:
    @staticmethod
    def warm_up() -> None:
        """Reads the router's artifact ahead of the first chat (a few milliseconds, once per process)."""
        Router.load()

    @staticmethod
    def choose(facts: TurnFacts, allowed: list[str]) -> AutoChoice:
        decision = Router.load().decide(route_input(facts, allowed))
        return AutoChoice(CATALOG[decision.model], decision.reason)

    @staticmethod
    def fallback(model_id: str, allowed: list[str], tried: list[str], *, auto: bool) -> ModelSpec | None:
        model = auto_fallback(model_id, allowed, tried) if auto else next_fallback(model_id, allowed, tried)
        return CATALOG[model] if model else None

    @staticmethod
    def stronger(model_id: str, allowed: list[str]) -> ModelSpec | None:
        model = stronger_model(model_id, allowed)
        return CATALOG[model] if model else None


def auto_hints(facts: TurnFacts) -> AutoHints:
    """What a gateway that routes Auto needs from this server: the user's preference and shift, and the
    conversation's last answer (the gateway looks up its model and time in its own ledger)."""
    last = _last_answer(facts.history)
    route = route_input(facts, list(AUTO_MODELS))
    return AutoHints(
        preference=facts.preference,
        threshold_shift=route.threshold_shift,
        last_turn_id=last.id if last else None,
        sonnet_answers=route.sonnet_answers,
        stronger_retries=route.stronger_retries,
        models=tuple(facts.user_models) if facts.user_models is not None else None,
    )


def route_input(facts: TurnFacts, allowed: list[str]) -> RouteInput:
    last = _last_answer(facts.history)
    return RouteInput(
        prompt=facts.prompt,
        context=[(item.uri, item.text, item.language_id) for item in facts.context],
        history_turns=len(facts.history),
        history_tokens=sum(estimate_tokens(turn.text) for turn in facts.history),
        last_model=last.routed_model if last else None,
        last_answer_at=_epoch(last.created_at) if last else None,
        allowed=allowed,
        threshold_shift=facts.shift,
        preference=facts.preference,
        sonnet_answers=sum(1 for t in facts.history if t.role == "assistant" and _is_sonnet(t.routed_model)),
        stronger_retries=len({t.retry_of for t in facts.history if t.retry_of}),
        thinking_budget=facts.thinking_budget,
        user_models=facts.user_models,
    )


def _is_sonnet(model: str | None) -> bool:
    return model is not None and model.startswith("claude-sonnet")


def _last_answer(history: list[StoredTurn]) -> StoredTurn | None:
    return next((t for t in reversed(history) if t.role == "assistant" and t.routed_model and t.text), None)


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()

"""Auto's per-request decision: what the ask needs, the user's preference, the plan, and the prompt cache.

    router = Router.load()              # the committed artifact, read once (lazy, cached)
    decision = router.decide(RouteInput(prompt="…", allowed=plan_models, last_model=…, last_answer_at=…))
    decision.model, decision.reason     # "claude-haiku-4.5", "Local or mechanical edit → Claude Haiku 4.5"

1. Escalation: p = sigmoid(the escalation model's logit), the probability that the turn needs Claude Sonnet
   4.5 rather than Claude Haiku 4.5, from what the ask asks (`ask.py`), what it asks of the attached context
   and the conversation so far (`escalation.py`). A self-contained question (no attachment, no code: an exam
   item, a word problem; `questions.py`) has its ask's parts replaced by the question model's one part, so
   its ask is read only for what the conversation's parts and rules need.
2. Threshold: the preference's (economy / balanced / quality, from the artifact), moved by the user's shift
   (a share of traffic, clamped).
3. Choice: p ≥ threshold → Sonnet 4.5 (Sonnet 4.0 when 4.5 is not allowed), else Haiku 4.5; never Opus.
   A conversation rule overrides the threshold: after an explicit "retry with a stronger model", or in a long
   conversation that already escalated, every turn but a mechanical edit goes to the strong model.
4. Stickiness mid-conversation: moving up happens whenever the turn needs it; moving down needs p below the
   threshold by a band (`HYSTERESIS_SHARE` of traffic) *and* a positive expected saving once the lost
   prompt cache is paid for;
   Sonnet 4.0 ↔ 4.5 (same price) never switch while the cache is warm.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import get_args

from switchboard.protocol.messages import AutoPreference, ConcreteModelId
from switchboard.routing.ask import read_ask, read_question_ask
from switchboard.routing.context import ContextEntry, summarize_context
from switchboard.routing.escalation import (
    ARTIFACT_NAME,
    MEANING_ARTIFACT_NAME,
    Conversation,
    EscalationModel,
    conversation_features,
    conversation_rule,
    learned_features,
    logistic,
    read_escalation,
)
from switchboard.routing.features import RouteFeatures
from switchboard.routing.policy import (
    AUTO_MODELS,
    TIER,
    auto_candidates,
    auto_model,
    cheap_choice,
    strong_choice,
)
from switchboard.routing.pricing import CACHE_TTL_SECONDS, switch_saving_usd
from switchboard.routing.questions import ARTIFACT_NAME as QUESTION_ARTIFACT
from switchboard.routing.questions import (
    QuestionModel,
    QuestionSignal,
    question_contributions,
    read_question_model,
)
from switchboard.routing.reasons import choice_reason, deciding_signal, stay_reason

Preference = AutoPreference
PREFERENCES: tuple[Preference, ...] = get_args(Preference)
DEFAULT_PREFERENCE: Preference = "balanced"
# Shifts and the hysteresis band are shares of traffic (of the suite's validation half), not probabilities:
# a shift of 0.10 sends about ten percentage points more of typical requests to Sonnet.
HYSTERESIS_SHARE = 0.10  # moving down needs p below the threshold of (default share + this)
MAX_SHIFT = 0.25
MIN_SHARE, MAX_SHARE = 0.02, 0.98
CHARS_PER_TOKEN = 4


class NoRoutableModelError(ValueError):
    """The plan allows none of the models Auto can route to."""


@dataclass(frozen=True)
class RouteInput:
    prompt: str
    context: Sequence[ContextEntry] = ()
    history_turns: int = 0
    history_tokens: int = 0
    last_model: str | None = None
    last_answer_at: float | None = None  # time.time() of the last answer; ignored when cache_warm is given
    cache_warm: bool | None = None
    allowed: Collection[str] = AUTO_MODELS
    threshold_shift: float = 0.0  # positive: Sonnet more often (learnt per workspace, see learning.py)
    now: float | None = None  # time.time() when None
    preference: Preference = DEFAULT_PREFERENCE
    sonnet_answers: int = 0  # earlier answers in this conversation given by a Sonnet
    stronger_retries: int = 0  # earlier "retry with a stronger model" in this conversation
    thinking_budget: int | None = None  # this turn's extended-thinking budget
    # The user's own list of Auto's models, already applied to `allowed`; only the reasons' wording uses it.
    user_models: Collection[str] | None = None


@dataclass(frozen=True)
class RouteDecision:
    model: ConcreteModelId
    reason: str
    probability: float  # P(the turn needs Sonnet 4.5), from the escalation model
    threshold: float  # the effective threshold (the preference's, after the user's shift)
    features: RouteFeatures
    wants_strong: bool  # what the escalation model alone asks for
    signal: str | None = None  # the signal that decided (see reasons.deciding_signal)
    kept_for_cache: bool = False  # stayed on the last model although the difficulty pointed elsewhere
    switch_saving_usd: float | None = field(default=None)  # of moving down, when it was considered


def cache_is_warm(route: RouteInput) -> bool:
    if route.last_model is None or (route.history_tokens <= 0 and route.history_turns <= 0):
        return False
    if route.cache_warm is not None:
        return route.cache_warm
    if route.last_answer_at is None:
        return False
    now = time.time() if route.now is None else route.now
    return 0.0 <= now - route.last_answer_at < CACHE_TTL_SECONDS


class Router:
    def __init__(self, model: EscalationModel, questions: QuestionModel | None = None) -> None:
        self.model = model
        self.questions = questions

    @classmethod
    def load(cls) -> Router:
        """The router with the committed artifact (read from package data once, then cached)."""
        return _packaged_router()

    def features(self, route: RouteInput) -> RouteFeatures:
        question = self._question(route)
        ask = read_ask(route.prompt) if question is None else read_question_ask(route.prompt)
        context = summarize_context(route.context)
        conversation = Conversation(
            turns=route.history_turns,
            sonnet_answers=route.sonnet_answers,
            stronger_retries=route.stronger_retries,
            thinking_budget=route.thinking_budget,
        )
        if question is None:
            values = learned_features(ask, context) | conversation_features(ask, conversation)
            contributions = self.model.contributions(values, ask.terms, ask.text)
        else:
            values = conversation_features(ask, conversation)
            contributions = question_contributions(self.model.contributions(values), question)
        return RouteFeatures(
            prompt_chars=len(route.prompt),
            context=context,
            ask=ask,
            contributions=contributions,
            logit=self.model.logit(contributions),
            history_turns=route.history_turns,
            history_tokens=route.history_tokens,
            cache_warm=cache_is_warm(route),
            conversation_rule=conversation_rule(ask, conversation),
        )

    def _question(self, route: RouteInput) -> QuestionSignal | None:
        """The question model's signal for a self-contained question (no attachment), else None."""
        if self.questions is None or route.context:
            return None
        return self.questions.read(route.prompt)

    def base_threshold(self, preference: Preference) -> float:
        return self.model.thresholds[preference]

    def strong_share(self, shift: float, preference: Preference = DEFAULT_PREFERENCE) -> float:
        """The share of the suite's validation half sent to Sonnet at `preference` plus the user's shift."""
        bounded = max(-MAX_SHIFT, min(MAX_SHIFT, shift))
        base = self.model.share_at(self.base_threshold(preference))
        return max(MIN_SHARE, min(MAX_SHARE, base + bounded))

    def threshold(self, shift: float, preference: Preference = DEFAULT_PREFERENCE) -> float:
        if shift == 0:
            return self.base_threshold(preference)
        return self.model.threshold_at(self.strong_share(shift, preference))

    def down_threshold(self, shift: float, preference: Preference = DEFAULT_PREFERENCE) -> float:
        """Below this a turn is clearly cheap (the hysteresis band under the threshold)."""
        return self.model.threshold_at(self.strong_share(shift, preference) + HYSTERESIS_SHARE)

    def decide(self, route: RouteInput) -> RouteDecision:
        candidates = auto_candidates(route.allowed)
        if not candidates:
            raise NoRoutableModelError("the plan allows none of Auto's models")
        features = self.features(route)
        probability = logistic(features.logit)
        threshold = self.threshold(route.threshold_shift, route.preference)
        rule = features.conversation_rule
        wants_strong = rule is not None or probability >= threshold
        target = strong_choice(candidates) if wants_strong else cheap_choice(candidates)
        signal = rule or deciding_signal(features, wants_strong)
        decision = RouteDecision(
            model=target,
            reason=choice_reason(target, wants_strong, signal, candidates, route.user_models),
            probability=probability,
            threshold=threshold,
            features=features,
            wants_strong=wants_strong,
            signal=signal,
        )
        last = auto_model(route.last_model, candidates)
        if last is None or last == target or TIER[target] > TIER[last]:
            return decision
        return self._sticky(decision, last, route)

    def _sticky(self, decision: RouteDecision, last: ConcreteModelId, route: RouteInput) -> RouteDecision:
        """`decision` would move sideways or down from `last`: keep `last` unless moving pays."""
        warm = decision.features.cache_warm
        if TIER[decision.model] == TIER[last]:
            return decision if not warm else _kept(decision, last, warm=True, saving=None)
        new_tokens = (len(route.prompt) + decision.features.context.chars) // CHARS_PER_TOKEN
        saving = switch_saving_usd(last, decision.model, route.history_tokens, new_tokens, cache_warm=warm)
        clearly_cheap = decision.probability < self.down_threshold(route.threshold_shift, route.preference)
        if clearly_cheap and saving > 0:
            return replace(decision, switch_saving_usd=saving)
        return _kept(decision, last, warm=warm and clearly_cheap, saving=saving)


def _kept(
    decision: RouteDecision, model: ConcreteModelId, *, warm: bool, saving: float | None
) -> RouteDecision:
    return replace(
        decision,
        model=model,
        reason=stay_reason(model, for_cache=warm),
        kept_for_cache=True,
        switch_saving_usd=saving,
    )


def read_packaged_router() -> Router:
    """The shipped artifacts, read afresh (`Router.load` reads them once per process)."""
    artifacts = resources.files("switchboard.routing").joinpath("artifacts")
    with (
        artifacts.joinpath(ARTIFACT_NAME).open("rb") as handle,
        artifacts.joinpath(MEANING_ARTIFACT_NAME).open("rb") as meaning,
    ):
        escalation = read_escalation(handle, meaning)
    with artifacts.joinpath(QUESTION_ARTIFACT).open("rb") as handle:
        return Router(escalation, read_question_model(handle))


_packaged_router = cache(read_packaged_router)

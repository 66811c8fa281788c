"""The router Auto shipped before issue 18, for side-by-side figures in the bench only.

Its first-turn decision, exactly as it was: p = sigmoid(learned logit of the prompt + the context/keyword
prior) against the artifact's threshold (0.5799), with every model allowed and no user shift. Stickiness,
plans and shifts are the same in both routers and are not part of this comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

from router_lab.legacy.difficulty import ARTIFACT_NAME, DifficultyModel, read_weights, sigmoid
from router_lab.legacy.prior import ContextEntry, prior_logit, read_signals, summarize_context

ARTIFACT = Path(__file__).resolve().parent / ARTIFACT_NAME


class LegacyRouter:
    def __init__(self, model: DifficultyModel) -> None:
        self.model = model

    @staticmethod
    @cache
    def load() -> LegacyRouter:
        with ARTIFACT.open("rb") as handle:
            return LegacyRouter(DifficultyModel(read_weights(handle)))

    def probability(self, prompt: str, context: Sequence[ContextEntry] = ()) -> float:
        prior = prior_logit(read_signals(prompt), summarize_context(context))
        return sigmoid(self.model.logit(prompt) + prior)

    def wants_sonnet(self, prompt: str, context: Sequence[ContextEntry] = ()) -> bool:
        return self.probability(prompt, context) >= self.model.threshold

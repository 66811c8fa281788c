"""How training and the evaluation score a prompt: the shipped difficulty model on the prompt alone."""

from __future__ import annotations

from router_lab.legacy.difficulty import DifficultyModel, sigmoid
from router_lab.legacy.prior import ContextSummary, prior_logit, read_signals


def standalone_probability(model: DifficultyModel, prompt: str) -> float:
    """The difficulty of a prompt with no context (what training and the benchmarks score)."""
    return sigmoid(model.logit(prompt) + prior_logit(read_signals(prompt), ContextSummary()))

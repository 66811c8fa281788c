"""What the router reads from one request: its size, its context, its signals and its learned score.

Both the decision (`router.py`) and its human reason (`reasons.py`) read these; neither owns them.
"""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.routing.signals import ContextSummary, PromptSignals


@dataclass(frozen=True)
class RouteFeatures:
    prompt_chars: int
    context: ContextSummary
    signals: PromptSignals
    learned_logit: float
    prior_logit: float
    history_turns: int
    history_tokens: int
    cache_warm: bool

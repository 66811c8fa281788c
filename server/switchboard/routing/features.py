"""What the router reads from one request: its ask, its context, the conversation, and each signal's weight.

Both the decision (`router.py`) and its human reason (`reasons.py`) read these; neither owns them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.routing.ask import AskSignals
from switchboard.routing.context import ContextSummary


@dataclass(frozen=True)
class RouteFeatures:
    prompt_chars: int
    context: ContextSummary
    # For a self-contained question only the signals the conversation reads (`ask.read_question_ask`).
    ask: AskSignals
    # Each signal's part of the escalation logit (log-odds), fitted and fixed weights alike.
    contributions: dict[str, float] = field(default_factory=dict[str, float])
    logit: float = 0.0
    history_turns: int = 0
    history_tokens: int = 0
    cache_warm: bool = False
    # The conversation rule that keeps this turn on the strong model (escalation.conversation_rule), if any.
    conversation_rule: str | None = None

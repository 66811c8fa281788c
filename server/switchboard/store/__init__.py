"""Durable state: per-workspace conversations and model selections."""

from .conversations import (
    INTERRUPTED,
    BillableAnswer,
    ConversationStore,
    StoredConversation,
    StoredTurn,
    TurnOutcome,
    title_from_prompt,
    utc_now,
)

__all__ = [
    "INTERRUPTED",
    "BillableAnswer",
    "ConversationStore",
    "StoredConversation",
    "StoredTurn",
    "TurnOutcome",
    "title_from_prompt",
    "utc_now",
]

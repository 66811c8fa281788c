"""Durable state: per-workspace conversations and model selections."""

from .conversations import (
    GATEWAY,
    INTERRUPTED,
    LOCAL,
    AutoMonth,
    BillableAnswer,
    ConversationStore,
    ShiftState,
    StoredConversation,
    StoredLabel,
    StoredTurn,
    TurnOutcome,
    title_from_prompt,
    utc_now,
)

__all__ = [
    "GATEWAY",
    "INTERRUPTED",
    "LOCAL",
    "AutoMonth",
    "BillableAnswer",
    "ConversationStore",
    "ShiftState",
    "StoredConversation",
    "StoredLabel",
    "StoredTurn",
    "TurnOutcome",
    "title_from_prompt",
    "utc_now",
]

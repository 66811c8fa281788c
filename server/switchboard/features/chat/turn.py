"""What a chat turn carries from step to step: the validated request, its route, and the answer so far."""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.catalog import ModelSpec
from switchboard.plans import Entitlement
from switchboard.protocol.messages import AutoPreference, ContextItem, ProgressToken
from switchboard.providers.base import AutoHints, StreamState
from switchboard.providers.prompt import BuiltPrompt
from switchboard.store import StoredTurn


@dataclass
class TurnRequest:
    """Everything decided about a chat before it reaches a model."""

    workspace: str
    prompt: str
    context: list[ContextItem]
    model: ModelSpec  # what the user chose: a concrete model or Auto
    conversation_id: str | None
    thinking_budget: int | None
    token: ProgressToken | None
    history: list[StoredTurn] = field(default_factory=list[StoredTurn])  # the conversation so far
    retry_of: str | None = None
    history_before: str | None = None
    auto_preference: AutoPreference | None = None  # how readily Auto escalates (None: balanced)
    auto_models: list[str] | None = None  # the user's allow-list for Auto, fallback included (None: all)

    @property
    def auto(self) -> bool:
        return self.model.id == "auto"


@dataclass
class Route:
    model: ModelSpec  # the concrete model that answers
    reason: str
    hints: AutoHints | None = None  # Auto's per-user inputs, for a gateway that routes Auto itself


@dataclass
class Answer:
    """The turn being answered: where it is stored, who answers, and what has streamed in."""

    conversation_id: str
    turn_id: str
    route: Route
    prompt: BuiltPrompt
    entitlement: Entitlement
    state: StreamState = field(default_factory=StreamState)
    credits: float = 0.0
    hosted: bool = False  # answered through Switchboard Cloud, which charges it


def anthropic_id(model: ModelSpec) -> str:
    anthropic_model = model.anthropic_model
    if anthropic_model is None:
        raise ValueError(f"{model.id} does not name an Anthropic model")
    return anthropic_model

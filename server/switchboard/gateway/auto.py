"""Auto on the gateway: the language server's runtime router decides, on the request as sent.

The body's `model` is ignored: the gateway picks among the models the plan allows, so an Auto header on a
Sonnet body still answers with what the router picks, billed at 1.0x.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from switchboard.catalog.models import CATALOG, ModelSpec
from switchboard.plans.billed import billed_model
from switchboard.routing import RouteInput, Router
from switchboard.tokens import estimate_tokens

from .turn_request import AutoInputs, thinking_budget


@dataclass(frozen=True)
class LastAnswer:
    """The conversation's last answer, as this gateway's ledger recorded it (not as the client says)."""

    routed_model: str
    answered_at: float  # epoch seconds


class AnsweredTurns:
    """The turns this replica answered lately, so that Auto's next turn in a conversation finds its last
    answer without a round trip to PostgreSQL (the language server keeps its connection, so a conversation's
    turns usually come to one replica). What this replica settled is what the ledger holds; a turn answered
    elsewhere, or forgotten here, is looked up in the ledger as before."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._answers: OrderedDict[tuple[str, str], LastAnswer] = OrderedDict()

    def remember(self, account_id: str, turn_id: str, answer: LastAnswer) -> None:
        self._answers[account_id, turn_id] = answer
        self._answers.move_to_end((account_id, turn_id))
        if len(self._answers) > self._capacity:
            self._answers.popitem(last=False)

    def get(self, account_id: str, turn_id: str) -> LastAnswer | None:
        return self._answers.get((account_id, turn_id))


@dataclass(frozen=True)
class Route:
    model: ModelSpec
    reason: str


class AutoRouter:
    @staticmethod
    def warm_up() -> None:
        """Reads the router's artifact before the replica takes traffic (a few milliseconds, once)."""
        Router.load()

    @staticmethod
    def route(
        body: dict[str, Any],
        allowed: list[str],
        inputs: AutoInputs | None = None,
        last: LastAnswer | None = None,
    ) -> Route:
        """Raises `NoRoutableModelError` when the plan (narrowed by the user's list) allows none of Auto's
        models."""
        decision = Router.load().decide(route_input(body, allowed, inputs or AutoInputs(), last))
        return Route(CATALOG[decision.model], decision.reason)


def billed_as(chosen: str, answering: str, inputs: AutoInputs) -> str:
    """The model a turn is billed as (see `switchboard.plans.billed`)."""
    return billed_model(chosen, answering, inputs.models)


def route_input(
    body: dict[str, Any], allowed: list[str], inputs: AutoInputs | None = None, last: LastAnswer | None = None
) -> RouteInput:
    inputs = inputs or AutoInputs()
    messages: list[Any] = body.get("messages") or []
    history = messages[:-1]
    if inputs.models is not None:
        allowed = [model for model in allowed if model in inputs.models]
    return RouteInput(
        prompt=_text(messages[-1]) if messages else "",
        history_turns=len(history),
        history_tokens=sum(estimate_tokens(_text(message)) for message in history),
        last_model=last.routed_model if last else None,
        last_answer_at=last.answered_at if last else None,
        allowed=allowed,
        threshold_shift=inputs.threshold_shift,
        preference=inputs.preference,
        sonnet_answers=inputs.sonnet_answers,
        stronger_retries=inputs.stronger_retries,
        thinking_budget=thinking_budget(body),
        user_models=inputs.models,
    )


def _text(message: Any) -> str:
    """The text of a message, whether its content is a string or a list of blocks."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = [block.get("text") for block in content if isinstance(block, dict)]
    return "\n".join(text for text in texts if isinstance(text, str))

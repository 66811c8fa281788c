"""The history of a workspace's conversations: list, open, delete."""

from __future__ import annotations

from switchboard.catalog import CATALOG
from switchboard.protocol import methods
from switchboard.protocol.errors import ConversationNotFound
from switchboard.protocol.messages import (
    ConversationParams,
    ConversationResult,
    ConversationsParams,
    ConversationsResult,
    ConversationSummary,
    DeleteConversationParams,
    Empty,
    TurnInfo,
)
from switchboard.routing.pricing import usage_cost_usd
from switchboard.store import GATEWAY, StoredTurn

from .base import Feature, register_request
from .host import Editor, Services


class ConversationsFeature(Feature):
    def __init__(self, editor: Editor, services: Services) -> None:
        super().__init__(editor)
        self.services = services

    def register(self) -> None:
        register_request(self.editor, methods.CONVERSATIONS, self.list)
        register_request(self.editor, methods.CONVERSATION, self.open)
        register_request(self.editor, methods.DELETE_CONVERSATION, self.delete)

    def list(self, params: ConversationsParams) -> ConversationsResult:
        rows = self.services.store.list_conversations(
            params.workspace_uri, limit=params.limit + 1, offset=params.offset
        )
        has_more = len(rows) > params.limit
        rows = rows[: params.limit]
        return ConversationsResult(
            has_more=has_more,
            conversations=[
                ConversationSummary(
                    id=row.id,
                    title=row.title,
                    created_at=row.created_at,
                    updated_at=row.updated_at,
                    turn_count=row.turn_count,
                )
                for row in rows
            ],
        )

    def open(self, params: ConversationParams) -> ConversationResult:
        conversation = self.services.store.load_conversation(params.workspace_uri, params.conversation_id)
        if conversation is None:
            raise ConversationNotFound(params.conversation_id)
        return ConversationResult(
            id=conversation.id,
            title=conversation.title,
            created_at=conversation.created_at,
            updated_at=conversation.updated_at,
            turns=[turn_info(turn, priced=self._priced(turn)) for turn in conversation.turns],
        )

    def _priced(self, turn: StoredTurn) -> bool:
        """Whether the answer shows a list price (ChatResult.costUsd): not one answered through Switchboard
        Cloud, whose bill is credits, whatever the mode now. An answer stored before the store said who
        billed it goes by the mode now."""
        if turn.billed_by is not None:
            return turn.billed_by != GATEWAY
        return not self.services.upstream.hosted

    def delete(self, params: DeleteConversationParams) -> Empty:
        if not self.services.store.delete_conversation(params.workspace_uri, params.conversation_id):
            raise ConversationNotFound(params.conversation_id)
        return Empty()


def turn_info(turn: StoredTurn, *, priced: bool = True) -> TurnInfo:
    return TurnInfo.model_validate(
        {
            "id": turn.id,
            "role": turn.role,
            "text": turn.text,
            "thinking": turn.thinking,
            "model_id": turn.model_id,
            "routed_model": turn.routed_model,
            "route_reason": turn.route_reason,
            "credits": turn.credits,
            "status": turn.status,
            "created_at": turn.created_at,
            "usage": turn.usage,
            "context": turn.context,
            "error": turn.error,
            "retry_of": turn.retry_of,
            "rating": turn.rating,
            "cost_usd": _cost(turn) if priced else None,
        }
    )


def _cost(turn: StoredTurn) -> float | None:
    if turn.role != "assistant" or turn.usage is None or turn.routed_model not in CATALOG:
        return None
    return usage_cost_usd(turn.routed_model, turn.usage)

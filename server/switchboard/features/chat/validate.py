"""Step 1 of a turn: `switchboard/chat` and `switchboard/retry` params become a `TurnRequest` or a refusal."""

from __future__ import annotations

from switchboard.catalog import CATALOG, ModelSpec
from switchboard.protocol.errors import ConversationNotFound, InvalidParams
from switchboard.protocol.messages import ChatParams, ConcreteModelId, InvalidParamsData, RetryParams
from switchboard.routing import AUTO_MODELS
from switchboard.store import ConversationStore, StoredConversation, StoredTurn

from ..models import ModelsFeature, require_known_model
from .turn import TurnRequest


def chat_turn(params: ChatParams, models: ModelsFeature, store: ConversationStore) -> TurnRequest:
    model = (
        require_known_model(params.model_id)
        if params.model_id
        else CATALOG[models.selected(params.workspace_uri)]
    )
    if params.thinking is not None:
        check_thinking(model, params.thinking.budget_tokens)
    history: list[StoredTurn] = []
    if params.conversation_id:
        history = load_conversation(store, params.workspace_uri, params.conversation_id).turns
    return TurnRequest(
        workspace=params.workspace_uri,
        prompt=params.prompt,
        context=params.context,
        model=model,
        conversation_id=params.conversation_id,
        thinking_budget=params.thinking.budget_tokens if params.thinking else None,
        token=params.work_done_token,
        history=history,
        auto_preference=params.auto_preference,
        auto_models=check_auto_models(params.auto_models),
    )


def retry_turn(
    params: RetryParams, stored: StoredConversation, exchange: tuple[StoredTurn, StoredTurn], model: ModelSpec
) -> TurnRequest:
    """The last prompt again, on `model`, answering beside the answer it retries."""
    prompt_turn, answer_turn = exchange
    return TurnRequest(
        workspace=params.workspace_uri,
        prompt=prompt_turn.text,
        context=prompt_turn.context,
        model=model,
        conversation_id=stored.id,
        thinking_budget=None,
        token=params.work_done_token,
        history=stored.turns,
        retry_of=answer_turn.id,
        history_before=prompt_turn.id,
    )


def load_conversation(store: ConversationStore, workspace: str, conversation_id: str) -> StoredConversation:
    stored = store.load_conversation(workspace, conversation_id)
    if stored is None:
        raise ConversationNotFound(conversation_id)
    return stored


def last_exchange(turns: list[StoredTurn], turn_id: str) -> tuple[StoredTurn, StoredTurn]:
    """The last prompt and the answer `turn_id` to it; only the latest prompt's answers can be retried."""
    prompts = [index for index, turn in enumerate(turns) if turn.role == "user"]
    if prompts:
        last = prompts[-1]
        answers = {turn.id: turn for turn in turns[last + 1 :]}
        if turn_id in answers:
            return turns[last], answers[turn_id]
    raise InvalidParams(
        f"Turn {turn_id!r} is not an answer to this conversation's last prompt: only that can be retried.",
        InvalidParamsData(errors=["turnId: not the last answer"]),
    )


def check_auto_models(models: list[ConcreteModelId] | None) -> list[str] | None:
    """The allow-list must name at least one model Auto answers with (Opus never is one)."""
    if models is None:
        return None
    if not any(model in AUTO_MODELS for model in models):
        names = ", ".join(CATALOG[model].name for model in AUTO_MODELS)
        raise InvalidParams(
            f"autoModels must include at least one of the models Auto uses: {names}.",
            InvalidParamsData(errors=["autoModels: no model Auto can use"]),
        )
    return list(dict.fromkeys(models))


def check_thinking(model: ModelSpec, budget: int) -> None:
    if not model.supports_thinking:
        raise InvalidParams(
            f"{model.name} does not support extended thinking.", InvalidParamsData(model_id=model.id)
        )
    # The answer needs room after the thinking: keep at least 1,024 output tokens for it.
    most = model.max_output_tokens - 1024
    if budget > most:
        raise InvalidParams(
            f"A thinking budget of {budget:,} tokens leaves no room for the answer within {model.name}'s "
            f"{model.max_output_tokens:,}-token output limit; use at most {most:,}.",
            InvalidParamsData(model_id=model.id, errors=["thinking.budgetTokens: too large"]),
        )

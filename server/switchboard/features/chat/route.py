"""Step 3 of a turn: which model answers (Auto's choice or the user's), who steps in when it is busy, and
which model is stronger for a retry. The plan bounds every choice."""

from __future__ import annotations

from switchboard.catalog import CATALOG, ModelSpec
from switchboard.plans.billed import with_billed_note
from switchboard.protocol.errors import InvalidParams
from switchboard.protocol.messages import InvalidParamsData
from switchboard.providers.base import UpstreamError
from switchboard.routing import AUTO_MODELS, DEFAULT_PREFERENCE, busy_reason, is_busy
from switchboard.store import StoredTurn

from ..account import AccountFeature
from ..feedback import AutoFeedback
from ..host import Services
from ..models import require_known_model
from .auto import AutoRouting, TurnFacts, auto_hints
from .turn import Answer, Route, TurnRequest


class TurnRouter:
    def __init__(self, services: Services, account: AccountFeature, learning: AutoFeedback) -> None:
        self._services = services
        self._account = account
        self._learning = learning
        self.auto = AutoRouting()

    async def route(self, request: TurnRequest) -> Route:
        if not request.auto:
            return Route(request.model, f"You chose {request.model.name}")
        facts = TurnFacts(
            prompt=request.prompt,
            context=request.context,
            history=request.history,
            shift=self._learning.current_shift(request.workspace),
            thinking_budget=request.thinking_budget,
            preference=request.auto_preference or DEFAULT_PREFERENCE,
            user_models=request.auto_models,
        )
        allowed = self.auto_allowed(request)
        if request.auto_models is not None and not any(m in AUTO_MODELS for m in allowed):
            raise InvalidParams(
                "None of the models Auto may use (autoModels) is on your plan.",
                InvalidParamsData(errors=["autoModels: no model allowed by the plan"]),
            )
        choice = self.auto.choose(facts, allowed)
        self._services.store.record_routed_turn(request.workspace)
        reason = with_billed_note(choice.reason, choice.model.id, request.auto_models)
        return Route(choice.model, reason, auto_hints(facts))

    def fallback(
        self, request: TurnRequest, answer: Answer, exc: UpstreamError, tried: list[str]
    ) -> Route | None:
        """The model to try when the routed one is overloaded or rate-limited and nothing streamed yet."""
        if not is_busy(exc.status, exc.type) or answer.state.text or answer.state.thinking:
            return None
        allowed = self.auto_allowed(request) if request.auto else self.allowed()
        model = self.auto.fallback(answer.route.model.id, allowed, tried, auto=request.auto)
        if model is None:
            return None
        return Route(model, busy_reason(answer.route.model.id, model.id))

    def stronger(self, model_id: str | None, answer: StoredTurn) -> ModelSpec:
        """The model a retry uses: the one asked for, else the next stronger one the plan allows."""
        if model_id:
            return require_known_model(model_id)
        current = answer.routed_model or answer.model_id or "claude-haiku-4.5"
        stronger = self.auto.stronger(current, self.allowed())
        if stronger is None:
            raise InvalidParams(
                f"{CATALOG[current].name} is already the strongest model your plan allows.",
                InvalidParamsData(model_id=current),
            )
        return stronger

    def allowed(self) -> list[str]:
        return [spec.id for spec in CATALOG.values() if self._account.allows(spec.id)]

    def auto_allowed(self, request: TurnRequest) -> list[str]:
        """The plan's models, narrowed to the user's allow-list for Auto when there is one."""
        allowed = self.allowed()
        if request.auto_models is None:
            return allowed
        return [model for model in allowed if model in request.auto_models]

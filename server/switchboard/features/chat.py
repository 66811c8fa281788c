"""Streamed chat: resolve the model, route, replay the conversation, stream the answer, store the turn."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, cast

from lsprotocol import types as lsp

from switchboard.catalog import CATALOG, ModelSpec, concrete_id
from switchboard.plans import Entitlement
from switchboard.protocol import methods
from switchboard.protocol.errors import (
    AuthRequired,
    ConversationNotFound,
    InvalidParams,
    PromptTooLarge,
    UpstreamFailed,
)
from switchboard.protocol.messages import (
    AuthErrorData,
    ChatParams,
    ChatResult,
    ContextItem,
    InvalidParamsData,
    ProgressBegin,
    ProgressEnd,
    ProgressToken,
    PromptTooLargeData,
    RetryParams,
    RouteReport,
    TextReport,
    ThinkingReport,
    UpstreamErrorData,
)
from switchboard.providers.anthropic_api import (
    AuthenticationFailed,
    ProviderRequest,
    StreamCallbacks,
    StreamState,
    UpstreamError,
)
from switchboard.providers.prompt import BuiltPrompt, PromptTooLargeError, build_prompt, exchanges
from switchboard.routing import ThresholdShift
from switchboard.store import StoredTurn, TurnOutcome, title_from_prompt

from .account import AccountFeature
from .base import Feature, dump, plain, register_request
from .models import ModelsFeature, require_known_model
from .routing import AutoRouting, TurnFacts
from .streaming import DeltaCoalescer

log = logging.getLogger(__name__)

KEY_HELP = (
    "Set ANTHROPIC_API_KEY in the server's environment, or pass `apiKey` in initializationOptions "
    "(in VS Code: run “Switchboard: Set Anthropic API Key”)."
)


@dataclass
class TurnRequest:
    """Everything decided about a chat before it reaches a model."""

    workspace: str
    prompt: str
    context: list[ContextItem]
    model: ModelSpec
    conversation_id: str | None
    thinking_budget: int | None
    token: ProgressToken | None
    history: list[StoredTurn] = field(default_factory=list[StoredTurn])  # the conversation so far
    retry_of: str | None = None
    history_before: str | None = None


@dataclass
class Route:
    model: ModelSpec
    reason: str


@dataclass
class Answer:
    conversation_id: str
    turn_id: str
    route: Route
    prompt: BuiltPrompt
    entitlement: Entitlement
    state: StreamState = field(default_factory=StreamState)
    credits: float = 0.0


class ChatFeature(Feature):
    def __init__(self, server: Any, models: ModelsFeature, account: AccountFeature) -> None:
        super().__init__(server)
        self.models = models
        self.account = account
        self._running: dict[ProgressToken, asyncio.Task[Any]] = {}
        self.routing = AutoRouting()

    def register(self) -> None:
        register_request(self.server, methods.CHAT, self.chat)
        register_request(self.server, methods.RETRY, self.retry)
        self.server.feature(lsp.WINDOW_WORK_DONE_PROGRESS_CANCEL)(plain(self.on_progress_cancel))

    # --- requests -------------------------------------------------------------------------------

    async def chat(self, params: ChatParams) -> ChatResult:
        model = (
            require_known_model(params.model_id)
            if params.model_id
            else CATALOG[self.models.selected(params.workspace_uri)]
        )
        if params.thinking is not None:
            _check_thinking(model, params.thinking.budget_tokens)
        history: list[StoredTurn] = []
        if params.conversation_id:
            stored = self.server.store.load_conversation(params.workspace_uri, params.conversation_id)
            if stored is None:
                raise ConversationNotFound(params.conversation_id)
            history = stored.turns
        request = TurnRequest(
            workspace=params.workspace_uri,
            prompt=params.prompt,
            context=params.context,
            model=model,
            conversation_id=params.conversation_id,
            thinking_budget=params.thinking.budget_tokens if params.thinking else None,
            token=params.work_done_token,
            history=history,
        )
        return await self.run(request)

    async def retry(self, params: RetryParams) -> ChatResult:
        """Re-runs the last prompt on a stronger model; both answers stay in the history."""
        stored = self.server.store.load_conversation(params.workspace_uri, params.conversation_id)
        if stored is None:
            raise ConversationNotFound(params.conversation_id)
        prompt_turn, answer_turn = _last_exchange(stored.turns, params.turn_id)
        model = self._stronger(params, answer_turn)
        self.server.store.record_retry(params.workspace_uri)
        request = TurnRequest(
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
        return await self.run(request)

    def _stronger(self, params: RetryParams, answer: StoredTurn) -> ModelSpec:
        if params.model_id:
            return require_known_model(params.model_id)
        current = answer.routed_model or answer.model_id or "claude-haiku-4.5"
        stronger = self.routing.stronger(current, self._allowed())
        if stronger is None:
            raise InvalidParams(
                f"{CATALOG[current].name} is already the strongest model your plan allows.",
                InvalidParamsData(model_id=current),
            )
        return stronger

    def on_progress_cancel(self, params: lsp.WorkDoneProgressCancelParams) -> None:
        token = cast(object, params.token)  # typed by lsprotocol, but a client may send anything
        if not isinstance(token, str | int):
            return
        task = self._running.get(token)
        if task is not None:
            task.cancel()

    # --- the pipeline -----------------------------------------------------------------------------

    async def run(self, request: TurnRequest) -> ChatResult:
        entitlement = await self.account.check(request.model.id)
        if not self.server.api_key:
            raise AuthRequired("No Anthropic API key. " + KEY_HELP, AuthErrorData(reason="missing_key"))
        route = await self.route(request, request.history)
        prompt = self._build(request, route.model, request.history)
        answer = self._start(request, route, prompt, entitlement)
        task = asyncio.current_task()
        if request.token is not None and task is not None:
            self._running[request.token] = task
        try:
            return await self._stream(request, answer)
        finally:
            if request.token is not None:
                self._running.pop(request.token, None)

    async def route(self, request: TurnRequest, history: list[StoredTurn]) -> Route:
        if request.model.id != "auto":
            return Route(request.model, f"You chose {request.model.name}")
        store = self.server.store
        facts = TurnFacts(
            prompt=request.prompt,
            context=request.context,
            history=history,
            shift=ThresholdShift(*store.routing_counts(request.workspace)),
        )
        choice = await self.routing.choose(facts, self._allowed())
        store.record_routed_turn(request.workspace)
        return Route(choice.model, choice.reason)

    def _allowed(self) -> list[str]:
        return [spec.id for spec in CATALOG.values() if self.account.allows(spec.id)]

    def _build(self, request: TurnRequest, model: ModelSpec, history: list[StoredTurn]) -> BuiltPrompt:
        try:
            return build_prompt(
                exchanges(history, before=request.history_before),
                prompt=request.prompt,
                context=request.context,
                anthropic_model=_anthropic_id(model),
                context_window=model.context_window,
                max_tokens=self._max_tokens(request, model),
                thinking=request.thinking_budget is not None,
                cache=self.server.settings.prompt_cache,
            )
        except PromptTooLargeError as exc:
            raise PromptTooLarge(
                f"The prompt and attached context (about {exc.input_tokens:,} tokens) do not fit "
                f"{model.name}'s {model.context_window:,}-token context window. Attach less context.",
                PromptTooLargeData(
                    model_id=model.id, input_tokens=exc.input_tokens, context_window=model.context_window
                ),
            ) from None

    def _max_tokens(self, request: TurnRequest, model: ModelSpec) -> int:
        """The answer's output budget plus any thinking budget, within what the answering model produces."""
        output = self.server.settings.max_output_tokens + (request.thinking_budget or 0)
        return min(output, model.max_output_tokens)

    def _start(
        self, request: TurnRequest, route: Route, prompt: BuiltPrompt, entitlement: Entitlement
    ) -> Answer:
        store = self.server.store
        conversation_id = request.conversation_id or store.create_conversation(
            request.workspace, title_from_prompt(request.prompt)
        )
        _, turn_id = store.start_turn(
            conversation_id,
            prompt=request.prompt,
            context=request.context,
            model_id=request.model.id,
            retry_of=request.retry_of,
        )
        return Answer(conversation_id, turn_id, route, prompt, entitlement)

    async def _stream(self, request: TurnRequest, answer: Answer) -> ChatResult:
        progress = _Progress(self.server, request.token)
        progress.begin(request.model, answer)
        tried = [concrete_id(answer.route.model)]
        while True:
            try:
                await self._call(request, answer, progress)
                break
            except asyncio.CancelledError:
                await self._settle(request, answer, "cancelled", "Stopped by the user.")
                progress.end("Cancelled")
                raise
            except AuthenticationFailed:
                await self._settle(request, answer, "failed", "The Anthropic API rejected the API key.")
                progress.end("Failed")
                raise AuthRequired(
                    "The Anthropic API rejected the API key. " + KEY_HELP,
                    AuthErrorData(reason="rejected_key"),
                ) from None
            except UpstreamError as exc:
                fallback = self._fallback(request, answer, exc, tried)
                if fallback is None or request.model.id != "auto":
                    await self._settle(request, answer, "failed", exc.message)
                    progress.end("Failed")
                    raise _upstream_failed(exc, fallback) from None
                self._reroute(request, answer, fallback)
                tried.append(concrete_id(fallback.model))
                progress.route(request.model, answer, fallback=True)
        await self._settle(request, answer, "complete", None)
        progress.end(None)
        return self._result(request, answer)

    async def _call(self, request: TurnRequest, answer: Answer, progress: _Progress) -> None:
        texts = DeltaCoalescer(lambda text: progress.report(TextReport(text=text)))
        thoughts = DeltaCoalescer(lambda text: progress.report(ThinkingReport(text=text)))
        provider_request = ProviderRequest(
            anthropic_model=_anthropic_id(answer.route.model),
            system=answer.prompt.system,
            messages=answer.prompt.messages,
            max_tokens=self._max_tokens(request, answer.route.model),
            thinking_budget=request.thinking_budget,
        )
        try:
            callbacks = StreamCallbacks(on_text=texts.push, on_thinking=thoughts.push)
            await self.server.provider().stream(provider_request, answer.state, callbacks)
        finally:
            thoughts.flush()
            texts.flush()

    def _fallback(
        self, request: TurnRequest, answer: Answer, exc: UpstreamError, tried: list[str]
    ) -> Route | None:
        """The model to try when the routed one is overloaded or rate-limited and nothing streamed yet."""
        busy = exc.status in (429, 529) or (exc.status is None and exc.type == "overloaded_error")
        if not busy or answer.state.text or answer.state.thinking:
            return None
        model = self.routing.fallback(
            answer.route.model.id, self._allowed(), tried, auto=request.model.id == "auto"
        )
        if model is None:
            return None
        reason = f"{answer.route.model.name} is busy → {model.name} answers instead"
        return Route(model, reason)

    def _reroute(self, request: TurnRequest, answer: Answer, route: Route) -> None:
        answer.route = route
        answer.prompt = self._build(request, route.model, request.history)
        answer.state = StreamState()

    async def _settle(self, request: TurnRequest, answer: Answer, status: str, error: str | None) -> None:
        """Stores how the turn ended, then meters it: the answer is safe on disk before it is charged."""
        state = answer.state
        usage = state.usage
        if status == "cancelled":
            usage = self.account.consumed(state.usage, state.text, state.output_reported)
            state.usage = usage
        billable = status == "complete" or (status == "cancelled" and state.started)
        answer.credits = self.account.price(request.model.id, usage) if billable else 0.0
        self._finish(answer, status, error)
        try:
            if billable:
                charged = await self.account.charge(
                    answer.entitlement,
                    answer.turn_id,
                    model_id=request.model.id,
                    routed_model=concrete_id(answer.route.model),
                    usage=usage,
                    workspace=request.workspace,
                    conversation_id=answer.conversation_id,
                )
                answer.credits = float(charged)
            else:
                reason = error or "failed before any output"
                await self.account.record_uncharged(
                    answer.entitlement,
                    answer.turn_id,
                    reason=reason,
                    model_id=request.model.id,
                    routed_model=concrete_id(answer.route.model),
                )
        except Exception:
            log.exception("Could not meter turn %s", answer.turn_id)

    def _finish(self, answer: Answer, status: str, error: str | None = None) -> None:
        state = answer.state
        self.server.store.finish_turn(
            answer.turn_id,
            TurnOutcome(
                text=state.text,
                status=status,
                thinking=state.thinking or None,
                thinking_signature=state.thinking_signature,
                routed_model=answer.route.model.id,
                anthropic_model=_anthropic_id(answer.route.model),
                route_reason=answer.route.reason,
                stop_reason=state.stop_reason,
                usage=state.usage,
                credits=answer.credits,
                error=error,
            ),
        )

    def _result(self, request: TurnRequest, answer: Answer) -> ChatResult:
        state = answer.state
        return ChatResult.model_validate(
            {
                "conversation_id": answer.conversation_id,
                "turn_id": answer.turn_id,
                "model_id": request.model.id,
                "routed_model": answer.route.model.id,
                "route_reason": answer.route.reason,
                "text": state.text,
                "thinking": state.thinking or None,
                "stop_reason": state.stop_reason,
                "usage": state.usage,
                "credits": answer.credits,
                "dropped_turns": answer.prompt.dropped_turns,
            }
        )


class _Progress:
    """The chat's `$/progress` stream on the client's work-done token (silent without one)."""

    def __init__(self, server: Any, token: ProgressToken | None) -> None:
        self._server = server
        self._token = token

    def _send(self, value: Any) -> None:
        if self._token is not None:
            self._server.send_progress(self._token, dump(value))

    def begin(self, model: ModelSpec, answer: Answer) -> None:
        self._send(ProgressBegin(title=f"Asking {answer.route.model.name}", cancellable=True))
        self.route(model, answer, fallback=False)

    def route(self, model: ModelSpec, answer: Answer, *, fallback: bool) -> None:
        route = answer.route
        self.report(
            RouteReport(
                model_id=model.id,
                routed_model=concrete_id(route.model),
                route_reason=route.reason,
                message=route.reason,
                fallback=fallback,
                conversation_id=answer.conversation_id,
                turn_id=answer.turn_id,
            )
        )

    def report(self, value: Any) -> None:
        self._send(value)

    def end(self, message: str | None) -> None:
        self._send(ProgressEnd(message=message))


def _last_exchange(turns: list[StoredTurn], turn_id: str) -> tuple[StoredTurn, StoredTurn]:
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


def _check_thinking(model: ModelSpec, budget: int) -> None:
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


def _anthropic_id(model: ModelSpec) -> str:
    anthropic_model = model.anthropic_model
    if anthropic_model is None:
        raise ValueError(f"{model.id} does not name an Anthropic model")
    return anthropic_model


def _upstream_failed(exc: UpstreamError, suggestion: Route | None) -> UpstreamFailed:
    what_to_do = "Try again in a moment." if exc.retryable else "This request cannot succeed as sent."
    suggested = concrete_id(suggestion.model) if suggestion is not None else None
    if suggestion is not None:
        what_to_do += f" Or switch to {suggestion.model.name}, which is not busy."
    return UpstreamFailed(
        f"{exc.message} {what_to_do}",
        UpstreamErrorData(
            status=exc.status, type=exc.type, retryable=exc.retryable, suggested_model=suggested
        ),
    )

"""Streamed chat: `switchboard/chat`, `switchboard/retry` and cancelling them.

A turn's path, one step a module:
validate (`validate`) → plan check (`AccountFeature.check`) → route (`route`) → prompt (`prompting`)
→ store the pending turn → stream (`stream`, with Auto's fallback when a model is busy: here in local mode,
on the gateway when signed in) → store and charge
(`settle`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from contextlib import contextmanager
from typing import Any, cast

from lsprotocol import types as lsp

from switchboard.catalog import CATALOG, ModelSpec, concrete_id, is_known_model
from switchboard.plans import Entitlement
from switchboard.protocol import methods
from switchboard.protocol.errors import UpstreamFailed
from switchboard.protocol.messages import ChatParams, ChatResult, ProgressToken, RetryParams
from switchboard.providers.base import AuthenticationFailed, StreamState, TurnRefused, UpstreamError
from switchboard.routing.pricing import usage_cost_usd
from switchboard.store import title_from_prompt

from ..account import AccountFeature
from ..base import Feature, plain, register_request
from ..feedback import AutoFeedback
from ..host import Editor, Services
from ..models import ModelsFeature
from .errors import REJECTED_KEY, missing_key, model_retired, rejected_key, upstream_failed
from .progress import TurnProgress
from .prompting import turn_prompt
from .route import TurnRouter
from .settle import Settlement
from .stream import stream_answer
from .turn import Answer, Route, TurnRequest
from .validate import chat_turn, last_exchange, load_conversation, retry_turn


class ChatFeature(Feature):
    def __init__(
        self,
        editor: Editor,
        services: Services,
        models: ModelsFeature,
        account: AccountFeature,
        learning: AutoFeedback,
    ) -> None:
        super().__init__(editor)
        self.services = services
        self.models = models
        self.account = account
        self.learning = learning
        self.router = TurnRouter(services, account, learning)
        self.settlement = Settlement(services, account, editor)
        self._running: dict[ProgressToken, asyncio.Task[Any]] = {}

    def register(self) -> None:
        register_request(self.editor, methods.CHAT, self.chat)
        register_request(self.editor, methods.RETRY, self.retry)
        self.editor.feature(lsp.WINDOW_WORK_DONE_PROGRESS_CANCEL)(plain(self.on_progress_cancel))

    def warm_up(self) -> None:
        """Loads Auto's router ahead of the first chat."""
        self.router.auto.warm_up()

    # --- requests -------------------------------------------------------------------------------

    async def chat(self, params: ChatParams) -> ChatResult:
        with self._cancellable(params.work_done_token):
            return await self.run(chat_turn(params, self.models, self.services.store))

    async def retry(self, params: RetryParams) -> ChatResult:
        """Re-runs the last prompt on a stronger model; both answers stay in the history."""
        with self._cancellable(params.work_done_token):
            # The stronger model depends on the plan, which a resume under way may still change.
            await self.account.resumed()
            store = self.services.store
            stored = load_conversation(store, params.workspace_uri, params.conversation_id)
            exchange = last_exchange(stored.turns, params.turn_id)
            model = self.router.stronger(params.model_id, exchange[1])
            return await self.run(retry_turn(params, stored, exchange, model))

    @contextmanager
    def _cancellable(self, token: ProgressToken | None) -> Generator[None]:
        """A `window/workDoneProgress/cancel` for `token` cancels this request from here on: from its very
        start, so one sent while it waits (for a resume under way) is not lost."""
        task = asyncio.current_task()
        if token is None or task is None:
            yield
            return
        self._running[token] = task
        try:
            yield
        finally:
            if self._running.get(token) is task:
                del self._running[token]

    def on_progress_cancel(self, params: lsp.WorkDoneProgressCancelParams) -> None:
        token = cast(object, params.token)  # typed by lsprotocol, but a client may send anything
        if not isinstance(token, str | int):
            return
        task = self._running.get(token)
        if task is not None:
            task.cancel()

    # --- the turn ---------------------------------------------------------------------------------

    async def run(self, request: TurnRequest) -> ChatResult:
        await self.account.resumed()  # signed in or not: a resume under way decides
        entitlement = await self.account.check(request.model.id)
        if not self.services.upstream.ready:
            raise missing_key(self.services.settings.gateway_url)
        route = await self.router.route(request)
        answer = self._start(request, route, entitlement)
        answer.hosted = self.services.upstream.hosted
        return await self._answer(request, answer)

    def _start(self, request: TurnRequest, route: Route, entitlement: Entitlement) -> Answer:
        """Builds the prompt, then stores the turn as started, so a crash from here on leaves a record."""
        prompt = turn_prompt(request, route.model, self.services.settings)
        store = self.services.store
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
        # A retry, or the next message, is what Auto learns from about the answer before it.
        self.learning.after_turn_started(
            request.workspace, request.history, request.model.id, request.retry_of
        )
        return Answer(conversation_id, turn_id, route, prompt, entitlement)

    async def _answer(self, request: TurnRequest, answer: Answer) -> ChatResult:
        """Streams the answer, falling back to another model when Auto's is busy; settles however it ends."""
        progress = TurnProgress(self.editor, request.token)
        progress.begin(request.model, answer)
        tried = [concrete_id(answer.route.model)]
        settle = self.settlement.settle
        while True:
            try:
                provider = self.services.upstream.provider()
                on_route = self._gateway_route(request, answer, progress)
                await stream_answer(provider, request, answer, progress, self.services.settings, on_route)
                break
            except asyncio.CancelledError:
                await settle(request, answer, "cancelled", "Stopped by the user.")
                progress.end("Cancelled")
                raise
            except TurnRefused as refused:
                await settle(request, answer, "failed", str(refused.error))
                progress.end("Failed")
                raise refused.error from None
            except AuthenticationFailed:
                await settle(request, answer, "failed", REJECTED_KEY)
                progress.end("Failed")
                raise rejected_key() from None
            except UpstreamError as exc:
                # Signed in, the gateway picks Auto's model and falls back itself when it is busy; a model
                # chosen here would not be the one that answers (the gateway routes Auto on its own).
                gateway_auto = answer.hosted and request.auto
                fallback = None if gateway_auto else self.router.fallback(request, answer, exc, tried)
                if fallback is None or not request.auto:
                    await settle(request, answer, "failed", exc.message)
                    progress.end("Failed")
                    raise self._failure(exc, answer.route.model, fallback) from None
                self._reroute(request, answer, fallback)
                tried.append(concrete_id(fallback.model))
                progress.route(request.model, answer, fallback=True)
        await settle(request, answer, "complete", None)
        progress.end(None)
        result = _result(request, answer)
        if answer.hosted:
            result.cost_usd = None  # signed in, the user pays credits, not Anthropic's list price
        return result

    def _failure(self, exc: UpstreamError, model: ModelSpec, fallback: Route | None) -> UpstreamFailed:
        today = self.services.today()
        retirement = model.retirement(today) if model.retired(today) else None
        if exc.status == 404 and retirement:
            # Instead: the model this one falls back to when busy, of those the plan allows that still answer.
            allowed = [m for m in self.router.allowed() if not CATALOG[m].retired(today)]
            instead = self.router.auto.fallback(model.id, allowed, [model.id], auto=False)
            return model_retired(exc, retirement, instead)
        return upstream_failed(exc, fallback)

    @staticmethod
    def _gateway_route(
        request: TurnRequest, answer: Answer, progress: TurnProgress
    ) -> Callable[[str, str, bool], None]:
        """For Auto the gateway picks the model, and falls back to another when it is busy: when it differs
        from this server's preview, or the gateway fell back, say so."""

        def on_route(model_id: str, reason: str, fallback: bool) -> None:
            if not is_known_model(model_id) or model_id == "auto":
                return
            if model_id == answer.route.model.id and not fallback:
                return
            answer.route = Route(CATALOG[model_id], reason or answer.route.reason, answer.route.hints)
            progress.route(request.model, answer, fallback=fallback)

        return on_route

    def _reroute(self, request: TurnRequest, answer: Answer, route: Route) -> None:
        answer.route = route
        answer.prompt = turn_prompt(request, route.model, self.services.settings)
        answer.state = StreamState()


def _result(request: TurnRequest, answer: Answer) -> ChatResult:
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
            "cost_usd": usage_cost_usd(answer.route.model.id, state.usage),
        }
    )

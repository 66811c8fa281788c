"""Sending one prompt: stream the answer, and turn Ctrl-C into a cancel the server confirms."""

from __future__ import annotations

import concurrent.futures
import itertools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

from switchboard.protocol.messages import ChatParams, ChatResult

from .errors import is_cancelled
from .loop import LoopThread, wait_done
from .session import Session
from .stream import StreamPrinter

# After Ctrl-C: how long to wait for the server to confirm, per cancel message (`$/cancelRequest`, then
# `window/workDoneProgress/cancel` as a fallback), before giving up on the answer without confirmation.
CANCEL_GRACE_SECONDS = (2.0, 3.0)


@dataclass
class ChatState:
    """What the next prompt continues: the conversation (None: a new one) and the session's model."""

    conversation_id: str | None = None
    model_override: str | None = None


@dataclass(frozen=True)
class Outcome:
    result: ChatResult | None = None
    error: BaseException | None = None
    cancelled: bool = False
    confirmed: bool = True  # for a cancel: whether the server acknowledged it
    turn_id: str | None = None  # where the server stored the turn (None: it never got that far)
    started: bool = False  # whether any of the answer arrived


class Chatter:
    def __init__(self, bridge: LoopThread, session: Session, printer: StreamPrinter) -> None:
        self._bridge = bridge
        self._session = session
        self._printer = printer
        self._ids = itertools.count(1)

    def ask(self, state: ChatState, prompt: str) -> Outcome:
        """Sends `prompt`, prints the answer as it streams, and returns how it ended."""
        request_id = f"chat-{next(self._ids)}"
        params = ChatParams(
            workspace_uri=self._session.workspace.uri,
            prompt=prompt,
            conversation_id=state.conversation_id,
            model_id=state.model_override,
            work_done_token=request_id,
        )
        self._printer.begin(request_id)
        try:
            future = self._bridge.submit(self._session.chat(params, request_id))
            outcome = self._settle(future, request_id)
        finally:
            self._printer.finish()
        outcome = replace(outcome, turn_id=self._printer.turn_id, started=self._printer.started)
        if outcome.result is not None:
            state.conversation_id = outcome.result.conversation_id
        elif self._printer.conversation_id is not None:
            # A failed or stopped turn is stored too, in the conversation its route report named: the next
            # prompt continues that conversation, not a new one.
            state.conversation_id = self._printer.conversation_id
        return outcome

    def _settle(self, future: concurrent.futures.Future[ChatResult], request_id: str) -> Outcome:
        try:
            wait_done(future)
        except KeyboardInterrupt:
            return self._cancel(future, request_id)
        return _outcome(future)

    def _cancel(self, future: concurrent.futures.Future[ChatResult], request_id: str) -> Outcome:
        """Asks the server to stop and waits for it to say so; a second Ctrl-C stops waiting."""
        self._printer.finish()  # nothing more is printed for this answer
        senders: list[Callable[[], Coroutine[Any, Any, None]]] = [
            lambda: self._session.cancel_request(request_id),
            lambda: self._session.cancel_progress(request_id),
        ]
        try:
            for send, grace in zip(senders, CANCEL_GRACE_SECONDS, strict=True):
                self._bridge.call(send())
                if wait_done(future, grace):
                    return _outcome(future)
        except KeyboardInterrupt:
            pass
        return Outcome(cancelled=True, confirmed=False)


def _outcome(future: concurrent.futures.Future[ChatResult]) -> Outcome:
    try:
        return Outcome(result=future.result())
    except Exception as exc:
        return Outcome(cancelled=True) if is_cancelled(exc) else Outcome(error=exc)

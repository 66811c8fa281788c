"""The turn's `$/progress` stream on the client's work-done token (silent without one)."""

from __future__ import annotations

from typing import Any

from switchboard.catalog import ModelSpec, concrete_id
from switchboard.protocol.messages import ProgressBegin, ProgressEnd, ProgressToken, RouteReport

from ..base import dump
from ..host import Editor
from .turn import Answer


class TurnProgress:
    def __init__(self, editor: Editor, token: ProgressToken | None) -> None:
        self._editor = editor
        self._token = token

    def report(self, value: Any) -> None:
        if self._token is not None:
            self._editor.send_progress(self._token, dump(value))

    def begin(self, model: ModelSpec, answer: Answer) -> None:
        self.report(ProgressBegin(title=f"Asking {answer.route.model.name}", cancellable=True))
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

    def end(self, message: str | None) -> None:
        self.report(ProgressEnd(message=message))

"""Printing a chat's `$/progress` reports as they arrive: the route first, thinking dimmed, then the text."""

from __future__ import annotations

import threading
from typing import Any

from pydantic import ValidationError

from switchboard.protocol.messages import ProgressToken, RouteReport

from .console import Console
from .render import route_line


class StreamPrinter:
    """Prints the reports of the one chat in flight; reports for any other token (late ones) are dropped.

    `text` receives the answer, `aside` the route line and the thinking (the same console in the REPL;
    stderr in one-shot mode, so that stdout holds only the answer).
    """

    def __init__(self, text: Console, aside: Console) -> None:
        self._text = text
        self._aside = aside
        self._lock = threading.Lock()
        self._token: ProgressToken | None = None
        self._thinking = False
        self.streamed = ""
        self.conversation_id: str | None = None  # where the server stored the turn (its route report)
        self.turn_id: str | None = None
        self.started = False  # whether any of the answer (text or thinking) arrived

    def begin(self, token: ProgressToken) -> None:
        with self._lock:
            self._token = token
            self._thinking = False
            self.streamed = ""
            self.conversation_id = None
            self.turn_id = None
            self.started = False

    def finish(self) -> None:
        """Stops printing for the current chat and ends its partly written line."""
        with self._lock:
            self._token = None
            self._end_thinking()
            self._text.end_line()

    def on_progress(self, token: ProgressToken, value: Any) -> None:
        """Called on the client's loop thread for every `$/progress` notification."""
        if not isinstance(value, dict) or value.get("kind") != "report":
            return
        with self._lock:
            if token != self._token:
                return
            self._report(value)

    def _report(self, value: dict[str, Any]) -> None:
        kind = value.get("type")
        text = value.get("text")
        if kind == "route":
            self._route(value)
        elif kind == "thinking" and isinstance(text, str):
            self._thinking = True
            self.started = True
            self._aside.write(text, "dim")
        elif kind == "text" and isinstance(text, str):
            self._end_thinking()
            self.started = True
            self.streamed += text
            self._text.write(text)

    def _route(self, value: dict[str, Any]) -> None:
        try:
            report = RouteReport.model_validate(value)
        except ValidationError:
            return
        if report.conversation_id:
            self.conversation_id = report.conversation_id
        if report.turn_id:
            self.turn_id = report.turn_id
        self._aside.line(route_line(report), "dim")

    def _end_thinking(self) -> None:
        if self._thinking:
            self._aside.end_line()
            self._thinking = False

"""The gateway's charge of a signed-in answer that was stopped or cut off: it comes after the chat request
ended (`switchboard/turnCharged`), so the answer says "charge pending" until it does, then the figure."""

from __future__ import annotations

import threading
from typing import Any

from pydantic import ValidationError

from switchboard.protocol.messages import TurnCharged

from .console import Console
from .render import credits

# One-shot mode leaves once the answer ended: how long it waits for a pending charge (Ctrl-C stops waiting).
ONE_SHOT_WAIT_SECONDS = 10.0


class Charges:
    def __init__(self, out: Console) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._pending: dict[str, str] = {}  # turn id -> what it was ("stopped", "cut-off")
        self._early: dict[str, float] = {}  # charges that came before the answer's ending was printed
        self._settled = threading.Condition(self._lock)

    def on_charged(self, params: Any) -> None:
        """`switchboard/turnCharged` (on the loop thread)."""
        try:
            charged = TurnCharged.model_validate(params)
        except ValidationError:
            return
        with self._lock:
            what = self._pending.pop(charged.turn_id, None)
            if what is None:
                self._early[charged.turn_id] = charged.credits
                return
            self._out.line(f"Charged for the {what} answer: {credits(charged.credits)}.", "dim")
            self._settled.notify_all()

    def expect(self, turn_id: str, what: str) -> float | None:
        """The turn's charge if it came already; else None, and it is printed when it comes."""
        with self._lock:
            early = self._early.pop(turn_id, None)
            self._early.clear()  # for turns no longer shown
            if early is None:
                self._pending[turn_id] = what
            return early

    def wait(self, timeout: float = ONE_SHOT_WAIT_SECONDS) -> None:
        """Waits (at most `timeout` seconds) for the pending charges to come; Ctrl-C stops waiting."""
        try:
            with self._lock:
                self._settled.wait_for(lambda: not self._pending, timeout)
        except KeyboardInterrupt:
            return

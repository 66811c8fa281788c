"""Forwarding a streamed answer to the client as `$/progress` reports, coalescing bursts of deltas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

# Deltas closer together than this are merged into one report: fewer frames for the editor to parse,
# and still well under what a reader can notice. The first delta always goes out at once.
COALESCE_SECONDS = 0.016


class DeltaCoalescer:
    def __init__(self, send: Callable[[str], None], interval: float = COALESCE_SECONDS) -> None:
        self._send = send
        self._interval = interval
        self._pending = ""
        self._last_sent = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def push(self, text: str) -> None:
        if not text:
            return
        self._pending += text
        wait = self._last_sent + self._interval - time.monotonic()
        if wait <= 0:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(wait, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            text, self._pending = self._pending, ""
            self._last_sent = time.monotonic()
            self._send(text)

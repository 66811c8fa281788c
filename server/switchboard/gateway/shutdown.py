"""A replica's stop on SIGTERM (or SIGINT): out of rotation first, then drained, within a cap.

1. At once: `/readyz` answers 503 (`{"status": "shutting down"}`) while the replica goes on serving, for
   `shutdown_delay_seconds`, so the load balancer sees it unready and sends new requests elsewhere before
   the listener closes (a request sent meanwhile is still answered, not refused).
2. Then uvicorn stops accepting and waits for the requests in flight (streams) for at most
   `shutdown_grace_seconds`, after which it cancels them; the replica then waits for its settlements.

A second signal during the delay stops accepting at once (uvicorn's own handling from there: a second
SIGINT is its force quit)."""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType

import uvicorn

log = logging.getLogger("switchboard.gateway")


class Shutdown:
    """Whether the replica has been asked to stop (read by /readyz)."""

    def __init__(self) -> None:
        self.begun = False


class DelayedShutdownServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, shutdown: Shutdown, delay: float) -> None:
        super().__init__(config)
        self._shutdown, self._delay = shutdown, delay
        self._signal: int | None = None
        self._stop_at: float | None = None
        self._announced = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._delay <= 0 or self._shutdown.begun:
            self._shutdown.begun = True
            super().handle_exit(sig, frame)
            return
        # A signal handler: it only sets flags; `on_tick` (every 0.1 s in uvicorn's main loop) acts on them.
        self._shutdown.begun = True
        self._signal, self._stop_at = sig, time.monotonic() + self._delay

    async def on_tick(self, counter: int) -> bool:
        if self._signal is not None and self._stop_at is not None and not self.should_exit:
            if not self._announced:
                self._announced = True
                name = signal.Signals(self._signal).name
                log.info("%s: /readyz answers 503; serving %g s more, then draining", name, self._delay)
            if time.monotonic() >= self._stop_at:
                self._stop_at = None
                super().handle_exit(self._signal, None)
        return await super().on_tick(counter)

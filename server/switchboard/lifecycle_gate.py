"""What the LSP lifecycle lets through at each stage of a session (LSP 3.17, "Lifecycle Messages").

The frame reader asks the gate before a message reaches pygls, so the rules hold for every method,
standard or `switchboard/*`, whether or not its handler is loaded yet:

- before `initialize`, a request is refused with -32002 (ServerNotInitialized) and a notification is
  dropped, except `exit`;
- a second `initialize` is refused with -32600;
- after `shutdown`, a request is refused with -32600 and a notification is dropped, except `exit`.

`initialize` and `shutdown` move the session on only as requests that pygls could decode: a notification
with either name is dropped, and an `initialize` refused for its params can be sent again. `exit` itself
is pygls': it ends the process with 0 after `shutdown`, else 1.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from lsprotocol import types as lsp


class Stage(enum.Enum):
    NOT_INITIALIZED = "not initialized"
    RUNNING = "running"
    SHUT_DOWN = "shut down"


@dataclass(frozen=True)
class Refusal:
    """The error that answers a request the lifecycle does not allow now."""

    code: int
    message: str


NOT_INITIALIZED = Refusal(
    lsp.ErrorCodes.ServerNotInitialized, "The server is not initialized: send `initialize` first."
)
ALREADY_INITIALIZED = Refusal(lsp.ErrorCodes.InvalidRequest, "The server is already initialized.")
SHUTTING_DOWN = Refusal(
    lsp.ErrorCodes.InvalidRequest, "The server is shutting down: only `exit` is accepted."
)
_REQUESTS_ONLY = frozenset({lsp.INITIALIZE, lsp.SHUTDOWN})


class LifecycleGate:
    def __init__(self) -> None:
        self.stage = Stage.NOT_INITIALIZED

    def refuse_request(self, method: str) -> Refusal | None:
        """The refusal for a request of `method` now, or None to hand it on."""
        if self.stage is Stage.NOT_INITIALIZED:
            return None if method == lsp.INITIALIZE else NOT_INITIALIZED
        if self.stage is Stage.SHUT_DOWN:
            return SHUTTING_DOWN
        return ALREADY_INITIALIZED if method == lsp.INITIALIZE else None

    def admits_notification(self, method: str) -> bool:
        if method == lsp.EXIT:
            return True
        return self.stage is Stage.RUNNING and method not in _REQUESTS_ONLY

    def handing_on(self, method: str) -> None:
        """A request of `method` is about to be handled: `initialize` and `shutdown` move the stage on."""
        if method == lsp.INITIALIZE:
            self.stage = Stage.RUNNING
        elif method == lsp.SHUTDOWN:
            self.stage = Stage.SHUT_DOWN

"""The contract between the chat and whatever answers it: one streamed Messages call and how it fails."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from switchboard.logs import scrubber
from switchboard.protocol.messages import Usage


@dataclass(frozen=True)
class ProviderRequest:
    anthropic_model: str
    system: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    max_tokens: int
    thinking_budget: int | None = None


@dataclass
class StreamState:
    """What has arrived so far; read after a failure or cancellation to keep the partial answer."""

    text: str = ""
    thinking: str = ""
    thinking_signature: str | None = None
    stop_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    started: bool = False
    output_reported: bool = False


@dataclass(frozen=True)
class StreamCallbacks:
    on_text: Callable[[str], None]
    on_thinking: Callable[[str], None]


class UpstreamError(Exception):
    """The API could not answer: `status` is None when no HTTP error status was involved.

    The message may quote what upstream said, so registered secrets are scrubbed from it: a proxy that
    echoes the key must not get it into the client, the history or the ledger.
    """

    def __init__(self, message: str, *, status: int | None, type: str, retryable: bool) -> None:
        message = scrubber.scrub(message)
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.retryable = retryable


class AuthenticationFailed(Exception):
    """The API refused the key."""


class ChatProvider(Protocol):
    async def stream(self, request: ProviderRequest, state: StreamState, callbacks: StreamCallbacks) -> None:
        """Streams one answer into `state`, calling back on each delta; raises `UpstreamError` or
        `AuthenticationFailed` when it cannot answer (what arrived so far stays in `state`)."""
        ...

"""The contract between the chat and whatever answers it: one streamed Messages call and how it fails."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from switchboard.logs import scrubber
from switchboard.protocol.messages import Usage


@dataclass(frozen=True)
class AutoHints:
    """What only this server knows of a user for Auto (sent to a gateway, which routes Auto itself)."""

    preference: str
    threshold_shift: float
    last_turn_id: str | None  # the conversation's last answer: the gateway looks up its model and time
    sonnet_answers: int
    stronger_retries: int
    models: tuple[str, ...] | None  # the user's allow-list for Auto


@dataclass(frozen=True)
class TurnTags:
    """Who the turn is for a metering gateway: its id (idempotency key) and the model the user chose."""

    turn_id: str
    model_id: str
    auto: AutoHints | None = None


@dataclass(frozen=True)
class ProviderRequest:
    anthropic_model: str
    system: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    max_tokens: int
    thinking_budget: int | None = None
    tags: TurnTags | None = None


@dataclass(frozen=True)
class GatewayCharge:
    """What a metering gateway charged for the turn, and which model it routed to."""

    credits: float
    routed_model: str | None
    route_reason: str | None
    status: str


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
    charge: GatewayCharge | None = None  # set when a gateway metered the turn


@dataclass(frozen=True)
class StreamCallbacks:
    on_text: Callable[[str], None]
    on_thinking: Callable[[str], None]
    # A gateway that routes Auto itself says which model answers (and why, and whether it fell back to it
    # from a busy one), before the first delta.
    on_route: Callable[[str, str, bool], None] | None = None


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


class TurnRefused(Exception):
    """A metering gateway refused the turn with a final answer (plan, credits, session): `error` is the
    JSON-RPC error to send as it is."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class ChatProvider(Protocol):
    async def stream(self, request: ProviderRequest, state: StreamState, callbacks: StreamCallbacks) -> None:
        """Streams one answer into `state`, calling back on each delta; raises `UpstreamError` or
        `AuthenticationFailed` when it cannot answer (what arrived so far stays in `state`)."""
        ...

    async def close(self) -> None:
        """Closes the provider's HTTP connections (at shutdown)."""
        ...

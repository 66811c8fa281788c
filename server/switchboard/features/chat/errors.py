"""The errors a turn ends with when no answer can come: no key, a rejected key, an upstream failure."""

from __future__ import annotations

from switchboard.catalog import ModelSpec, concrete_id
from switchboard.protocol.errors import AuthRequired, UpstreamFailed
from switchboard.protocol.messages import AuthErrorData, UpstreamErrorData
from switchboard.providers.base import UpstreamError

from .turn import Route

KEY_HELP = (
    "Set ANTHROPIC_API_KEY in the server's environment, or pass `apiKey` in initializationOptions "
    "(in VS Code: run “Switchboard: Set Anthropic API Key”)."
)
REJECTED_KEY = "The Anthropic API rejected the API key."


def missing_key() -> AuthRequired:
    return AuthRequired("No Anthropic API key. " + KEY_HELP, AuthErrorData(reason="missing_key"))


def rejected_key() -> AuthRequired:
    return AuthRequired(f"{REJECTED_KEY} {KEY_HELP}", AuthErrorData(reason="rejected_key"))


def upstream_failed(exc: UpstreamError, suggestion: Route | None) -> UpstreamFailed:
    what_to_do = "Try again in a moment." if exc.retryable else "This request cannot succeed as sent."
    suggested = concrete_id(suggestion.model) if suggestion is not None else None
    if suggestion is not None:
        what_to_do += f" Or switch to {suggestion.model.name}, which is not busy."
    return UpstreamFailed(
        f"{exc.message} {what_to_do}",
        UpstreamErrorData(
            status=exc.status, type=exc.type, retryable=exc.retryable, suggested_model=suggested
        ),
    )


def model_retired(exc: UpstreamError, retirement: str, suggestion: ModelSpec | None) -> UpstreamFailed:
    """Anthropic's "not found" for a model it has retired (`retirement`: `ModelSpec.retirement`), said as
    such, with a model to use instead."""
    instead = f" Choose another model, e.g. {suggestion.name}." if suggestion else " Choose another model."
    return UpstreamFailed(
        f"{retirement}{instead}",
        UpstreamErrorData(
            status=exc.status,
            type=exc.type,
            retryable=False,
            suggested_model=concrete_id(suggestion) if suggestion else None,
        ),
    )

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


SIGN_IN_HELP = "sign in to it (in VS Code: “Switchboard: Sign In”; in the terminal: /signin)"


def missing_key(gateway_url: str | None = None) -> AuthRequired:
    """No key and not signed in; with a gateway configured (`gateway_url`), signing in is offered first."""
    if gateway_url is None:
        return AuthRequired("No Anthropic API key. " + KEY_HELP, AuthErrorData(reason="missing_key"))
    return AuthRequired(
        f"Not signed in to Switchboard Cloud ({gateway_url}) and no Anthropic API key: {SIGN_IN_HELP}; "
        f"or {KEY_HELP[0].lower()}{KEY_HELP[1:]}",
        AuthErrorData(reason="missing_key", gateway_url=gateway_url),
    )


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

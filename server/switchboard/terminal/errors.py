"""Turning the server's JSON-RPC errors (and a dead server) into one clear line that says what to do."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pygls.exceptions import JsonRpcException

from switchboard.protocol.errors import ErrorCode

from .preflight import KEY_HELP

METHOD_NOT_FOUND = -32601

# What to do, per error code: (in the REPL, on the command line).
_HINTS: dict[int, tuple[str, str]] = {
    ErrorCode.PLAN_FORBIDS_MODEL: (
        "Pick a model your plan includes with /model (see /models), or upgrade your plan.",
        "Pick a model your plan includes with --model, or upgrade your plan.",
    ),
    ErrorCode.CREDITS_EXHAUSTED: (
        "Wait for the reset (/usage shows when), turn on overage, or pick a cheaper model with /model.",
        "Wait for the credits to reset, turn on overage, or pick a cheaper model with --model.",
    ),
    ErrorCode.UPSTREAM_FAILED: ("Or pick another model with /model.", "Or pick another model with --model."),
    ErrorCode.CONVERSATION_NOT_FOUND: (
        "/history lists this workspace's conversations; /new starts a new one.",
        "Check the id (and --workspace): the conversation must belong to this workspace.",
    ),
    ErrorCode.PROMPT_TOO_LARGE: (
        "Shorten the prompt or start a fresh conversation with /new.",
        "Shorten the prompt or leave out --conversation.",
    ),
    METHOD_NOT_FOUND: ("This server does not support it yet.", "This server does not support it yet."),
}


# 1004 reasons that are about the Switchboard Cloud session, not an Anthropic key.
_ACCOUNT_REASONS = ("expired", "denied", "no_gateway", "unreachable", "session_ended")
# 1004 reasons that say the refresh token presented is dead.
_SESSION_OVER_REASONS = ("session_ended", "denied", "expired")
SIGN_IN_HELP = "(/signin signs in again; --gateway URL names the gateway.)"


class ServerStopped(Exception):
    """The server process went away (crashed, or never started)."""


def is_cancelled(exc: BaseException) -> bool:
    return isinstance(exc, JsonRpcException) and exc.code == ErrorCode.REQUEST_CANCELLED


def session_over(exc: BaseException) -> bool:
    """Whether a failed resume says the stored session is over (its refresh token is dead: delete it).
    Any other failure (the gateway could not be reached, the server stopped, an internal error) says
    nothing about the token, which is kept for the next start."""
    return (
        isinstance(exc, JsonRpcException)
        and exc.code == ErrorCode.AUTH_REQUIRED
        and _data(exc).get("reason") in _SESSION_OVER_REASONS
    )


def describe(exc: BaseException, *, repl: bool) -> str:
    """One line: what went wrong and what to do about it."""
    if isinstance(exc, JsonRpcException):
        return describe_rpc(exc, repl=repl)
    if isinstance(exc, ServerStopped):
        return str(exc)
    if isinstance(exc, ValidationError):
        return "The server sent a reply this client does not understand; update Switchboard."
    if isinstance(exc, TimeoutError):
        return "The server did not answer in time; try again (logs are in the state directory's logs/)."
    return f"Unexpected error: {exc}"


def describe_rpc(exc: JsonRpcException, *, repl: bool) -> str:
    if exc.code == ErrorCode.AUTH_REQUIRED:
        data = _data(exc)
        if data.get("reason") in _ACCOUNT_REASONS:
            return exc.message.strip() + " " + SIGN_IN_HELP
        gateway = data.get("gatewayUrl")
        if data.get("reason") == "missing_key" and isinstance(gateway, str) and gateway:
            return _sign_in_first(gateway, repl=repl)
        return _auth_message(exc.data) + " " + KEY_HELP
    if exc.code == ErrorCode.REQUEST_CANCELLED:
        return "Cancelled."
    message = exc.message.strip() or f"The server reported error {exc.code}."
    hint = _hint(exc, repl=repl)
    return f"{message} {hint}" if hint else message


def _hint(exc: JsonRpcException, *, repl: bool) -> str | None:
    data = _data(exc)
    suggested = data.get("suggestedModel")
    if exc.code == ErrorCode.UPSTREAM_FAILED and isinstance(suggested, str):
        return f"Or try {suggested} ({'/model' if repl else '--model'} {suggested})."
    if exc.code == ErrorCode.INVALID_PARAMS and data.get("modelId"):
        return "/models lists the models." if repl else "`switchboard chat` then /models lists the models."
    hints = _HINTS.get(exc.code)
    if hints is None:
        return None
    return hints[0] if repl else hints[1]


def _sign_in_first(gateway: str, *, repl: bool) -> str:
    """No key, and a gateway configured but not signed in to: signing in is the way to chat here."""
    how = "/signin signs in" if repl else f"sign in with /signin in `switchboard chat --gateway {gateway}`"
    return (
        f"Not signed in to Switchboard Cloud ({gateway}): {how}. Or use your own Anthropic key: set "
        "ANTHROPIC_API_KEY in your environment and start again."
    )


def _auth_message(data: Any) -> str:
    reason = data.get("reason") if isinstance(data, dict) else None
    if reason == "rejected_key":
        return "The Anthropic API rejected the API key."
    return "No Anthropic API key."


def _data(exc: JsonRpcException) -> dict[str, Any]:
    data: Any = exc.data
    return data if isinstance(data, dict) else {}

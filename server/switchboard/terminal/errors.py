"""Turning the server's JSON-RPC errors (and a dead server) into one clear line that says what to do."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pygls.exceptions import JsonRpcException

from switchboard.protocol.errors import ErrorCode

from .preflight import KEY_HELP

METHOD_NOT_FOUND = -32601
# An HTTP answer (busy, rate-limited, retired, a request this model cannot take, failing) is about the model
# asked for, and another model may help; not a gateway or network that cannot be reached (no status), nor
# an account refused (these statuses).
_NOT_THE_MODEL = (401, 402, 403)
# The terminal has no overage command: where to turn it on.
_OVERAGE_WHERE = (
    "in your editor (“Switchboard: Enable Overage…”) or, signed in, on the account page /usage links"
)
# The same, when the server's message already says to turn overage on or raise its budget.
_OVERAGE_SAID = (
    "use your editor's “Switchboard: Enable Overage…” or, signed in, the account page /usage links"
)

# What to do, per error code: (in the REPL, on the command line).
_HINTS: dict[int, tuple[str, str]] = {
    ErrorCode.PLAN_FORBIDS_MODEL: (  # the server's message says to upgrade or pick another: say how here
        "(/model auto, or /models lists what your plan includes.)",
        "(--model auto, or another model your plan includes.)",
    ),
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
ONE_SHOT_SIGN_IN_HELP = "(Sign in again with /signin in `switchboard chat --gateway URL`.)"


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


def describe(exc: BaseException, *, repl: bool, chat: bool = False) -> str:
    """One line: what went wrong and what to do about it (`chat`: a chat's, where a model was asked)."""
    if isinstance(exc, JsonRpcException):
        return describe_rpc(exc, repl=repl, chat=chat)
    if isinstance(exc, ServerStopped):
        return str(exc)
    if isinstance(exc, ValidationError):
        return "The server sent a reply this client does not understand; update Switchboard."
    if isinstance(exc, TimeoutError):
        return "The server did not answer in time; try again (logs are in the state directory's logs/)."
    return f"Unexpected error: {exc}"


def describe_rpc(exc: JsonRpcException, *, repl: bool, chat: bool = False) -> str:
    if exc.code == ErrorCode.AUTH_REQUIRED:
        data = _data(exc)
        if data.get("reason") in _ACCOUNT_REASONS:
            return exc.message.strip() + " " + sign_in_help(repl=repl)
        gateway = data.get("gatewayUrl")
        if data.get("reason") == "missing_key" and isinstance(gateway, str) and gateway:
            return _sign_in_first(gateway, repl=repl)
        return _auth_message(exc.data) + " " + KEY_HELP
    if exc.code == ErrorCode.REQUEST_CANCELLED:
        return "Cancelled."
    message = exc.message.strip() or f"The server reported error {exc.code}."
    hint = _hint(exc, message, repl=repl, chat=chat)
    return f"{message} {hint}" if hint else message


def _hint(exc: JsonRpcException, message: str, *, repl: bool, chat: bool) -> str | None:
    data = _data(exc)
    suggested = data.get("suggestedModel")
    option = "/model" if repl else "--model"
    if exc.code == ErrorCode.UPSTREAM_FAILED:
        if isinstance(suggested, str):
            return f"Or try {suggested} ({option} {suggested})."
        status = data.get("status")
        if chat and isinstance(status, int) and status not in _NOT_THE_MODEL:
            return f"Or pick another model with {option}."
        return None
    if exc.code == ErrorCode.CREDITS_EXHAUSTED:
        return _credits_hint(data, message, option, repl=repl)
    if exc.code == ErrorCode.INVALID_PARAMS and data.get("modelId"):
        return "/models lists the models." if repl else "`switchboard chat` then /models lists the models."
    hints = _HINTS.get(exc.code)
    if hints is None:
        return None
    return hints[0] if repl else hints[1]


def _credits_hint(data: dict[str, Any], message: str, option: str, *, repl: bool) -> str | None:
    """1002: only what the server's message does not say already (it may name the reset, overage or an
    upgrade, and a cheaper model). Overage (turning it on, or raising its budget) only where the plan has
    it, else upgrading; a cheaper model only when some credits are left. Where to change overage is always
    added: the terminal has no overage command."""
    said = message.lower()
    ways: list[str] = []
    if "reset" not in said:
        ways.append("wait for the reset (/usage shows when)" if repl else "wait for the credits to reset")
    overage_said = "overage" in said
    if data.get("overageEnabled") and not overage_said:
        ways.append(f"raise the overage budget {_OVERAGE_WHERE}")
    elif data.get("overageAvailable") and not overage_said:
        ways.append(f"turn on overage {_OVERAGE_WHERE}")
    elif not data.get("overageAvailable") and not data.get("overageEnabled") and "upgrade" not in said:
        ways.append("upgrade your plan")
    remaining = data.get("remainingCredits")
    if isinstance(remaining, int | float) and remaining > 0 and "cheaper model" not in said:
        ways.append(f"pick a cheaper model with {option}")
    sentences: list[str] = []
    if ways:
        text = ", ".join(ways[:-1]) + " or " + ways[-1] if len(ways) > 1 else ways[0]
        sentences.append(text[0].upper() + text[1:] + ".")
    if overage_said and (data.get("overageAvailable") or data.get("overageEnabled")):
        sentences.append(f"(No overage command here: {_OVERAGE_SAID}.)")
    return " ".join(sentences) or None


def sign_in_help(*, repl: bool) -> str:
    return SIGN_IN_HELP if repl else ONE_SHOT_SIGN_IN_HELP


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

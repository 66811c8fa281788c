"""The JSON-RPC errors for the gateway's answers outside a chat (sign-in, usage, overage)."""

from __future__ import annotations

from switchboard.plans.errors import OverageNotAvailable
from switchboard.protocol.errors import AuthRequired, SwitchboardError, UpstreamFailed
from switchboard.protocol.messages import AuthErrorData, PlanId, UpstreamErrorData

from .gateway_http import GatewayRefused
from .session import SignInFailed

NO_GATEWAY = (
    "No Switchboard Cloud gateway is configured: set SWITCHBOARD_GATEWAY_URL for the server "
    "(VS Code: the switchboard.gateway.url setting; terminal: switchboard chat --gateway URL)."
)


def no_gateway(refused: str | None = None) -> AuthRequired:
    """No gateway configured, or (`refused`: why) one whose URL this server will not send tokens to."""
    return AuthRequired(refused or NO_GATEWAY, AuthErrorData(reason="no_gateway"))


def sign_in_failed(failure: SignInFailed) -> SwitchboardError:
    reason = failure.reason
    if reason not in ("expired", "denied", "no_gateway", "unreachable", "session_ended"):
        reason = "unreachable"
    return AuthRequired(str(failure), AuthErrorData.model_validate({"reason": reason}))


STILL_SIGNED_IN = "Switchboard Cloud refused the request although your session is still active: try again"


def refused(error: GatewayRefused, plan: PlanId, *, signed_in: bool) -> SwitchboardError:
    """From the usage and overage endpoints: 401 → 1004 `session_ended` when the session really ended
    (`signed_in` false: the refresh the session tries after a 401 was refused), a retryable 1003 while it is
    still signed in (a 401 that survived a refresh that succeeded, or one the gateway could not be asked
    about); 403 `overage_not_available` (overage on Free) → 1001; else 1003 (a token without the scope,
    too); each with the gateway's message, retryable as its `x-should-retry` says (else by status)."""
    if error.status == 401:
        if not signed_in:
            return AuthRequired(error.message, AuthErrorData(reason="session_ended"))
        return UpstreamFailed(
            f"{STILL_SIGNED_IN} ({error.message}).",
            UpstreamErrorData(status=401, type=error.type, retryable=True),
        )
    if error.status == 403 and error.type == "overage_not_available":
        return OverageNotAvailable(plan)
    retryable = error.should_retry
    if retryable is None:
        retryable = error.status in (408, 409, 429) or error.status >= 500
    return UpstreamFailed(
        error.message, UpstreamErrorData(status=error.status, type=error.type, retryable=retryable)
    )


def unreachable(message: str) -> UpstreamFailed:
    return UpstreamFailed(message, UpstreamErrorData(status=None, type="connection_error", retryable=True))

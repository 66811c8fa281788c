"""Chats through Switchboard Cloud: the real `anthropic` SDK with the gateway as its base URL and the
session's access token as its bearer token.

The gateway meters the turn and, for Auto, picks the model itself (and falls back to another when it is
busy: this server does not); the response headers say which model answers (before the first delta) and the
`message_delta` event (or the `error` event that ends a cut stream) carries the charge in a `switchboard`
object (docs/gateway.md, "How the charge reaches the client"). Its final refusals become the JSON-RPC errors
the editor already knows, by the error's type as well as its status: 401 → 1004 once the session has ended
(still signed in, as when the refresh after it could not be done, a retryable 1003), 403
`plan_forbids_model` → 1001, 402 `credits_exhausted` → 1002; everything else is 1003 with the gateway's
message (a 403 for a token without the chat scope, a 402 from the Anthropic API passed on: neither is the
user's plan or credits).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from switchboard.plans.catalog import get_plan, is_known_plan
from switchboard.protocol.errors import AuthRequired, CreditsExhausted, PlanForbidsModel
from switchboard.protocol.messages import AuthErrorData, CreditsExhaustedData, PlanForbidsData, PlanId
from switchboard.providers.anthropic_api import RETRYABLE_STATUSES, apply_event, load_sdk, should_retry
from switchboard.providers.base import (
    GatewayCharge,
    ProviderRequest,
    StreamCallbacks,
    StreamState,
    TurnRefused,
    TurnTags,
    UpstreamError,
)

from .errors import STILL_SIGNED_IN
from .gateway_http import tls_failed, tls_failure
from .session import GatewaySession, NotSignedIn, SignInFailed

if TYPE_CHECKING:
    import httpx2
    from anthropic import AsyncAnthropic

log = logging.getLogger(__name__)

TURN_ID_HEADER = "Switchboard-Turn-Id"
MODEL_HEADER = "Switchboard-Model"
AUTO_HEADERS = {
    "preference": "Switchboard-Auto-Preference",
    "shift": "Switchboard-Auto-Shift",
    "last_turn": "Switchboard-Auto-Last-Turn",
    "sonnet_answers": "Switchboard-Auto-Sonnet-Answers",
    "stronger_retries": "Switchboard-Auto-Stronger-Retries",
    "models": "Switchboard-Auto-Models",
}
CLOUD = "Switchboard Cloud"
REFUSED_FRESH_TOKEN = f"{CLOUD} refused a sign-in it had just renewed (your session is still active)."
# The fewest output tokens (beyond any thinking budget) worth asking for when the credits left cannot cover
# the turn's usual `max_tokens`: about 750 words, room for an answer with some code.
MIN_ANSWER_TOKENS = 1024


class GatewayProvider:
    def __init__(
        self,
        session: GatewaySession,
        *,
        timeout: float,
        max_retries: int,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self._session = session
        self._timeout = timeout
        self._max_retries = max_retries
        self._transport = transport
        self._client: AsyncAnthropic | None = None

    async def _sdk(self, access_token: str) -> AsyncAnthropic:
        client = self._client
        if client is None:
            anthropic = await load_sdk()
            http_client = (
                anthropic.DefaultAsyncHttpxClient(transport=self._transport) if self._transport else None
            )
            client = self._client = anthropic.AsyncAnthropic(
                auth_token=access_token,  # explicit, so the SDK never falls back to ANTHROPIC_API_KEY
                base_url=self._session.base_url,
                max_retries=self._max_retries,
                timeout=anthropic.Timeout(self._timeout, connect=min(self._timeout, 10.0)),
                http_client=http_client,
            )
        return client.with_options(auth_token=access_token)

    async def close(self) -> None:
        """Closes the SDK's connections to the gateway (at shutdown)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def stream(self, request: ProviderRequest, state: StreamState, callbacks: StreamCallbacks) -> None:
        try:
            access_token = await self._session.access_token()
        except NotSignedIn as ended:
            raise TurnRefused(AuthRequired(str(ended), AuthErrorData(reason="session_ended"))) from None
        try:
            try:
                await self._fitted(access_token, request, state, callbacks)
            except Exception as exc:
                # A token the gateway no longer takes (it expired while the machine slept, or its key was
                # retired): refresh once and send the turn again, which costs nothing (refused before any
                # reservation) and keeps its turn id.
                if not _unauthorized(exc) or state.started:
                    raise
                if not await self._session.renewed(access_token):
                    if self._session.signed_in:  # the refresh could not be done now, not refused: it lives
                        raise _refused_while_signed_in(exc) from None
                    raise
                try:
                    await self._fitted(await self._session.access_token(), request, state, callbacks)
                except Exception as again:
                    if _unauthorized(again):
                        # Refused although the refresh just succeeded: the session lives (the gateway
                        # would have refused the refresh had it ended), so this is not session_ended.
                        raise UpstreamError(REFUSED_FRESH_TOKEN, status=401, type="authentication_error",
                                            retryable=True) from None  # fmt: skip
                    raise
        except (UpstreamError, TurnRefused):
            raise
        except NotSignedIn as ended:
            raise TurnRefused(AuthRequired(str(ended), AuthErrorData(reason="session_ended"))) from None
        except SignInFailed as failed:  # the refresh after a 401 could not reach the gateway: try again
            raise UpstreamError(str(failed), status=None, type="connection_error", retryable=True) from None
        except Exception as exc:
            raise _classify(exc, state) from exc

    async def _fitted(
        self, access_token: str, request: ProviderRequest, state: StreamState, callbacks: StreamCallbacks
    ) -> None:
        """The turn, sent once more with a smaller `max_tokens` when the gateway refuses its worst case
        (402) but says a `max_tokens` that fits and leaves room for a useful answer (`MIN_ANSWER_TOKENS`
        beyond any thinking budget): the user cannot lower `max_tokens` (this server sets it), and a turn
        refused before its reservation may be sent again with the same turn id."""
        try:
            await self._stream(access_token, request, state, callbacks)
        except Exception as exc:
            fits = _max_tokens_that_fit(exc)
            useful = fits is not None and fits - (request.thinking_budget or 0) >= MIN_ANSWER_TOKENS
            if state.started or fits is None or not useful or fits >= request.max_tokens:
                raise
            log.info("The turn's worst case does not fit the credits left: asking again for %d tokens", fits)
            await self._stream(access_token, replace(request, max_tokens=fits), state, callbacks)

    async def _stream(
        self, access_token: str, request: ProviderRequest, state: StreamState, callbacks: StreamCallbacks
    ) -> None:
        kwargs: dict[str, Any] = {
            "model": request.anthropic_model,
            "system": request.system,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "stream": True,
            "extra_headers": turn_headers(request.tags),
        }
        if request.thinking_budget:
            kwargs["thinking"] = {"type": "enabled", "budget_tokens": request.thinking_budget}
        sdk = await self._sdk(access_token)
        raw = await sdk.messages.with_raw_response.create(**kwargs)
        routed, reason = (
            raw.headers.get("switchboard-routed-model"),
            raw.headers.get("switchboard-route-reason"),
        )
        if routed and callbacks.on_route is not None:
            fell_back = bool(raw.headers.get("switchboard-busy-models"))
            callbacks.on_route(routed, unquote(reason or ""), fell_back)
        stream = await raw.parse()
        async with stream:
            async for event in stream:
                apply_event(event, state, callbacks)
                if event.type == "message_delta":
                    state.charge = parse_charge(getattr(event, "model_extra", None) or {})


def turn_headers(tags: TurnTags | None) -> dict[str, str]:
    if tags is None:
        raise ValueError("a gateway turn needs its turn id and model")
    headers = {TURN_ID_HEADER: tags.turn_id, MODEL_HEADER: tags.model_id}
    auto = tags.auto
    if auto is not None:
        headers[AUTO_HEADERS["preference"]] = auto.preference
        headers[AUTO_HEADERS["shift"]] = f"{auto.threshold_shift:.4f}"
        headers[AUTO_HEADERS["sonnet_answers"]] = str(auto.sonnet_answers)
        headers[AUTO_HEADERS["stronger_retries"]] = str(auto.stronger_retries)
        if auto.last_turn_id:
            headers[AUTO_HEADERS["last_turn"]] = auto.last_turn_id
        if auto.models is not None:
            headers[AUTO_HEADERS["models"]] = ",".join(auto.models)
    return headers


def parse_charge(extra: dict[str, Any]) -> GatewayCharge | None:
    """The gateway's charge from an object holding its `switchboard` object, when that is well formed."""
    block = extra.get("switchboard")
    if not isinstance(block, dict):
        return None
    credits = block.get("credits")
    if isinstance(credits, bool) or not isinstance(credits, int | float):
        return None
    routed, reason, status = block.get("routed_model"), block.get("route_reason"), block.get("status")
    return GatewayCharge(
        credits=float(credits),
        routed_model=routed if isinstance(routed, str) else None,
        route_reason=reason if isinstance(reason, str) else None,
        status=status if isinstance(status, str) else "complete",
    )


def _max_tokens_that_fit(exc: Exception) -> int | None:
    """From the gateway's 402 for a turn whose worst case exceeds the credits left: the largest `max_tokens`
    that fits (None for any other error, or one without it)."""
    import anthropic

    if not isinstance(exc, anthropic.APIStatusError) or exc.status_code != 402:
        return None
    error = _body(exc).get("error")
    if not isinstance(error, dict) or error.get("type") != "credits_exhausted":
        return None
    fits = error.get("max_tokens_that_fit")
    return fits if isinstance(fits, int) and not isinstance(fits, bool) and fits > 0 else None


def _unauthorized(exc: Exception) -> bool:
    import anthropic

    return isinstance(exc, anthropic.APIStatusError) and exc.status_code == 401


def _refused_while_signed_in(exc: Exception) -> UpstreamError:
    """A 401 the session could not refresh for (the gateway did not answer the refresh, or rate-limited
    it): the session is still signed in, so not `session_ended` but a 1003 to try again."""
    found = _body(exc).get("error")
    message = found.get("message") if isinstance(found, dict) else None
    detail = f" ({message})" if isinstance(message, str) and message else ""
    return UpstreamError(
        f"{STILL_SIGNED_IN}{detail}.", status=401, type="authentication_error", retryable=True
    )


def _classify(exc: Exception, state: StreamState) -> Exception:
    import anthropic
    import httpx2

    if isinstance(exc, anthropic.APIStatusError):
        body = _body(exc)
        found = body.get("error")
        error: dict[str, Any] = found if isinstance(found, dict) else {}
        message = str(error.get("message") or exc.api_message or f"{CLOUD} refused the turn.")
        if exc.status_code >= 400:
            refused = _refusal(exc.status_code, message, error)
            if refused is not None:
                return TurnRefused(refused)
        if (charge := parse_charge(body)) is not None:  # the error event that ends a cut stream
            state.charge = charge
        status = None if exc.status_code < 400 else exc.status_code
        kind = str(error.get("type") or exc.type or "api_error")
        # The gateway's `x-should-retry` first: its 502 for a vendor key refused upstream says false.
        retryable = should_retry(exc.response.headers)
        if retryable is None and status is not None:
            retryable = status in RETRYABLE_STATUSES
        elif retryable is None:
            retryable = kind != "invalid_request_error"
        return UpstreamError(f"{CLOUD}: {message}", status=status, type=kind, retryable=retryable)
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return UpstreamError(f"{CLOUD} stopped responding.", status=None, type="timeout", retryable=True)
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        where = "mid-answer" if state.started else "before answering"
        if (reason := tls_failure(exc)) is not None:
            message = tls_failed(f"The connection to {CLOUD} failed {where}", reason)
            return UpstreamError(message, status=None, type="connection_error", retryable=True)
        return UpstreamError(
            f"The connection to {CLOUD} failed {where}.", status=None, type="connection_error", retryable=True
        )
    log.exception("Unexpected error from the gateway")
    return UpstreamError(
        f"Unexpected error: {type(exc).__name__}", status=None, type="unknown", retryable=True
    )


def _refusal(status: int, message: str, error: dict[str, Any]) -> Exception | None:
    """The gateway's own refusal as the JSON-RPC error for it, by type: None for any other (a 1003). A 403
    `permission_error` (a token without the chat scope: its message says to sign in again) is no plan's
    refusal, and a 402 the gateway passes on from the Anthropic API (`billing_error`: the gateway's vendor
    account) says nothing about the user's credits."""
    kind = error.get("type")
    if status == 401:
        return AuthRequired(message, AuthErrorData(reason="session_ended"))
    if status == 403 and kind == "plan_forbids_model":
        plan = _plan(error.get("plan"))
        allowed = [p for p in error.get("allowed_plans") or [] if isinstance(p, str) and is_known_plan(p)]
        model_id = error.get("model_id")
        data = PlanForbidsData(
            model_id=model_id if isinstance(model_id, str) else "", plan=plan, allowed_plans=_plans(allowed)
        )
        return PlanForbidsModel(message, data)
    if status == 402 and kind == "credits_exhausted":
        remaining, needed = _number(error.get("remaining_credits")), _number(error.get("needed_credits"))
        too_large = bool(remaining and needed and needed > remaining)
        data = CreditsExhaustedData(
            plan=_plan(error.get("plan")),
            remaining_credits=remaining or 0.0,
            overage_available=error.get("overage_available") is True,
            # A gateway that does not say (older than this field) leaves it false: "Enable overage" then.
            overage_enabled=error.get("overage_enabled") is True,
            needed_credits=needed if too_large else None,
        )
        if too_large:
            # Credits remain, but not the turn's worst case. The gateway's advice (lower max_tokens) is not
            # the editor user's to follow: this server sets max_tokens (and asked again with what fits,
            # when that was enough for a useful answer).
            message = (
                f"This answer could cost up to {needed:g} credits and {remaining:g} are left, not enough for "
                "it. Pick a cheaper model (Claude Haiku 4.5 costs least) or start a new conversation (a "
                "shorter one costs less)."
            )
        return CreditsExhausted(message, data)
    return None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _plan(value: object) -> PlanId:
    return get_plan(value).id if isinstance(value, str) and is_known_plan(value) else "free"


def _plans(values: list[str]) -> list[PlanId]:
    return [get_plan(value).id for value in values]


def _body(exc: Any) -> dict[str, Any]:
    body = exc.body
    if isinstance(body, str | bytes):
        try:
            body = json.loads(body)
        except ValueError:
            return {}
    return body if isinstance(body, dict) else {}

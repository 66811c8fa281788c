"""Everything a replica holds while it runs: settings, the pool, the upstream client, keys and the router.

Also the steps every turn takes before it is forwarded: authenticate, check the account and its plan,
refuse a forbidden model, route Auto, reserve the worst case.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from switchboard.catalog.models import CATALOG, ModelSpec
from switchboard.plans import wording
from switchboard.plans.billed import with_billed_note
from switchboard.plans.catalog import PlanSpec, allowed_plans, get_plan
from switchboard.plans.credits import from_hundredths
from switchboard.plans.entitlement import Entitlement
from switchboard.plans.period import period_of
from switchboard.protocol.messages import PlanId, Usage
from switchboard.routing import NoRoutableModelError, auto_fallback, busy_reason

from . import ledger
from .accounts import Account, get_account
from .auto import AnsweredTurns, AutoRouter, LastAnswer, billed_as
from .batches import LANES, LedgerBatches
from .body import LargeBodies
from .config import GatewaySettings
from .db import LedgerConnection, LedgerPool, LedgerUnavailable, Pool, ledger_connection
from .errors import GatewayRefusal, unauthenticated
from .estimate import input_to_reserve, max_tokens_within, reservation_h
from .ledger import Outcome, Reservation, Settlement, TurnKey
from .liveness import LiveTurns, Metered
from .signin.scopes import CHAT, SCOPES, Scope
from .tokens import TokenAuthority, TokenRefused
from .turn_request import TurnRequest
from .upstream import Upstream

log = logging.getLogger("switchboard.gateway")
# Signing in again cannot help: only the gateway's administrator can reinstate an account.
REVOKED = "This account is revoked: ask the gateway's administrator to reinstate it."
# A settlement PostgreSQL refused is retried after this, doubling up to 2 s, for at least this long.
SETTLE_RETRY_FIRST_SECONDS = 0.2
SETTLE_RETRY_SECONDS = 120.0


@dataclass(frozen=True)
class Caller:
    """The account and plan a verified access token names. Only a hint until the reservation, which checks
    in the same call that the account is active and that its plan (the database's) allows the model."""

    id: str
    plan: PlanId

    @property
    def spec(self) -> PlanSpec:
        return get_plan(self.plan)


@dataclass(frozen=True)
class Choice:
    """The model that answers a turn and why (for a concrete model: that model, "Chosen by you")."""

    model: ModelSpec
    reason: str


class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        pools: tuple[Pool, LedgerPool],
        upstream: Upstream,
        authority: TokenAuthority,
    ) -> None:
        self.settings, self.upstream, self.authority = settings, upstream, authority
        self.pool, self.ledger_pool = pools  # psycopg (accounts, usage, sign-in); asyncpg (the ledger, `db`)
        self.auto = AutoRouter()
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        self.ttl = timedelta(seconds=settings.reservation_ttl_seconds)
        self._background: set[asyncio.Task[Any]] = set()
        self._retrying: set[asyncio.Task[None]] = set()
        largest = settings.ledger_batch_max  # 1: every turn alone, as many at once as the pool allows
        self.batches = LedgerBatches(
            self.ledger,
            largest=largest,
            lanes=LANES if largest > 1 else settings.pool_max_size,
            timeout=settings.pool_timeout_seconds,
        )
        self.batches.on_abandoned(self._release_abandoned)
        self.live = LiveTurns()
        self.answered = AnsweredTurns()  # Auto's last answers, when this replica gave them
        self.bodies = LargeBodies()  # the thread that parses large request bodies, one at a time

    def ledger(self) -> contextlib.AbstractAsyncContextManager[LedgerConnection]:
        """A connection of the ledger's pool for one statement (raises `LedgerUnavailable`)."""
        return ledger_connection(self.ledger_pool, self.settings.pool_timeout_seconds)

    # --- before forwarding ---------------------------------------------------------------------------

    async def authenticate(self, request: Request, scope: Scope = CHAT) -> Account:
        """The active account behind the request's bearer token, which must carry `scope`; raises a 401
        refusal (or 403 `insufficient_scope`, RFC 6750 §3.1). The access log names the account from here."""
        account = await self._active_account(self._entitlement(request, scope).account_key)
        request.state.account = account.id
        return account

    def caller(self, request: Request) -> Caller:
        """Who the request's bearer token says is asking (raises a 401 refusal, or 403 without the chat
        scope), without a database read: for a turn, whose reservation checks the account in the same call."""
        entitlement = self._entitlement(request, CHAT)
        request.state.account = entitlement.account_key
        return Caller(entitlement.account_key, entitlement.plan)

    def _entitlement(self, request: Request, scope: Scope) -> Entitlement:
        token = bearer_token(request)
        if token is None:
            raise unauthenticated("Send an access token: Authorization: Bearer <token>.")
        try:
            verified = self.authority.verify(token)
        except TokenRefused as refused:
            raise unauthenticated(str(refused)) from None
        if scope not in verified.scopes:
            raise GatewayRefusal(
                403,
                "permission_error",
                f"This sign-in was not granted the {scope} scope: sign in again asking for it.",
                details={"error": "insufficient_scope", "scope": scope},
                headers={"www-authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
            )
        return verified.entitlement

    async def _active_account(self, account_id: str) -> Account:
        async with self.pool.connection() as conn:
            account = await get_account(conn, account_id)
        if account is None or not account.active:
            raise unauthenticated(REVOKED)
        return account

    async def choose(self, account: Account | Caller, turn: TurnRequest) -> Choice:
        """The model that answers: a concrete model if the plan allows it, else what Auto picks."""
        plan = account.spec
        if not plan.allows(turn.model.id):
            if isinstance(account, Caller):  # the token's plan may be out of date: the database's decides
                return await self.choose(await self._active_account(account.id), turn)
            raise _plan_refusal(turn.model.id, plan)
        if turn.model.id != "auto":
            return Choice(turn.model, "Chosen by you")
        # As the language server does: every model the plan allows; the router keeps to its own (never Opus).
        allowed = [model for model in CATALOG if plan.allows(model)]
        last = await self._last_answer(account, turn.auto.last_turn_id)
        try:
            route = self.auto.route(turn.body, allowed, turn.auto, last)
        except NoRoutableModelError:
            raise GatewayRefusal(
                403, "plan_forbids_model", "Your plan allows none of Auto's models."
            ) from None
        return Choice(route.model, with_billed_note(route.reason, route.model.id, turn.auto.models))

    def fallback(
        self, account: Account | Caller, turn: TurnRequest, busy: Choice, tried: list[str]
    ) -> Choice | None:
        """For an Auto turn whose model answered busy (429, 529, `overloaded_error`) before any output: the
        next model Auto may use, as the language server falls back in local mode (`auto_fallback`: among
        Auto's models that the plan and the user's list allow, none of `tried`). None for a concrete model,
        which the user chose and which only they may change. Billed as `choose` bills it (`billed_as`);
        the caller reserves again, for the fallback's worst case."""
        if turn.model.id != "auto":
            return None
        allowed = [model for model in CATALOG if account.spec.allows(model)]
        if turn.auto.models is not None:
            allowed = [model for model in allowed if model in turn.auto.models]
        model = auto_fallback(busy.model.id, allowed, tried)
        if model is None:
            return None
        reason = with_billed_note(busy_reason(busy.model.id, model), model, turn.auto.models)
        return Choice(CATALOG[model], reason)

    async def _last_answer(self, account: Account | Caller, turn_id: str | None) -> LastAnswer | None:
        """The conversation's last answer for prompt-cache stickiness, from this account's own ledger: a
        turn id the gateway did not answer for this account counts as no last answer."""
        if turn_id is None:
            return None
        answered_here = self.answered.get(account.id, turn_id)
        if answered_here is not None:
            return answered_here
        async with self.ledger() as conn:
            found = await ledger.answered_turn(conn, TurnKey(account.id, turn_id))
        return LastAnswer(*found) if found is not None else None

    async def reserve(
        self, account: Account | Caller, turn: TurnRequest, choice: Choice, input_tokens: int
    ) -> Reservation:
        """Hold the turn's worst case: `input_tokens` (`estimate`) with what the body's size undercounts
        (`TurnRequest.unseen_input_tokens`), or the answering model's whole context window when some
        content's size is not in the body (`TurnRequest.unmeasured_input`), and `max_tokens` of output."""
        input_tokens = input_to_reserve(
            input_tokens + turn.unseen_input_tokens, unmeasured=turn.unmeasured_input, answering=choice.model
        )
        billed = billed_as(turn.model.id, choice.model.id, turn.auto)
        hold = ledger.Hold(
            TurnKey(account.id, turn.turn_id),
            period=period_of(datetime.now(UTC)).key,
            model_id=billed,
            routed_model=choice.model.id,
            route_reason=choice.reason,
            reserved_h=reservation_h(billed, input_tokens, turn.max_tokens),
            replica=self.replica,
            ttl=self.ttl,
        )
        try:
            reservation = await self.batches.reserve(hold)
        except ledger.InsufficientCredits as short:
            raise _credits_refusal(short, turn, billed, input_tokens) from None
        except ledger.TurnInProgress:
            raise GatewayRefusal(
                409, "turn_in_progress", "This turn is being answered by another request.", retry=True
            ) from None
        except ledger.TurnAlreadySettled as done:
            raise _settled_refusal(done.settlement) from None
        except ledger.AccountGone:
            raise unauthenticated(REVOKED) from None
        except ledger.PlanForbids as forbids:  # the plan changed since this request was authenticated
            raise _plan_refusal(turn.model.id, get_plan(forbids.plan)) from None
        self.live.add(reservation)
        return reservation

    # --- while and after forwarding ------------------------------------------------------------------

    async def settle(self, reservation: Reservation, outcome: Outcome) -> Settlement:
        """Settle the turn; runs to the end even if the request that started it is cancelled."""
        task = asyncio.ensure_future(self._settle(reservation, outcome))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return await asyncio.shield(task)

    async def _settle(self, reservation: Reservation, outcome: Outcome) -> Settlement:
        try:
            settlement = await self.batches.settle(reservation, outcome)
        finally:
            # Also when PostgreSQL refused: `settle_later` keeps alive what it retries; a settlement nobody
            # retries must not be renewed forever (it expires and the sweep settles it from its checkpoint).
            self.live.discard(reservation)
        if settlement.status in ("complete", "cut") and not settlement.already:
            key = reservation.key
            self.answered.remember(
                key.account_id, key.turn_id, LastAnswer(reservation.routed_model, time.time())
            )
        if settlement.superseded and outcome.status != "failed":
            # This replica stalled past the reservation, the sweep freed the turn and the client retried it;
            # or PostgreSQL lost this attempt's reservation (a crash) and the client retried it.
            log.warning(
                "an attempt's answer was not charged: another attempt owns the turn id",
                extra={"account": reservation.key.account_id, "turn_id": reservation.key.turn_id},
            )
        return settlement

    def _release_abandoned(self, reservation: Reservation) -> None:
        """A reservation made for a request cancelled meanwhile (the replica stopping): nothing was forwarded,
        so it is settled free now rather than held until it expires."""
        task = asyncio.ensure_future(self._release(reservation))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _release(self, reservation: Reservation) -> None:
        outcome = Outcome("failed", Usage(), "the request was cancelled before it was forwarded")
        try:
            await self.settle(reservation, outcome)
        except LedgerUnavailable:
            self.settle_later(reservation, outcome)

    def meter(self, reservation: Reservation, meter: Metered) -> None:
        """Checkpoint a stream's usage with every heartbeat: what the reaper charges if this replica stops."""
        self.live.meter(reservation, meter)

    async def settle_waiting(self, reservation: Reservation, outcome: Outcome) -> Settlement:
        """Settle now, or as soon as PostgreSQL answers again within `settle_wait_seconds` (a restart or a
        failover takes seconds); raises `LedgerUnavailable` if it does not."""
        deadline = time.monotonic() + self.settings.settle_wait_seconds
        delay = SETTLE_RETRY_FIRST_SECONDS
        while True:
            try:
                return await self.settle(reservation, outcome)
            except LedgerUnavailable:
                if time.monotonic() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def settle_later(self, reservation: Reservation, outcome: Outcome) -> None:
        """Keep trying to settle a turn whose settlement PostgreSQL refused, until it answers again.

        So an answer that streamed whole while the ledger was away is charged exactly once it is back,
        not at its last checkpoint. The turn stays renewed meanwhile; if the outage outlasts the
        reservation, a sweep may settle it from its checkpoint first (provisionally), and this settlement
        then raises that charge to the real usage."""
        self._keep_alive(reservation, outcome)
        task = asyncio.ensure_future(self._settle_when_possible(reservation, outcome))
        self._retrying.add(task)
        task.add_done_callback(self._retrying.discard)

    def _keep_alive(self, reservation: Reservation, outcome: Outcome) -> None:
        """Renew the turn while its settlement is retried, checkpointed at the outcome being settled, so the
        sweep leaves it to this replica (and charges that outcome if the replica dies meanwhile)."""
        self.live.add(reservation)
        self.live.meter(reservation, _Settling(outcome.usage, outcome.status != "failed"))

    async def _settle_when_possible(self, reservation: Reservation, outcome: Outcome) -> None:
        delay = SETTLE_RETRY_FIRST_SECONDS
        deadline = time.monotonic() + max(SETTLE_RETRY_SECONDS, self.ttl.total_seconds() * 2)
        while True:
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            try:
                await self._settle(reservation, outcome)
                log.info(
                    "settled a turn once PostgreSQL was back", extra={"turn_id": reservation.key.turn_id}
                )
                return
            except LedgerUnavailable as error:
                if time.monotonic() > deadline:
                    log.error("gave up settling a turn (%s): the reaper settles it", error)
                    return
                self._keep_alive(reservation, outcome)
            delay = min(delay * 2, 2.0)

    async def drain(self) -> None:
        """Wait for settlements in flight (at shutdown), then keep retrying those PostgreSQL refused for at
        most `shutdown_settle_seconds`; what is left then is the sweep's, at each turn's last checkpoint."""
        # A group finishing may hand back a reservation (a new settlement), and a settlement waits on a group.
        while self._background or self.batches.sending:
            await asyncio.gather(*self._background, self.batches.drain(), return_exceptions=True)
        if not self._retrying:
            return
        _, pending = await asyncio.wait(self._retrying, timeout=self.settings.shutdown_settle_seconds)
        if pending:
            log.warning(
                "stopping with %d settlement(s) PostgreSQL has not taken after %g s: the sweep charges each"
                " turn at its last checkpoint",
                len(pending),
                self.settings.shutdown_settle_seconds,
            )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


@dataclass(frozen=True)
class _Settling:
    """The usage of a turn whose settlement is being retried, for the heartbeat's checkpoint."""

    settled_usage: Usage
    output_seen: bool

    def usage(self) -> Usage:
        return self.settled_usage

    def read(self) -> None:
        pass


AccountHandler = Callable[[Request, Gateway, Account], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def account_endpoint(scope: Scope = CHAT) -> Callable[[AccountHandler], Endpoint]:
    """An endpoint for the bearer token's active account, which must carry `scope`: the handler gets the
    gateway and the account (already in the access log) and holds only its own logic. Whatever it refuses
    (`GatewayRefusal`, raised anywhere in it) is answered as Anthropic's error JSON, as authentication is."""
    if scope not in SCOPES:  # what pyright catches, also when the module is imported unchecked
        raise ValueError(f"no such scope {scope!r}: the scopes are {', '.join(SCOPES)}")

    def wrap(handler: AccountHandler) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            gateway: Gateway = request.app.state.gateway
            try:
                return await handler(request, gateway, await gateway.authenticate(request, scope))
            except GatewayRefusal as refusal:
                return refusal.response()

        return endpoint

    return wrap


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


def _credits_refusal(
    short: ledger.InsufficientCredits, turn: TurnRequest, billed: str, input_tokens: int
) -> GatewayRefusal:
    account = short.account
    fits = max_tokens_within(billed, input_tokens, short.available_h)
    period = period_of(datetime.now(UTC))
    if short.available_h <= 0 and not account.overage_on:
        message = wording.credits_exhausted(account.spec.id, period)
    elif short.available_h <= 0 and account.budget_usd is not None:
        message = wording.budget_reached(account.budget_usd, period)
    elif turn.unmeasured_input:
        message = (
            f"This turn may use up to {from_hundredths(short.needed_h)} credits and "
            f"{from_hundredths(short.available_h)} are left: a document or image given by URL or file id "
            f"is reserved at the model's whole context window ({input_tokens:,} input tokens), since its "
            "size cannot be seen before Anthropic reads it. Send it inline (base64) or pick a cheaper model."
        )
    else:
        message = (
            f"This turn may use up to {from_hundredths(short.needed_h)} credits and "
            f"{from_hundredths(short.available_h)} are left. "
            f"Lower max_tokens (at most {fits} fits) or pick a cheaper model."
        )
    return GatewayRefusal(
        402,
        "credits_exhausted",
        message,
        details={
            "plan": account.spec.id,
            "remaining_credits": float(from_hundredths(short.available_h)),
            "needed_credits": float(from_hundredths(short.needed_h)),
            "max_tokens_that_fit": fits,
            "overage_available": account.spec.overage_available,
            "overage_enabled": account.overage_on,
        },
    )


def _plan_refusal(model_id: str, plan: PlanSpec) -> GatewayRefusal:
    return GatewayRefusal(
        403,
        "plan_forbids_model",
        wording.plan_forbids(model_id, plan.id),
        details={"model_id": model_id, "plan": plan.id, "allowed_plans": allowed_plans(model_id)},
    )


def _settled_refusal(settlement: Settlement) -> GatewayRefusal:
    return GatewayRefusal(
        409,
        "turn_already_settled",
        "This turn was already answered and charged; send a new turn id to ask again.",
        details={
            "turn_id": settlement.turn_id,
            "status": settlement.status,
            "credits": float(from_hundredths(settlement.credits_h)),
        },
    )

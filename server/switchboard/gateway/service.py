"""Everything a replica holds while it runs: settings, the pool, the upstream client, keys and the router.

Also the steps every turn takes before it is forwarded: authenticate, load the account and its plan,
refuse a forbidden model, route Auto, reserve the worst case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from starlette.requests import Request

from switchboard.catalog.models import CATALOG, ModelSpec
from switchboard.plans import wording
from switchboard.plans.catalog import allowed_plans
from switchboard.plans.credits import from_hundredths
from switchboard.plans.period import period_of
from switchboard.protocol.messages import Usage
from switchboard.routing import NoRoutableModelError

from . import ledger
from .accounts import Account, get_account
from .auto import AutoRouter, LastAnswer
from .config import GatewaySettings
from .db import Pool
from .errors import GatewayRefusal, unauthenticated
from .estimate import max_tokens_within, reservation_h
from .ledger import Outcome, Reservation, Settlement, TurnKey
from .tokens import TokenAuthority, TokenRefused
from .turn_request import TurnRequest
from .upstream import Upstream

log = logging.getLogger("switchboard.gateway")
# A settlement PostgreSQL refused is retried after this, doubling up to 2 s, for at least this long.
SETTLE_RETRY_FIRST_SECONDS = 0.2
SETTLE_RETRY_SECONDS = 120.0


class AccountQueue:
    """One ledger transaction per account at a time in this replica.

    An account's transactions serialize on its balance row in PostgreSQL anyway; queueing them here first
    means a turn waiting for that row waits without holding a pooled connection. Otherwise one account
    sending a hundred turns at once would hold the whole pool while they queue on its row, and every
    other account would get 503s."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def turn_of(self, account_id: str) -> AsyncGenerator[None]:
        lock, users = self._locks.get(account_id, (asyncio.Lock(), 0))
        self._locks[account_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[account_id]
            if users == 1:
                del self._locks[account_id]
            else:
                self._locks[account_id] = (lock, users - 1)


@dataclass(frozen=True)
class Choice:
    """The model that answers a turn and why (for a concrete model: that model, "Chosen by you")."""

    model: ModelSpec
    reason: str


class Gateway:
    def __init__(
        self, settings: GatewaySettings, pool: Pool, upstream: Upstream, authority: TokenAuthority
    ) -> None:
        self.settings, self.pool, self.upstream, self.authority = settings, pool, upstream, authority
        self.auto = AutoRouter()
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        self.ttl = timedelta(seconds=settings.reservation_ttl_seconds)
        self._background: set[asyncio.Task[Any]] = set()
        self._retrying: set[asyncio.Task[None]] = set()
        self.accounts = AccountQueue()

    # --- before forwarding ---------------------------------------------------------------------------

    async def authenticate(self, request: Request, scope: str = "chat") -> Account:
        """The active account behind the request's bearer token, which must carry `scope`; raises a 401
        refusal (or 403 `insufficient_scope`, RFC 6750 §3.1)."""
        token = bearer_token(request)
        if token is None:
            raise unauthenticated("Send an access token: Authorization: Bearer <token>.")
        try:
            entitlement = self.authority.verify(token)
        except TokenRefused as refused:
            raise unauthenticated(str(refused)) from None
        if scope not in self.authority.scopes(token):
            raise GatewayRefusal(
                403,
                "permission_error",
                f"This sign-in was not granted the {scope} scope: sign in again asking for it.",
                details={"error": "insufficient_scope", "scope": scope},
                headers={"www-authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
            )
        async with self.pool.connection() as conn:
            account = await get_account(conn, entitlement.account_key)
        if account is None or not account.active:
            raise unauthenticated("This account is revoked: sign in again or contact support.")
        return account

    async def choose(self, account: Account, turn: TurnRequest) -> Choice:
        """The model that answers: a concrete model if the plan allows it, else what Auto picks."""
        plan = account.spec
        if not plan.allows(turn.model.id):
            raise GatewayRefusal(
                403,
                "plan_forbids_model",
                wording.plan_forbids(turn.model.id, plan.id),
                details={
                    "model_id": turn.model.id,
                    "plan": plan.id,
                    "allowed_plans": allowed_plans(turn.model.id),
                },
            )
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
        return Choice(route.model, route.reason)

    async def _last_answer(self, account: Account, turn_id: str | None) -> LastAnswer | None:
        """The conversation's last answer for prompt-cache stickiness, from this account's own ledger: a
        turn id the gateway did not answer for this account counts as no last answer."""
        if turn_id is None:
            return None
        async with self.pool.connection() as conn:
            found = await ledger.answered_turn(conn, TurnKey(account.id, turn_id))
        return LastAnswer(*found) if found is not None else None

    async def reserve(self, account: Account, turn: TurnRequest, choice: Choice) -> Reservation:
        needed = reservation_h(turn.model.id, turn.body, turn.max_tokens)
        key = TurnKey(account.id, turn.turn_id)
        try:
            async with self.accounts.turn_of(account.id), self.pool.connection() as conn:
                return await ledger.reserve(
                    conn,
                    key,
                    period=period_of(datetime.now(UTC)).key,
                    model_id=turn.model.id,
                    routed_model=choice.model.id,
                    route_reason=choice.reason,
                    reserved_h=needed,
                    ttl=self.ttl,
                    replica=self.replica,
                )
        except ledger.InsufficientCredits as short:
            raise _credits_refusal(short, turn) from None
        except ledger.TurnInProgress:
            raise GatewayRefusal(
                409, "turn_in_progress", "This turn is being answered by another request.", retry=True
            ) from None
        except ledger.TurnAlreadySettled as done:
            raise _settled_refusal(done.settlement) from None
        except ledger.AccountGone:
            raise unauthenticated("This account is revoked: sign in again or contact support.") from None

    # --- while and after forwarding ------------------------------------------------------------------

    async def settle(self, reservation: Reservation, outcome: Outcome) -> Settlement:
        """Settle the turn; runs to the end even if the request that started it is cancelled."""
        task = asyncio.ensure_future(self._settle(reservation, outcome))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return await asyncio.shield(task)

    async def _settle(self, reservation: Reservation, outcome: Outcome) -> Settlement:
        async with self.accounts.turn_of(reservation.key.account_id), self.pool.connection() as conn:
            return await ledger.settle(conn, reservation, outcome)

    @contextlib.asynccontextmanager
    async def held(self, reservation: Reservation) -> AsyncGenerator[None]:
        """Keep the reservation alive while the gateway waits on the Anthropic API (for the first byte of a
        stream, or for a whole non-streamed answer), so a slow upstream never lets it expire and be
        reaped while the turn is still being answered."""
        beating = True

        async def beat() -> None:
            interval = self.ttl.total_seconds() / 3
            while beating:
                await asyncio.sleep(interval)
                if not beating:
                    return
                try:
                    await self.checkpoint(reservation, Outcome("failed", Usage()), output_seen=False)
                except Exception as error:  # a missed beat is retried; the reaper is the backstop
                    log.warning("checkpoint of a turn failed: %s", type(error).__name__)

        task = asyncio.ensure_future(beat())
        try:
            yield
        finally:
            beating = False  # as well as cancelling: a lost cancellation must not keep it beating
            task.cancel()

    def settle_later(self, reservation: Reservation, outcome: Outcome) -> None:
        """Keep trying to settle a turn whose settlement PostgreSQL refused, until it answers again.

        So an answer that streamed whole while the ledger was away is charged exactly once it is back,
        not at its last checkpoint. If the outage outlasts the reservation, the reaper may settle the turn
        from its checkpoint first; this then finds it settled and stops."""
        task = asyncio.ensure_future(self._settle_when_possible(reservation, outcome))
        self._retrying.add(task)
        task.add_done_callback(self._retrying.discard)

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
            except psycopg.Error as error:
                if time.monotonic() > deadline:
                    log.error("gave up settling a turn (%s): the reaper settles it", type(error).__name__)
                    return
            delay = min(delay * 2, 2.0)

    async def checkpoint(self, reservation: Reservation, outcome: Outcome, output_seen: bool) -> bool:
        async with self.pool.connection() as conn:
            return await ledger.checkpoint(
                conn, reservation.key, outcome.usage, output_seen=output_seen, ttl=self.ttl
            )

    async def drain(self) -> None:
        """Wait for settlements in flight (at shutdown); give retried ones a moment, then the reaper."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._retrying:
            _, pending = await asyncio.wait(self._retrying, timeout=SETTLE_RETRY_FIRST_SECONDS * 10)
            for task in pending:
                task.cancel()


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


def _credits_refusal(short: ledger.InsufficientCredits, turn: TurnRequest) -> GatewayRefusal:
    account = short.account
    fits = max_tokens_within(turn.model.id, turn.body, short.available_h)
    period = period_of(datetime.now(UTC))
    if short.available_h <= 0 and not account.overage_on:
        message = wording.credits_exhausted(account.spec.id, period)
    elif short.available_h <= 0 and account.budget_usd is not None:
        message = wording.budget_reached(account.budget_usd, period)
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
        },
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

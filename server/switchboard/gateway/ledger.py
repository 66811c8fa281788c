"""The ledger: reserve a turn's worst case, checkpoint it while it streams, settle it exactly, once.

Amounts are integer hundredths of a credit (`_h`). Each account has one `account_periods` row a month with
what it used, what of that is overage, and what reservations in flight hold; every transaction that moves
credits locks that row first (then the turn's row), so an account's turns never race each other and no
two accounts ever wait on one another. Times that decide expiry are the database's `now()`, so replicas
with skewed clocks agree on which reservation has expired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from switchboard.plans.credits import credits_for, to_hundredths
from switchboard.protocol.messages import Usage

from .accounts import Account, get_account

Status = Literal["reserved", "complete", "cut", "failed"]
Conn = AsyncConnection[DictRow]


@dataclass(frozen=True)
class TurnKey:
    account_id: str
    turn_id: str


@dataclass(frozen=True)
class Reservation:
    key: TurnKey
    period: str
    model_id: str  # the model the user chose: what the turn is billed as (Auto is 1.0x)
    routed_model: str
    reserved_h: int


@dataclass(frozen=True)
class Outcome:
    """How a turn ended: `complete` (whole answer), `cut` (output began, then stopped), `failed` (none)."""

    status: Literal["complete", "cut", "failed"]
    usage: Usage
    reason: str | None = None


@dataclass(frozen=True)
class Settlement:
    turn_id: str
    status: Status
    credits_h: int
    overage_h: int
    already: bool = False  # settled before this call (by the reaper, or an earlier attempt)


class InsufficientCredits(Exception):
    def __init__(self, account: Account, needed_h: int, available_h: int) -> None:
        super().__init__("the reservation does not fit the allowance plus the overage budget")
        self.account, self.needed_h, self.available_h = account, needed_h, available_h


class TurnInProgress(Exception):
    """Another attempt at this turn holds a live reservation."""


class TurnAlreadySettled(Exception):
    def __init__(self, settlement: Settlement) -> None:
        super().__init__(f"turn {settlement.turn_id!r} was already answered")
        self.settlement = settlement


class AccountGone(Exception):
    """The account was revoked (or deleted) between authentication and reservation."""


def limit_h(account: Account) -> int | None:
    """The most this account may use this period: the allowance plus the overage budget (None: no cap)."""
    included = account.spec.monthly_credits * 100
    if not account.overage_on:
        return included
    if account.overage_budget_cents is None:
        return None
    # $0.04 a credit: a budget of B cents buys B / 4 credits, i.e. 25·B hundredths (rounded down).
    return included + account.overage_budget_cents * 25


async def reserve(
    conn: Conn,
    key: TurnKey,
    *,
    period: str,
    model_id: str,
    routed_model: str,
    route_reason: str,
    reserved_h: int,
    ttl: timedelta,
    replica: str,
) -> Reservation:
    """Hold `reserved_h` for this turn in one transaction, or raise why not.

    A refusal is raised after the transaction commits, so an orphaned attempt it settled on the way (see
    `_repeat`) stays settled."""
    async with conn.transaction():
        balance = await _lock_balance(conn, key.account_id, period)
        account = await get_account(conn, key.account_id)
        if account is None or not account.active:
            raise AccountGone()
        existing = await _lock_turn(conn, key)
        refusal = await _repeat(conn, existing, balance) if existing is not None else None
        if refusal is None:
            if existing is not None:  # `_repeat` may have released an orphaned attempt's reservation
                balance = await _lock_balance(conn, key.account_id, period)
            cap = limit_h(account)
            available = None if cap is None else cap - balance["used_h"] - balance["reserved_h"]
            if available is not None and reserved_h > available:
                refusal = InsufficientCredits(account, reserved_h, max(0, available))
            else:
                await _hold(conn, key, period, model_id, routed_model, route_reason, reserved_h, ttl, replica)
    if refusal is not None:
        raise refusal
    return Reservation(key, period, model_id, routed_model, reserved_h)


async def _hold(
    conn: Conn,
    key: TurnKey,
    period: str,
    model_id: str,
    routed_model: str,
    route_reason: str,
    reserved_h: int,
    ttl: timedelta,
    replica: str,
) -> None:
    """Record the turn as reserved (a new turn, or a new attempt at one that failed before output)."""
    await conn.execute(
        """
        WITH turn AS (
        INSERT INTO turns (account_id, turn_id, period, model_id, routed_model, route_reason, status,
                           reserved_h, replica, expires_at)
        VALUES (%s, %s, %s, %s, %s, %s, 'reserved', %s, %s, now() + %s)
        ON CONFLICT (account_id, turn_id) DO UPDATE SET
            period = excluded.period, model_id = excluded.model_id, routed_model = excluded.routed_model,
            route_reason = excluded.route_reason, status = 'reserved', reserved_h = excluded.reserved_h,
            credits_h = 0, overage_h = 0, input_tokens = 0, output_tokens = 0,
            cache_read_input_tokens = 0, cache_creation_input_tokens = 0, output_seen = false,
            reason = NULL, replica = excluded.replica, attempts = turns.attempts + 1,
            created_at = now(), expires_at = excluded.expires_at, settled_at = NULL
        RETURNING 1
        )
        UPDATE account_periods SET reserved_h = reserved_h + %s
        WHERE account_id = %s AND period = %s AND EXISTS (SELECT 1 FROM turn)
        """,
        (
            *(key.account_id, key.turn_id, period, model_id, routed_model, route_reason, reserved_h, replica),
            *(ttl, reserved_h, key.account_id, period),
        ),
    )


async def _repeat(conn: Conn, turn: dict[str, Any], balance: dict[str, Any]) -> Exception | None:
    """Why a turn id seen before may not run again (None: no attempt produced output, so it may).

    An attempt whose replica died (expired) is settled here first, as the reaper would."""
    if turn["status"] == "reserved":
        if not turn["expired"]:
            return TurnInProgress()
        outcome = _checkpointed(turn, "the replica serving it stopped")
        settled = await _settle_locked(conn, turn, outcome, balance)
        return TurnAlreadySettled(settled) if settled.status != "failed" else None
    if turn["status"] in ("complete", "cut"):
        return TurnAlreadySettled(_settlement_of(turn, already=True))
    return None


async def checkpoint(conn: Conn, key: TurnKey, usage: Usage, *, output_seen: bool, ttl: timedelta) -> bool:
    """Extend a live reservation and record the usage so far (what the reaper charges if this replica dies).

    False when the turn is no longer reserved (the reaper settled it after a missed heartbeat)."""
    cursor = await conn.execute(
        """
        UPDATE turns SET expires_at = now() + %s, input_tokens = %s, output_tokens = %s,
            cache_read_input_tokens = %s, cache_creation_input_tokens = %s, output_seen = %s
        WHERE account_id = %s AND turn_id = %s AND status = 'reserved'
        """,
        (ttl, *_usage_values(usage), output_seen, key.account_id, key.turn_id),
    )
    return cursor.rowcount == 1


async def settle(conn: Conn, reservation: Reservation, outcome: Outcome) -> Settlement:
    """Charge the turn by the published formula and release the rest of its reservation, exactly once."""
    key = reservation.key
    async with conn.transaction():
        balance = await _lock_balance(conn, key.account_id, reservation.period)
        turn = await _lock_turn(conn, key)
        if turn is None:
            raise LookupError(f"no reservation for turn {key.turn_id!r}")
        if turn["status"] != "reserved":
            return _settlement_of(turn, already=True)
        return await _settle_locked(conn, turn, outcome, balance)


async def expired_turns(conn: Conn, limit: int = 100) -> list[TurnKey]:
    cursor = await conn.execute(
        "SELECT account_id, turn_id FROM turns WHERE status = 'reserved' AND expires_at < now() LIMIT %s",
        (limit,),
    )
    return [TurnKey(row["account_id"], row["turn_id"]) for row in await cursor.fetchall()]


async def release_expired(conn: Conn, key: TurnKey) -> Settlement | None:
    """Settle a reservation whose replica stopped renewing it, at its last checkpoint (None: still live)."""
    async with conn.transaction():
        cursor = await conn.execute(
            "SELECT period FROM turns WHERE account_id = %s AND turn_id = %s", (key.account_id, key.turn_id)
        )
        row = await cursor.fetchone()
        if row is None:
            return None
        balance = await _lock_balance(conn, key.account_id, row["period"])
        turn = await _lock_turn(conn, key)
        if turn is None or turn["status"] != "reserved" or not turn["expired"]:
            return None
        outcome = _checkpointed(turn, "the replica serving it stopped")
        return await _settle_locked(conn, turn, outcome, balance)


def _checkpointed(turn: dict[str, Any], reason: str) -> Outcome:
    """The outcome of an orphaned turn: its last checkpoint if output had begun, else a free failure."""
    usage = Usage(
        input_tokens=turn["input_tokens"],
        output_tokens=turn["output_tokens"],
        cache_read_input_tokens=turn["cache_read_input_tokens"],
        cache_creation_input_tokens=turn["cache_creation_input_tokens"],
    )
    return Outcome("cut" if turn["output_seen"] else "failed", usage, reason)


async def _settle_locked(
    conn: Conn, turn: dict[str, Any], outcome: Outcome, balance: dict[str, Any]
) -> Settlement:
    """Settle a reserved turn whose balance row (`balance`, as read under the lock) and turn row this
    transaction holds locked."""
    account_id, period = turn["account_id"], turn["period"]
    account = await get_account(conn, account_id)
    assert account is not None  # accounts are revoked, never deleted
    used_before = balance["used_h"]
    credits_h = (
        0 if outcome.status == "failed" else to_hundredths(credits_for(turn["model_id"], outcome.usage))
    )
    cap = limit_h(account)
    if cap is not None:
        # Usage past the reservation is charged only while the account's cap allows; the rest is absorbed,
        # so no account ever ends above its allowance plus its overage budget.
        others_h = balance["reserved_h"] - turn["reserved_h"]
        credits_h = max(0, min(credits_h, cap - used_before - others_h))
    included_h = account.spec.monthly_credits * 100
    overage_h = max(0, min(credits_h, used_before + credits_h - included_h)) if account.overage_on else 0
    # One statement, one round trip: the turn's row and the balance move together.
    await conn.execute(
        """
        WITH turn AS (
        UPDATE turns SET status = %s, credits_h = %s, overage_h = %s, input_tokens = %s, output_tokens = %s,
            cache_read_input_tokens = %s, cache_creation_input_tokens = %s,
            output_seen = output_seen OR %s, reason = %s, settled_at = now()
        WHERE account_id = %s AND turn_id = %s
        RETURNING 1
        )
        UPDATE account_periods
        SET used_h = used_h + %s, overage_h = overage_h + %s, reserved_h = reserved_h - %s
        WHERE account_id = %s AND period = %s AND EXISTS (SELECT 1 FROM turn)
        """,
        (
            outcome.status,
            credits_h,
            overage_h,
            *_usage_values(outcome.usage),
            outcome.status != "failed",
            outcome.reason,
            account_id,
            turn["turn_id"],
            *(credits_h, overage_h, turn["reserved_h"], account_id, period),
        ),
    )
    return Settlement(turn["turn_id"], outcome.status, credits_h, overage_h)


async def answered_turn(conn: Conn, key: TurnKey) -> tuple[str, float] | None:
    """The model that answered a settled turn of this account and when (epoch seconds), if it did."""
    cursor = await conn.execute(
        "SELECT routed_model, extract(epoch FROM settled_at)::float8 AS answered_at FROM turns"
        " WHERE account_id = %s AND turn_id = %s"
        " AND status IN ('complete', 'cut') AND settled_at IS NOT NULL",
        (key.account_id, key.turn_id),
    )
    row = await cursor.fetchone()
    return (row["routed_model"], float(row["answered_at"])) if row is not None else None


async def _lock_balance(conn: Conn, account_id: str, period: str) -> dict[str, Any]:
    """Lock the account's row for the period (made on its first turn) and read it: one round trip, mostly."""
    select = (
        "SELECT used_h, overage_h, reserved_h FROM account_periods"
        " WHERE account_id = %s AND period = %s FOR UPDATE"
    )
    row = await (await conn.execute(select, (account_id, period))).fetchone()
    if row is None:
        await conn.execute(
            "INSERT INTO account_periods (account_id, period) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (account_id, period),
        )
        row = await (await conn.execute(select, (account_id, period))).fetchone()
    assert row is not None
    return row


async def _lock_turn(conn: Conn, key: TurnKey) -> dict[str, Any] | None:
    cursor = await conn.execute(
        "SELECT *, expires_at < now() AS expired FROM turns"
        " WHERE account_id = %s AND turn_id = %s FOR UPDATE",
        (key.account_id, key.turn_id),
    )
    return await cursor.fetchone()


def _settlement_of(turn: dict[str, Any], *, already: bool) -> Settlement:
    return Settlement(turn["turn_id"], turn["status"], turn["credits_h"], turn["overage_h"], already)


def _usage_values(usage: Usage) -> tuple[int, int, int, int]:
    return (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
    )

"""The ledger: reserve a turn's worst case, keep it alive while it runs, settle it exactly, once.

Amounts are integer hundredths of a credit (`_h`). Each account has one `account_periods` row a month with
what it used, what of that is overage, and what reservations in flight hold. Reserving, settling and
reaping are one call each to a PL/pgSQL function (migration 0003) that locks that row first (then the
turn's row), so an account's turns never race each other and no two accounts ever wait on one another.
The published formula stays here, in Python: the replica prices a usage and the function applies the
charge. Times that decide expiry are the database's `now()`, so replicas with skewed clocks agree on which
reservation has expired. The statements run on asyncpg (`db`), each prepared once per connection.

Each attempt at a turn is named by an id the replica makes up when it reserves (a UUID, migration 0010), and
every later call about it (settle, heartbeat, sweep) acts only on the turn row carrying that id. The attempt
number alone does not name it: a reservation PostgreSQL lost in a crash (it commits without waiting for the
disk, 0007) leaves the turn id free, and the client's retry is then its first attempt again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final, Literal

from asyncpg import Record

from switchboard.plans.catalog import PLANS, allowed_plans
from switchboard.plans.credits import hundredths_for
from switchboard.protocol.messages import Usage

from .accounts import Account
from .db import LedgerConnection as Conn

Status = Literal["reserved", "complete", "cut", "failed"]

# What the functions need to know of each plan: its included credits and whether it offers overage.
PLAN_TERMS: Final = json.dumps(
    {
        plan.id: {"included_h": plan.monthly_credits * 100, "overage": plan.overage_available}
        for plan in PLANS.values()
    }
)


@dataclass(frozen=True)
class TurnKey:
    account_id: str
    turn_id: str


@dataclass(frozen=True)
class Hold:
    """What a replica asks the ledger to hold for one attempt at a turn."""

    key: TurnKey
    period: str
    model_id: str  # the model the user chose: what the turn is billed as (Auto is 1.0x)
    routed_model: str
    route_reason: str
    reserved_h: int
    replica: str
    ttl: timedelta


@dataclass(frozen=True)
class Reservation:
    key: TurnKey
    period: str
    model_id: str
    routed_model: str
    reserved_h: int
    attempt: int = 1  # which attempt at the turn id this is (a turn that failed before output may be retried)
    # What settling needs to record the turn if PostgreSQL lost its reservation (see `settle`).
    route_reason: str = ""
    replica: str = ""
    # What names this attempt in the ledger: unique, unlike `attempt` (which restarts at 1 when PostgreSQL
    # lost the turn's row). `reserve` sets it; made up here only for a reservation made without the ledger.
    attempt_id: uuid.UUID = field(default_factory=uuid.uuid4)


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
    # Another attempt owns the turn id now (a retry after a sweep, or after PostgreSQL lost this attempt's
    # reservation): nothing was settled or charged (`already` too, and no credits).
    superseded: bool = False


@dataclass(frozen=True)
class Checkpoint:
    """A live reservation and the usage it has reached (what the reaper charges if its replica stops)."""

    reservation: Reservation
    usage: Usage
    output_seen: bool


@dataclass(frozen=True)
class Orphan:
    """A reservation whose replica stopped renewing it."""

    key: TurnKey
    checkpoint_h: int  # the charge of its checkpointed usage
    attempt_id: uuid.UUID | None = None  # None: reserved by the release before attempt ids (0010)
    attempt: int = 1


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


class PlanForbids(Exception):
    """The account's plan (changed since authentication) does not allow the model."""

    def __init__(self, plan: str) -> None:
        super().__init__(f"the {plan} plan does not allow this model")
        self.plan = plan


def limit_h(account: Account) -> int | None:
    """The most this account may use this period: the allowance plus the overage budget (None: no cap).

    The ledger's functions apply the same rule (`ledger_limit`); this is the figure for reports and tests."""
    included = account.spec.monthly_credits * 100
    if not account.overage_on:
        return included
    if account.overage_budget_cents is None:
        return None
    # $0.04 a credit: a budget of B cents buys B / 4 credits, i.e. 25·B hundredths (rounded down).
    return included + account.overage_budget_cents * 25


def charge_h(model_id: str, outcome: Outcome) -> int:
    """The published formula's charge for an outcome, before the account's cap (a failure is free)."""
    return 0 if outcome.status == "failed" else hundredths_for(model_id, outcome.usage)


async def reserve(conn: Conn, hold: Hold) -> Reservation:
    """Hold `hold.reserved_h` for this attempt at the turn in one call, or raise why not.

    The function also checks the account is active and its plan allows the model, and settles an orphaned
    earlier attempt it meets on the way (see `ledger_reserve`); a refusal leaves that settled."""
    key = hold.key
    allowed = sorted(set(allowed_plans(hold.model_id)) & set(allowed_plans(hold.routed_model)))
    attempt_id = uuid.uuid4()
    row = await conn.fetchrow(
        "SELECT * FROM ledger_reserve("
        "$1, $2, $3, $4, $5, $6, $7::text[], $8, $9, $10, $11::jsonb, $12::uuid)",
        *(key.account_id, key.turn_id, hold.period, hold.model_id, hold.routed_model, hold.route_reason),
        *(allowed, hold.reserved_h, hold.ttl, hold.replica, PLAN_TERMS, attempt_id),
    )
    assert row is not None
    outcome = row["outcome"]
    if outcome == "reserved":
        attempt = row["attempt"]
        return Reservation(
            key,
            hold.period,
            hold.model_id,
            hold.routed_model,
            hold.reserved_h,
            attempt,
            hold.route_reason,
            hold.replica,
            attempt_id,
        )
    raise _refusal(key, outcome, row, hold.reserved_h)


def _refusal(key: TurnKey, outcome: str, row: Record, needed_h: int) -> Exception:
    if outcome == "account_gone":
        return AccountGone()
    if outcome == "plan_forbids":
        return PlanForbids(row["plan"])
    if outcome == "in_progress":
        return TurnInProgress()
    if outcome == "settled":
        return TurnAlreadySettled(Settlement(key.turn_id, row["status"], row["credits_h"], 0, already=True))
    if outcome == "insufficient":
        account = Account(
            id=key.account_id,
            email=row["email"],
            plan=row["plan"],
            overage_enabled=row["overage_enabled"],
            overage_budget_cents=row["overage_budget_cents"],
            revoked_at=None,
        )
        return InsufficientCredits(account, needed_h, row["available_h"])
    raise RuntimeError(f"ledger_reserve answered {outcome!r}")


async def settle(conn: Conn, reservation: Reservation, outcome: Outcome) -> Settlement:
    """Charge the attempt by the published formula and release the rest of its reservation, exactly once.

    If the reaper settled it provisionally from a checkpoint (its replica stalled past the reservation), the
    charge is raised to this real usage, once, and never lowered. A new turn's reservation commits without
    waiting for the disk (migration 0007); if PostgreSQL crashed and lost it, the turn is charged here all
    the same, as one that held nothing. If another attempt owns the turn id now (a retry after a sweep, or
    after PostgreSQL lost this one's reservation), nothing changes and the settlement says `superseded`."""
    key = reservation.key
    row = await conn.fetchrow(
        "SELECT * FROM ledger_settle("
        "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14, $15, $16, $17::uuid)",
        *(key.account_id, key.turn_id, reservation.period, reservation.attempt, outcome.status),
        charge_h(reservation.model_id, outcome),
        *_usage_values(outcome.usage),
        outcome.reason,
        PLAN_TERMS,
        *(reservation.model_id, reservation.routed_model, reservation.route_reason, reservation.replica),
        reservation.attempt_id,
    )
    assert row is not None
    return Settlement(
        key.turn_id, row["status"], row["credits_h"], row["overage_h"], row["already"], row["superseded"]
    )


async def heartbeat(conn: Conn, checkpoints: Sequence[Checkpoint], ttl: timedelta) -> int:
    """Extend every reservation a replica is working on, and record the usage each has reached: one
    statement per replica, whatever the number of turns. The count of reservations still live (an attempt
    whose turn row another attempt owns now is not renewed, nor its usage recorded on that row)."""
    if not checkpoints:
        return 0
    columns: list[list[Any]] = [[] for _ in range(9)]
    for point in checkpoints:
        reservation, usage = point.reservation, point.usage
        price = Outcome("cut" if point.output_seen else "failed", usage)
        values = (
            *(reservation.key.account_id, reservation.key.turn_id, reservation.attempt_id),
            *_usage_values(usage),
            point.output_seen,
            charge_h(reservation.model_id, price),
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    status = await conn.execute(
        """
        UPDATE turns AS t SET expires_at = now() + $1, input_tokens = c.input_tokens,
            output_tokens = c.output_tokens, cache_read_input_tokens = c.cache_read,
            cache_creation_input_tokens = c.cache_write, output_seen = t.output_seen OR c.output_seen,
            checkpoint_h = c.checkpoint_h
        FROM unnest($2::text[], $3::text[], $4::uuid[], $5::int8[], $6::int8[], $7::int8[], $8::int8[],
                    $9::bool[], $10::int8[])
            AS c(account_id, turn_id, attempt_id, input_tokens, output_tokens, cache_read, cache_write,
                 output_seen, checkpoint_h)
        WHERE t.account_id = c.account_id AND t.turn_id = c.turn_id AND t.status = 'reserved'
            AND t.attempt_id = c.attempt_id
        """,
        ttl,
        *columns,
    )
    return int(status.rsplit(" ", 1)[1])  # "UPDATE <count>"


async def expired_turns(conn: Conn, limit: int = 100) -> list[Orphan]:
    rows = await conn.fetch(
        "SELECT account_id, turn_id, attempt_id, attempts, model_id, output_seen, input_tokens,"
        " output_tokens, cache_read_input_tokens, cache_creation_input_tokens, checkpoint_h FROM turns"
        " WHERE status = 'reserved' AND expires_at < now() ORDER BY expires_at LIMIT $1",
        limit,
    )
    return [_orphan(row) for row in rows]


def _orphan(row: Record) -> Orphan:
    """A reservation of the previous release has no `checkpoint_h`: it is priced from its tokens here."""
    price = row["checkpoint_h"]
    if price is None:
        usage = Usage(
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cache_read_input_tokens=row["cache_read_input_tokens"],
            cache_creation_input_tokens=row["cache_creation_input_tokens"],
        )
        price = charge_h(row["model_id"], Outcome("cut" if row["output_seen"] else "failed", usage))
    return Orphan(TurnKey(row["account_id"], row["turn_id"]), price, row["attempt_id"], row["attempts"])


async def release_expired(conn: Conn, orphan: Orphan) -> Settlement | None:
    """Settle a reservation whose replica stopped renewing it, at its last checkpoint (None: still live,
    or settled meanwhile, or the turn row is another attempt's now). Provisional: its replica, if only
    stalled, may raise it to the real usage."""
    key = orphan.key
    row = await conn.fetchrow(
        "SELECT * FROM ledger_reap($1, $2, $3::uuid, $4, $5, $6::jsonb)",
        *(key.account_id, key.turn_id, orphan.attempt_id, orphan.attempt, orphan.checkpoint_h, PLAN_TERMS),
    )
    if row is None or row["status"] is None:
        return None
    return Settlement(key.turn_id, row["status"], row["credits_h"], row["overage_h"])


async def answered_turn(conn: Conn, key: TurnKey) -> tuple[str, float] | None:
    """The model that answered a settled turn of this account and when (epoch seconds), if it did."""
    row = await conn.fetchrow(
        "SELECT routed_model, extract(epoch FROM settled_at)::float8 AS answered_at FROM turns"
        " WHERE account_id = $1 AND turn_id = $2"
        " AND status IN ('complete', 'cut') AND settled_at IS NOT NULL",
        key.account_id,
        key.turn_id,
    )
    return (row["routed_model"], float(row["answered_at"])) if row is not None else None


def _usage_values(usage: Usage) -> tuple[int, int, int, int]:
    return (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
    )

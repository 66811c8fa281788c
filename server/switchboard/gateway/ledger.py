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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final, Literal, NamedTuple, TypeVar

from asyncpg import Record

from switchboard.plans.catalog import PLANS, allowed_plans
from switchboard.plans.credits import hundredths_for
from switchboard.protocol.messages import Usage

from .accounts import Account
from .db import LedgerConnection as Conn

Status = Literal["reserved", "complete", "cut", "failed"]
T = TypeVar("T")

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


def limit_h(account: Account, overage_h: int) -> int | None:
    """The most this account may use in a period whose overage so far is `overage_h`: the allowance plus the
    overage budget (None: no cap); with overage off, the allowance plus the overage already spent, which did
    not use up the allowance (so after a move to a larger plan the account keeps what the plan includes).

    The ledger's functions apply the same rule (`ledger_limit`); this is the figure for reports and tests."""
    included = account.spec.monthly_credits * 100
    if not account.overage_on:
        return included + overage_h
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
    attempt_id = uuid.uuid4()
    row = await conn.fetchrow(
        "SELECT * FROM ledger_reserve("
        "$1, $2, $3, $4, $5, $6, $7::text[], $8, $9, $10, $11::jsonb, $12::uuid)",
        *_reserve_values(hold),
        PLAN_TERMS,
        attempt_id,
    )
    assert row is not None
    result = _reserved(hold, attempt_id, row)
    if isinstance(result, Exception):
        raise result
    return result


async def reserve_many(conn: Conn, holds: Sequence[Hold]) -> list[Reservation | Exception]:
    """`reserve` for several turns in one statement and one transaction: each hold's reservation, or the
    refusal `reserve` would raise. The caller orders the holds (`in_lock_order`): every balance row is locked
    in that order, so two such statements never wait on each other in a cycle."""
    attempt_ids = [uuid.uuid4() for _ in holds]
    # Plan ids joined by commas: an array of arrays would not unnest row by row.
    values = (
        arguments._replace(allowed=",".join(arguments.allowed)) for arguments in map(_reserve_values, holds)
    )
    rows = await conn.fetch(_RESERVE_MANY, *_columns(values), PLAN_TERMS, attempt_ids)
    by_order = {row["ord"]: row for row in rows}
    return [
        _reserved(hold, attempt_id, by_order[index])
        for index, (hold, attempt_id) in enumerate(zip(holds, attempt_ids, strict=True), start=1)
    ]


# `ledger_reserve` commits a new turn's reservation without waiting for the disk (0007: a lost one is charged
# at its settlement all the same). Not so a retry's, whose row now names the new attempt, nor an orphan
# settled on the way, nor whatever a refusal changed: in a group they share one transaction with new turns,
# so once every call has run (the aggregate reads them all), a group that is not all new turns turns durable
# commits back on.
_RESERVE_MANY = """
WITH reserved AS MATERIALIZED (
    SELECT r.*, a.ord
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                $8::int8[], $9::interval[], $10::text[], $12::uuid[])
        WITH ORDINALITY AS a(account_id, turn_id, period, model, routed, route_reason, allowed, reserved_h,
                             ttl, replica, attempt_id, ord)
    CROSS JOIN LATERAL ledger_reserve(a.account_id, a.turn_id, a.period, a.model, a.routed, a.route_reason,
                                      string_to_array(a.allowed, ','), a.reserved_h, a.ttl, a.replica,
                                      $11::jsonb, a.attempt_id) AS r
), durable AS MATERIALIZED (
    SELECT CASE WHEN bool_and(outcome = 'reserved' AND attempt = 1) THEN current_setting('synchronous_commit')
                ELSE set_config('synchronous_commit', 'on', true) END AS synchronous_commit
    FROM reserved
)
SELECT reserved.*, durable.synchronous_commit FROM reserved, durable
"""


class _ReserveArguments(NamedTuple):
    """`ledger_reserve`'s arguments before the plan terms and the attempt's id."""

    account_id: str
    turn_id: str
    period: str
    model_id: str
    routed_model: str
    route_reason: str
    allowed: Any  # the plans that allow both models: a list (one call) or joined by commas (a group)
    reserved_h: int
    ttl: timedelta
    replica: str


def _reserve_values(hold: Hold) -> _ReserveArguments:
    key = hold.key
    allowed = sorted(set(allowed_plans(hold.model_id)) & set(allowed_plans(hold.routed_model)))
    return _ReserveArguments(
        *(key.account_id, key.turn_id, hold.period, hold.model_id, hold.routed_model, hold.route_reason),
        *(allowed, hold.reserved_h, hold.ttl, hold.replica),
    )


def _reserved(hold: Hold, attempt_id: uuid.UUID, row: Record) -> Reservation | Exception:
    outcome = row["outcome"]
    if outcome == "reserved":
        return Reservation(
            hold.key,
            hold.period,
            hold.model_id,
            hold.routed_model,
            hold.reserved_h,
            row["attempt"],
            hold.route_reason,
            hold.replica,
            attempt_id,
        )
    return _refusal(hold.key, outcome, row, hold.reserved_h)


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
    values = _settle_values(reservation, outcome)
    row = await conn.fetchrow(
        "SELECT * FROM ledger_settle("
        "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $17::jsonb, $12, $13, $14, $15, $16::uuid)",
        *values,
        PLAN_TERMS,
    )
    assert row is not None
    return _settlement(reservation, row)


async def settle_many(conn: Conn, settling: Sequence[tuple[Reservation, Outcome]]) -> list[Settlement]:
    """`settle` for several turns in one statement and one transaction, in the caller's order
    (`in_lock_order`: every balance row is locked in that order, so two such statements never wait on each
    other in a cycle). Committed together: each settlement is as durable as `settle`'s."""
    columns = _columns(_settle_values(reservation, outcome) for reservation, outcome in settling)
    rows = await conn.fetch(_SETTLE_MANY, *columns, PLAN_TERMS)
    by_order = {row["ord"]: row for row in rows}
    return [_settlement(reservation, by_order[index]) for index, (reservation, _) in enumerate(settling, 1)]


_SETTLE_MANY = """
SELECT s.*, a.ord FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::text[], $6::int8[],
                             $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::text[], $12::text[],
                             $13::text[], $14::text[], $15::text[], $16::uuid[])
    WITH ORDINALITY AS a(account_id, turn_id, period, attempt, status, credits_h, input_tokens, output_tokens,
                         cache_read, cache_write, reason, model, routed, route_reason, replica, attempt_id,
                         ord)
CROSS JOIN LATERAL ledger_settle(a.account_id, a.turn_id, a.period, a.attempt, a.status, a.credits_h,
                                 a.input_tokens, a.output_tokens, a.cache_read, a.cache_write, a.reason,
                                 $17::jsonb, a.model, a.routed, a.route_reason, a.replica, a.attempt_id) AS s
"""


def _settle_values(reservation: Reservation, outcome: Outcome) -> tuple[Any, ...]:
    key = reservation.key
    return (
        *(key.account_id, key.turn_id, reservation.period, reservation.attempt, outcome.status),
        charge_h(reservation.model_id, outcome),
        *_usage_values(outcome.usage),
        outcome.reason,
        *(reservation.model_id, reservation.routed_model, reservation.route_reason, reservation.replica),
        reservation.attempt_id,
    )


def _settlement(reservation: Reservation, row: Record) -> Settlement:
    return Settlement(
        reservation.key.turn_id,
        row["status"],
        row["credits_h"],
        row["overage_h"],
        row["already"],
        row["superseded"],
    )


def in_lock_order(items: Sequence[T], where: Callable[[T], tuple[TurnKey, str]]) -> list[T]:
    """`items` in the order a statement of several turns must take them (`reserve_many`, `settle_many`): by
    account; within one, its newest month first (as `ledger_reserve` locks a request's month before an older
    one); then by turn id. `where` gives an item's turn and month."""
    ordered = sorted(items, key=lambda item: where(item)[0].turn_id)
    ordered.sort(key=lambda item: where(item)[1], reverse=True)
    ordered.sort(key=lambda item: where(item)[0].account_id)
    return ordered


def _columns(rows: Any) -> list[list[Any]]:
    """Rows of values as columns of values (for `unnest`)."""
    columns: list[list[Any]] = []
    for values in rows:
        if not columns:
            columns = [[] for _ in values]
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns


async def heartbeat(conn: Conn, checkpoints: Sequence[Checkpoint], ttl: timedelta) -> int:
    """Extend every reservation a replica is working on, and record the usage each has reached: one
    statement per replica, whatever the number of turns. The count of reservations still live (an attempt
    whose turn row another attempt owns now is not renewed, nor its usage recorded on that row).

    The turn rows are locked first, `in_lock_order`, as every statement of several turns takes them: a
    group of settlements or reservations waiting on one of them never waits on this statement in a cycle."""
    if not checkpoints:
        return 0
    ordered = in_lock_order(checkpoints, lambda point: (point.reservation.key, point.reservation.period))
    status = await conn.execute(_HEARTBEAT, ttl, *_columns(map(_checkpoint_values, ordered)))
    return int(status.rsplit(" ", 1)[1])  # "UPDATE <count>"


def _checkpoint_values(point: Checkpoint) -> tuple[Any, ...]:
    reservation, usage = point.reservation, point.usage
    price = Outcome("cut" if point.output_seen else "failed", usage)
    return (
        *(reservation.key.account_id, reservation.key.turn_id, reservation.attempt_id),
        *_usage_values(usage),
        point.output_seen,
        charge_h(reservation.model_id, price),
    )


_HEARTBEAT = """
WITH c AS MATERIALIZED (
    SELECT * FROM unnest($2::text[], $3::text[], $4::uuid[], $5::int8[], $6::int8[], $7::int8[], $8::int8[],
                         $9::bool[], $10::int8[])
        WITH ORDINALITY AS c(account_id, turn_id, attempt_id, input_tokens, output_tokens, cache_read,
                             cache_write, output_seen, checkpoint_h, ord)
), locked AS MATERIALIZED (
    SELECT t.account_id, t.turn_id FROM turns AS t JOIN c USING (account_id, turn_id)
    WHERE t.status = 'reserved' AND t.attempt_id = c.attempt_id
    ORDER BY c.ord
    FOR UPDATE OF t
)
UPDATE turns AS t SET expires_at = now() + $1, input_tokens = c.input_tokens,
    output_tokens = c.output_tokens, cache_read_input_tokens = c.cache_read,
    cache_creation_input_tokens = c.cache_write, output_seen = t.output_seen OR c.output_seen,
    checkpoint_h = c.checkpoint_h
FROM c JOIN locked USING (account_id, turn_id)
WHERE t.account_id = c.account_id AND t.turn_id = c.turn_id AND t.status = 'reserved'
    AND t.attempt_id = c.attempt_id
"""


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

"""The credits ledger: one SQLite file shared by every workspace and server process of the user.

WAL lets readers run beside a writer; every write is one `BEGIN IMMEDIATE` transaction, so a charge reads
the period's totals and records the turn without another process slipping in between. Credits are stored
as integer hundredths. Timestamps are fixed-width UTC strings, so text order is time order.

`usage_by_day` keeps each account's charged sums per UTC day and (model, routed model), updated by a
trigger in the same transaction as the turn. It is a trigger so that a process still running an older
Switchboard, which inserts turns only, keeps the sums right too. The period totals a charge needs, and
the usage report's per-model and per-day figures, read at most a month of those rows (a few hundred),
never the month's turns: a charge costs the same on the first and the 20,000th turn of a month.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from switchboard.protocol.messages import Usage

from .period import Period, as_utc

# Bumped only by changes an older Switchboard cannot live with. usage_by_day and its trigger are additive
# (an older process ignores the table, and the trigger keeps it right for that process's inserts), so
# they kept version 1 and a downgrade still opens the file.
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    turn_id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    plan TEXT NOT NULL,
    workspace TEXT,
    conversation_id TEXT,
    model_id TEXT NOT NULL,
    routed_model TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    credits INTEGER NOT NULL CHECK (credits >= 0),
    overage INTEGER NOT NULL CHECK (overage >= 0 AND overage <= credits),
    charged INTEGER NOT NULL CHECK (charged IN (0, 1)),
    reason TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_account_time ON turns (account, created_at);
CREATE TABLE IF NOT EXISTS accounts (
    account TEXT PRIMARY KEY,
    overage_enabled INTEGER NOT NULL,
    budget_cents INTEGER
);
CREATE TABLE IF NOT EXISTS usage_by_day (
    account TEXT NOT NULL,
    day TEXT NOT NULL,
    model_id TEXT NOT NULL,
    routed_model TEXT NOT NULL,
    credits INTEGER NOT NULL,
    overage INTEGER NOT NULL,
    turns INTEGER NOT NULL,
    PRIMARY KEY (account, day, model_id, routed_model)
);
CREATE TABLE IF NOT EXISTS alerts (
    account TEXT NOT NULL,
    period TEXT NOT NULL,
    threshold INTEGER NOT NULL,
    message TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (account, period, threshold)
);
"""
_USAGE_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS turns_add_to_usage_by_day AFTER INSERT ON turns WHEN NEW.charged = 1
BEGIN
    INSERT INTO usage_by_day (account, day, model_id, routed_model, credits, overage, turns)
    VALUES (NEW.account, substr(NEW.created_at, 1, 10), NEW.model_id, COALESCE(NEW.routed_model, ''),
            NEW.credits, NEW.overage, 1)
    ON CONFLICT (account, day, model_id, routed_model) DO UPDATE SET credits = credits + excluded.credits,
        overage = overage + excluded.overage, turns = turns + 1;
END
"""
# A ledger from before usage_by_day existed: fill it from the turns once, in the migrating transaction.
_BACKFILL_USAGE_BY_DAY = """
INSERT INTO usage_by_day (account, day, model_id, routed_model, credits, overage, turns)
SELECT account, substr(created_at, 1, 10), model_id, COALESCE(routed_model, ''), SUM(credits), SUM(overage),
       COUNT(*)
FROM turns WHERE charged = 1 GROUP BY 1, 2, 3, 4
"""
_TURN_COLUMNS = (
    "turn_id, account, plan, workspace, conversation_id, model_id, routed_model, input_tokens, output_tokens,"
    " cache_read_tokens, cache_write_tokens, credits, overage, charged, reason, created_at"
)


def stamp(moment: datetime) -> str:
    """The ledger's timestamp format: `2026-11-05T13:04:05.000000Z`."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _day(moment: datetime) -> str:
    return stamp(moment)[:10]


def parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class TurnRecord:
    """One turn's line in the ledger; `credits` and `overage` are hundredths of a credit."""

    turn_id: str
    account: str
    plan: str
    model_id: str
    routed_model: str | None
    usage: Usage
    credits: int
    overage: int
    charged: bool
    reason: str | None
    at: datetime
    workspace: str | None = None
    conversation_id: str | None = None


@dataclass(frozen=True)
class Totals:
    credits: int
    overage: int
    turns: int


@dataclass(frozen=True)
class ModelTotals:
    model_id: str
    routed_model: str
    turns: int
    credits: int


@dataclass(frozen=True)
class AccountSettings:
    overage_enabled: bool = False
    budget_cents: int | None = None


class LedgerView:
    """Queries over one transaction's snapshot."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    def turn(self, turn_id: str) -> TurnRecord | None:
        row = self._db.execute(f"SELECT {_TURN_COLUMNS} FROM turns WHERE turn_id = ?", (turn_id,)).fetchone()
        return _record(row) if row is not None else None

    def turns(self, account: str, start: datetime, end: datetime) -> list[TurnRecord]:
        rows = self._db.execute(
            f"SELECT {_TURN_COLUMNS} FROM turns WHERE account = ? AND created_at >= ? AND created_at < ?"
            " ORDER BY created_at, turn_id",
            (account, stamp(start), stamp(end)),
        )
        return [_record(row) for row in rows]

    def totals(self, account: str, period: Period) -> Totals:
        """Charged sums of a billing period."""
        credits, overage, turns = self._db.execute(
            "SELECT COALESCE(SUM(credits), 0), COALESCE(SUM(overage), 0), COALESCE(SUM(turns), 0)"
            " FROM usage_by_day WHERE account = ? AND day >= ? AND day < ?",
            (account, _day(period.start), _day(period.end)),
        ).fetchone()
        return Totals(credits, overage, turns)

    def by_model(self, account: str, period: Period) -> list[ModelTotals]:
        rows = self._db.execute(
            "SELECT model_id, routed_model, SUM(turns), SUM(credits) FROM usage_by_day"
            " WHERE account = ? AND day >= ? AND day < ?"
            " GROUP BY model_id, routed_model ORDER BY SUM(credits) DESC, model_id, routed_model",
            (account, _day(period.start), _day(period.end)),
        )
        return [ModelTotals(*row) for row in rows]

    def daily(self, account: str, period: Period) -> dict[str, dict[tuple[str, str], int]]:
        """Charged hundredths per UTC day (`YYYY-MM-DD`) and (model, routed model), for days with charges."""
        rows = self._db.execute(
            "SELECT day, model_id, routed_model, credits FROM usage_by_day"
            " WHERE account = ? AND day >= ? AND day < ? ORDER BY 1, 2, 3",
            (account, _day(period.start), _day(period.end)),
        )
        days: dict[str, dict[tuple[str, str], int]] = {}
        for day, model_id, routed_model, credits in rows:
            days.setdefault(day, {})[(model_id, routed_model)] = credits
        return days

    def settings(self, account: str) -> AccountSettings:
        row = self._db.execute(
            "SELECT overage_enabled, budget_cents FROM accounts WHERE account = ?", (account,)
        ).fetchone()
        return AccountSettings(bool(row[0]), row[1]) if row is not None else AccountSettings()

    def alerts(self, account: str, period: str) -> list[str]:
        rows = self._db.execute(
            "SELECT message FROM alerts WHERE account = ? AND period = ? ORDER BY threshold",
            (account, period),
        )
        return [message for (message,) in rows]


class LedgerWriter(LedgerView):
    """Queries and writes inside one `BEGIN IMMEDIATE` transaction."""

    def insert(self, record: TurnRecord) -> None:
        usage = record.usage
        self._db.execute(
            f"INSERT INTO turns ({_TURN_COLUMNS}) VALUES ({', '.join('?' * 16)})",
            (
                record.turn_id,
                record.account,
                record.plan,
                record.workspace,
                record.conversation_id,
                record.model_id,
                record.routed_model,
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_input_tokens,
                usage.cache_creation_input_tokens,
                record.credits,
                record.overage,
                int(record.charged),
                record.reason,
                stamp(record.at),
            ),
        )

    def save_settings(self, account: str, settings: AccountSettings) -> None:
        self._db.execute(
            "INSERT INTO accounts (account, overage_enabled, budget_cents) VALUES (?, ?, ?)"
            " ON CONFLICT (account) DO UPDATE SET"
            " overage_enabled = excluded.overage_enabled, budget_cents = excluded.budget_cents",
            (account, int(settings.overage_enabled), settings.budget_cents),
        )

    def mark_alert(self, account: str, period: str, threshold: int, message: str, at: datetime) -> bool:
        """Record an alert as sent; False if it already was this period."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO alerts (account, period, threshold, message, sent_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (account, period, threshold, message, stamp(at)),
        )
        return cursor.rowcount == 1


def _record(row: Any) -> TurnRecord:
    (turn_id, account, plan, workspace, conversation, model, routed, inp, out, cread, cwrite, *rest) = row
    credits, overage, charged, reason, created_at = rest
    usage = Usage(
        input_tokens=inp, output_tokens=out, cache_read_input_tokens=cread, cache_creation_input_tokens=cwrite
    )
    return TurnRecord(
        turn_id=turn_id,
        account=account,
        plan=plan,
        model_id=model,
        routed_model=routed,
        usage=usage,
        credits=credits,
        overage=overage,
        charged=bool(charged),
        reason=reason,
        at=parse_stamp(created_at),
        workspace=workspace,
        conversation_id=conversation,
    )


class Ledger:
    """The ledger file at `path`; safe to share between threads (one connection, serialised)."""

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 30_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self._db.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL survives a crash of the process; a power cut may lose the last charge.
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._migrate()

    def _migrate(self) -> None:
        with self.write():
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} was written by a newer Switchboard (schema {version})")
            had_usage_by_day = self._has_table("usage_by_day")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(_USAGE_TRIGGER)
            if not had_usage_by_day:
                self._db.execute(_BACKFILL_USAGE_BY_DAY)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _has_table(self, name: str) -> bool:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return self._db.execute(query, (name,)).fetchone() is not None

    @contextmanager
    def read(self) -> Generator[LedgerView]:
        """A consistent snapshot for several queries."""
        with self._transaction("BEGIN DEFERRED"):
            yield LedgerView(self._db)

    @contextmanager
    def write(self) -> Generator[LedgerWriter]:
        """An immediate write transaction: other processes wait (up to the busy timeout) until it commits."""
        with self._transaction("BEGIN IMMEDIATE"):
            yield LedgerWriter(self._db)

    @contextmanager
    def _transaction(self, begin: str) -> Generator[None]:
        with self._lock:
            self._db.execute(begin)
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

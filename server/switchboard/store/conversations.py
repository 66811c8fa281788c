"""Per-workspace conversations and model selections in SQLite (WAL).

Workspaces are keys in the database, never paths: nothing a client sends can name a file. Every query is
scoped by workspace, so one workspace's conversations are invisible from another.
A chat's turn pair is written when it starts (the answer as `failed`/"interrupted") and the answer is
updated when it ends, so a server killed at any moment leaves every completed turn intact.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from switchboard.protocol.messages import ContextItem, Usage

INTERRUPTED = "Interrupted before the answer finished (the server stopped)."

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workspaces (
    id INTEGER PRIMARY KEY,
    uri TEXT NOT NULL UNIQUE,
    selected_model TEXT,
    retry_count INTEGER NOT NULL DEFAULT 0,
    routed_count INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    turn_count INTEGER NOT NULL DEFAULT 0,
    next_seq INTEGER NOT NULL DEFAULT 0
);
DROP INDEX IF EXISTS conversations_by_workspace;
CREATE INDEX IF NOT EXISTS conversations_recent ON conversations(workspace_id, updated_at, id);
CREATE TABLE IF NOT EXISTS turns (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    thinking TEXT,
    thinking_signature TEXT,
    model_id TEXT,
    routed_model TEXT,
    anthropic_model TEXT,
    route_reason TEXT,
    credits REAL NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    stop_reason TEXT,
    usage TEXT,
    context TEXT,
    error TEXT,
    retry_of TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (conversation_id, seq)
);
-- Auto's online learning (routing/learning.py): one label per Auto answer, with the shift it applied.
-- Not tied to the turn's row: deleting a conversation does not undo what Auto learned from it.
CREATE TABLE IF NOT EXISTS auto_labels (
    answer_id TEXT PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    cause TEXT NOT NULL,
    delta REAL NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS auto_labels_by_time ON auto_labels(workspace_id, created_at);
"""

# Columns added after the first release: (table, column, declaration). Files written by an older server
# get them on open; every one has a default, so old rows read as "no rating", "no shift".
_ADDED_COLUMNS = (
    ("turns", "rating", "TEXT"),
    ("workspaces", "auto_shift", "REAL NOT NULL DEFAULT 0"),
    ("workspaces", "auto_shift_at", "INTEGER NOT NULL DEFAULT 0"),
    # Who billed an answer: GATEWAY (Switchboard Cloud charged it) or LOCAL (the local ledger charges it).
    # NULL on answers stored before the column: the reconcile never charges those (the starts of the
    # servers that stored them did), and their list price shows as the mode of the day decides.
    ("turns", "billed_by", "TEXT"),
)

# `turns.billed_by`: who billed the answer.
GATEWAY = "gateway"
LOCAL = "local"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def normalize_workspace(uri: str) -> str:
    """One key per folder, however the client spells the trailing slash."""
    return uri.rstrip("/") or uri


def title_from_prompt(prompt: str) -> str:
    first_line = next((line.strip() for line in prompt.splitlines() if line.strip()), "New chat")
    return first_line if len(first_line) <= 80 else first_line[:79] + "…"


@dataclass
class StoredTurn:
    id: str
    role: str
    text: str
    status: str
    created_at: str
    thinking: str | None = None
    thinking_signature: str | None = None
    model_id: str | None = None
    routed_model: str | None = None
    anthropic_model: str | None = None
    route_reason: str | None = None
    credits: float = 0.0
    stop_reason: str | None = None
    usage: Usage | None = None
    context: list[ContextItem] = field(default_factory=list[ContextItem])
    error: str | None = None
    retry_of: str | None = None
    rating: str | None = None  # "up" | "down" | None, the user's thumbs on an answer
    billed_by: str | None = None  # GATEWAY | LOCAL, None on answers stored before it was recorded


@dataclass
class StoredConversation:
    id: str
    title: str
    created_at: str
    updated_at: str
    turn_count: int
    turns: list[StoredTurn] = field(default_factory=list[StoredTurn])


@dataclass(frozen=True)
class BillableAnswer:
    turn_id: str
    model_id: str
    routed_model: str
    usage: Usage
    conversation_id: str
    workspace: str


@dataclass(frozen=True)
class TurnOutcome:
    """How an answer ended, written over the placeholder stored when it started."""

    text: str
    status: str
    thinking: str | None = None
    thinking_signature: str | None = None
    routed_model: str | None = None
    anthropic_model: str | None = None
    route_reason: str | None = None
    stop_reason: str | None = None
    usage: Usage | None = None
    credits: float = 0.0
    error: str | None = None
    billed_by: str | None = None  # GATEWAY (answered and charged through Switchboard Cloud) or LOCAL


@dataclass(frozen=True)
class ShiftState:
    """A workspace's stored Auto shift, the Auto turn count when it was stored, and the count now."""

    shift: float
    stored_at: int
    routed_turns: int


@dataclass(frozen=True)
class StoredLabel:
    label: str
    cause: str
    delta: float


@dataclass(frozen=True)
class AutoMonth:
    auto_answers: int
    sonnet_answers: int
    causes: dict[str, int]


ShiftUpdate = Callable[[ShiftState, float], float]


class ConversationStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        added: set[str] = set()
        for table, column, declaration in _ADDED_COLUMNS:
            present = {row["name"] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
                added.add(column)
        if "auto_shift" in added:
            self._carry_over_retry_shift()

    def _carry_over_retry_shift(self) -> None:
        """A file from before online learning keeps what its retries taught: the old rule's shift
        (retries / (routed turns + 10), at most 0.2) becomes the starting shift."""
        self._db.execute(
            "UPDATE workspaces SET auto_shift = MIN(0.2, retry_count * 1.0 / (routed_count + 10)), "
            "auto_shift_at = routed_count"
        )

    def close(self) -> None:
        self._db.close()

    # --- workspaces -----------------------------------------------------------------------------

    def _workspace_id(self, uri: str, *, create: bool) -> int | None:
        key = normalize_workspace(uri)
        row = self._db.execute("SELECT id FROM workspaces WHERE uri = ?", (key,)).fetchone()
        if row is not None:
            return int(row["id"])
        if not create:
            return None
        self._db.execute("INSERT OR IGNORE INTO workspaces (uri, created_at) VALUES (?, ?)", (key, utc_now()))
        row = self._db.execute("SELECT id FROM workspaces WHERE uri = ?", (key,)).fetchone()
        return int(row["id"])

    def selected_model(self, workspace: str) -> str | None:
        row = self._db.execute(
            "SELECT selected_model FROM workspaces WHERE uri = ?", (normalize_workspace(workspace),)
        ).fetchone()
        return None if row is None else row["selected_model"]

    def select_model(self, workspace: str, model_id: str) -> None:
        workspace_id = self._workspace_id(workspace, create=True)
        self._db.execute("UPDATE workspaces SET selected_model = ? WHERE id = ?", (model_id, workspace_id))

    def record_routed_turn(self, workspace: str) -> None:
        """Counts the turns Auto routed here: the clock Auto's learned shift decays by."""
        workspace_id = self._workspace_id(workspace, create=True)
        self._db.execute(
            "UPDATE workspaces SET routed_count = routed_count + 1 WHERE id = ?", (workspace_id,)
        )

    # --- Auto's online learning -------------------------------------------------------------------

    def auto_shift_state(self, workspace: str) -> ShiftState:
        row = self._db.execute(
            "SELECT auto_shift, auto_shift_at, routed_count FROM workspaces WHERE uri = ?",
            (normalize_workspace(workspace),),
        ).fetchone()
        if row is None:
            return ShiftState(0.0, 0, 0)
        return ShiftState(float(row["auto_shift"]), int(row["auto_shift_at"]), int(row["routed_count"]))

    def set_rating(self, answer_id: str, rating: str | None) -> None:
        self._db.execute("UPDATE turns SET rating = ? WHERE id = ?", (rating, answer_id))

    def relabel(
        self, workspace: str, answer_id: str, label: StoredLabel | None, shifted: ShiftUpdate
    ) -> None:
        """Replaces the answer's label and moves the workspace's shift by the change in its delta, at once.

        `shifted(state, change)` returns the new shift; the same label twice changes nothing."""
        workspace_id = self._workspace_id(workspace, create=True)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            old = self._db.execute(
                "SELECT label, cause, delta FROM auto_labels WHERE answer_id = ?", (answer_id,)
            ).fetchone()
            old_label = None if old is None else StoredLabel(old["label"], old["cause"], float(old["delta"]))
            if old_label != label:
                self._replace_label(workspace_id, answer_id, label)
                change = (label.delta if label else 0.0) - (old_label.delta if old_label else 0.0)
                if change:
                    state = self.auto_shift_state(workspace)
                    self._db.execute(
                        "UPDATE workspaces SET auto_shift = ?, auto_shift_at = ? WHERE id = ?",
                        (shifted(state, change), state.routed_turns, workspace_id),
                    )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _replace_label(self, workspace_id: int | None, answer_id: str, label: StoredLabel | None) -> None:
        self._db.execute("DELETE FROM auto_labels WHERE answer_id = ?", (answer_id,))
        if label is not None:
            self._db.execute(
                "INSERT INTO auto_labels (answer_id, workspace_id, label, cause, delta, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (answer_id, workspace_id, label.label, label.cause, label.delta, utc_now()),
            )

    def auto_month(self, workspace: str, since: str) -> AutoMonth:
        """This workspace's Auto answers since `since` (ISO time), how many a Sonnet gave, and the labels.

        Stopped answers count (Auto chose their model); failed ones, which said nothing, do not."""
        workspace_id = self._workspace_id(workspace, create=False)
        if workspace_id is None:
            return AutoMonth(0, 0, {})
        row = self._db.execute(
            "SELECT COUNT(*) AS answers, "
            "COALESCE(SUM(t.routed_model LIKE 'claude-sonnet-%'), 0) AS sonnet FROM turns t "
            "JOIN conversations c ON c.id = t.conversation_id WHERE c.workspace_id = ? "
            "AND t.role = 'assistant' AND t.model_id = 'auto' AND t.status IN ('complete', 'cancelled') "
            "AND t.created_at >= ?",
            (workspace_id, since),
        ).fetchone()
        causes = self._db.execute(
            "SELECT cause, COUNT(*) AS n FROM auto_labels WHERE workspace_id = ? AND created_at >= ? "
            "GROUP BY cause",
            (workspace_id, since),
        ).fetchall()
        return AutoMonth(int(row["answers"]), int(row["sonnet"]), {r["cause"]: int(r["n"]) for r in causes})

    # --- conversations --------------------------------------------------------------------------

    def create_conversation(self, workspace: str, title: str) -> str:
        workspace_id = self._workspace_id(workspace, create=True)
        conversation_id = uuid.uuid4().hex
        now = utc_now()
        self._db.execute(
            "INSERT INTO conversations (id, workspace_id, title, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (conversation_id, workspace_id, title, now, now),
        )
        return conversation_id

    def list_conversations(
        self, workspace: str, *, limit: int | None = None, offset: int = 0
    ) -> list[StoredConversation]:
        """Newest first; the order walks the index backwards, so a page costs the same in any workspace."""
        workspace_id = self._workspace_id(workspace, create=False)
        if workspace_id is None:
            return []
        rows = self._db.execute(
            "SELECT id, title, created_at, updated_at, turn_count FROM conversations "
            "WHERE workspace_id = ? ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?",
            (workspace_id, -1 if limit is None else limit, offset),
        ).fetchall()
        return [StoredConversation(**dict(row)) for row in rows]

    def load_conversation(self, workspace: str, conversation_id: str) -> StoredConversation | None:
        row = self._conversation_row(workspace, conversation_id)
        if row is None:
            return None
        conversation = StoredConversation(**dict(row))
        turns = self._db.execute(
            "SELECT * FROM turns WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
        ).fetchall()
        conversation.turns = [_turn_from_row(turn) for turn in turns]
        return conversation

    def delete_conversation(self, workspace: str, conversation_id: str) -> bool:
        workspace_id = self._workspace_id(workspace, create=False)
        if workspace_id is None:
            return False
        cursor = self._db.execute(
            "DELETE FROM conversations WHERE id = ? AND workspace_id = ?", (conversation_id, workspace_id)
        )
        return cursor.rowcount > 0

    def _conversation_row(self, workspace: str, conversation_id: str) -> sqlite3.Row | None:
        workspace_id = self._workspace_id(workspace, create=False)
        if workspace_id is None:
            return None
        return self._db.execute(
            "SELECT id, title, created_at, updated_at, turn_count FROM conversations "
            "WHERE id = ? AND workspace_id = ?",
            (conversation_id, workspace_id),
        ).fetchone()

    # --- turns ----------------------------------------------------------------------------------

    def recent_billable_answers(
        self, limit: int = 200, offset: int = 0, *, started_before: str | None = None
    ) -> list[BillableAnswer]:
        """Answers the local ledger bills (never Switchboard Cloud's: its ledger charged them) that cost
        credits, newest first, to charge any a crash left unmetered; only turns started before
        `started_before` (ISO time, as stored), if given."""
        before = "AND t.created_at < ? " if started_before is not None else ""
        rows = self._db.execute(
            "SELECT t.id, t.model_id, t.routed_model, t.usage, t.conversation_id, w.uri FROM turns t "
            "JOIN conversations c ON c.id = t.conversation_id JOIN workspaces w ON w.id = c.workspace_id "
            "WHERE t.role = 'assistant' AND t.status IN ('complete', 'cancelled') AND t.credits > 0 "
            f"AND t.billed_by = ? {before}"
            "AND t.routed_model IS NOT NULL AND t.usage IS NOT NULL ORDER BY t.rowid DESC LIMIT ? OFFSET ?",
            (LOCAL, *([started_before] if started_before is not None else []), limit, offset),
        ).fetchall()
        return [
            BillableAnswer(
                turn_id=row["id"],
                model_id=row["model_id"],
                routed_model=row["routed_model"],
                usage=Usage.model_validate_json(row["usage"]),
                conversation_id=row["conversation_id"],
                workspace=row["uri"],
            )
            for row in rows
        ]

    def start_turn(
        self,
        conversation_id: str,
        *,
        prompt: str,
        context: list[ContextItem],
        model_id: str,
        retry_of: str | None = None,
    ) -> tuple[str, str]:
        """Stores the user's prompt (unless this is a retry) and a placeholder answer; returns their ids."""
        user_turn_id = "" if retry_of else uuid.uuid4().hex
        answer_id = uuid.uuid4().hex
        now = utc_now()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            seq = self._next_seq(conversation_id)
            if not retry_of:
                self._insert_turn(
                    conversation_id, seq, user_turn_id, "user", prompt, "complete", now, context
                )
                seq += 1
            self._insert_turn(conversation_id, seq, answer_id, "assistant", "", "failed", now, [])
            self._db.execute(
                "UPDATE turns SET model_id = ?, error = ?, retry_of = ? WHERE id = ?",
                (model_id, INTERRUPTED, retry_of, answer_id),
            )
            self._db.execute(
                "UPDATE conversations SET title = CASE WHEN turn_count = 0 THEN ? ELSE title END, "
                "next_seq = ?, turn_count = turn_count + ?, updated_at = ? WHERE id = ?",
                (title_from_prompt(prompt), seq + 1, 1 if retry_of else 2, now, conversation_id),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return user_turn_id, answer_id

    def finish_turn(self, answer_id: str, outcome: TurnOutcome) -> None:
        usage = outcome.usage.model_dump_json(by_alias=True) if outcome.usage else None
        self._db.execute(
            "UPDATE turns SET text = ?, status = ?, thinking = ?, thinking_signature = ?, routed_model = ?, "
            "anthropic_model = ?, route_reason = ?, stop_reason = ?, usage = ?, credits = ?, error = ?, "
            "billed_by = ? WHERE id = ?",
            (
                outcome.text,
                outcome.status,
                outcome.thinking,
                outcome.thinking_signature,
                outcome.routed_model,
                outcome.anthropic_model,
                outcome.route_reason,
                outcome.stop_reason,
                usage,
                outcome.credits,
                outcome.error,
                outcome.billed_by,
                answer_id,
            ),
        )

    def set_turn_credits(self, answer_id: str, credits: float) -> None:
        """An answer's charge, learnt after it was stored (a signed-in turn the user stopped)."""
        self._db.execute("UPDATE turns SET credits = ? WHERE id = ?", (credits, answer_id))

    def _next_seq(self, conversation_id: str) -> int:
        row = self._db.execute(
            "SELECT next_seq FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        if row is None:
            raise KeyError(conversation_id)
        return int(row["next_seq"])

    def _insert_turn(
        self,
        conversation_id: str,
        seq: int,
        turn_id: str,
        role: str,
        text: str,
        status: str,
        created_at: str,
        context: list[ContextItem],
    ) -> None:
        context_json = json.dumps([item.model_dump(mode="json", by_alias=True) for item in context])
        self._db.execute(
            "INSERT INTO turns (id, conversation_id, seq, role, text, status, created_at, context) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (turn_id, conversation_id, seq, role, text, status, created_at, context_json),
        )


def _turn_from_row(row: sqlite3.Row) -> StoredTurn:
    data: dict[str, Any] = dict(row)
    usage = Usage.model_validate_json(data["usage"]) if data["usage"] else None
    context = [ContextItem.model_validate(item) for item in json.loads(data["context"] or "[]")]
    return StoredTurn(
        id=data["id"],
        role=data["role"],
        text=data["text"],
        status=data["status"],
        created_at=data["created_at"],
        thinking=data["thinking"],
        thinking_signature=data["thinking_signature"],
        model_id=data["model_id"],
        routed_model=data["routed_model"],
        anthropic_model=data["anthropic_model"],
        route_reason=data["route_reason"],
        credits=float(data["credits"]),
        stop_reason=data["stop_reason"],
        usage=usage,
        context=context,
        error=data["error"],
        retry_of=data["retry_of"],
        rating=data["rating"],
        billed_by=data["billed_by"],
    )

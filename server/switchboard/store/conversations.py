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
"""


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

    def record_retry(self, workspace: str) -> None:
        """Counts 'retry with a stronger model' events: the router learns from them."""
        workspace_id = self._workspace_id(workspace, create=True)
        self._db.execute("UPDATE workspaces SET retry_count = retry_count + 1 WHERE id = ?", (workspace_id,))

    def record_routed_turn(self, workspace: str) -> None:
        workspace_id = self._workspace_id(workspace, create=True)
        self._db.execute(
            "UPDATE workspaces SET routed_count = routed_count + 1 WHERE id = ?", (workspace_id,)
        )

    def routing_counts(self, workspace: str) -> tuple[int, int]:
        """(retries with a stronger model, turns Auto routed) here: what the router learns from."""
        row = self._db.execute(
            "SELECT retry_count, routed_count FROM workspaces WHERE uri = ?",
            (normalize_workspace(workspace),),
        ).fetchone()
        return (0, 0) if row is None else (int(row["retry_count"]), int(row["routed_count"]))

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

    def recent_billable_answers(self, limit: int = 200, offset: int = 0) -> list[BillableAnswer]:
        """Answers that cost credits, newest first, to charge any a crash left unmetered."""
        rows = self._db.execute(
            "SELECT t.id, t.model_id, t.routed_model, t.usage, t.conversation_id, w.uri FROM turns t "
            "JOIN conversations c ON c.id = t.conversation_id JOIN workspaces w ON w.id = c.workspace_id "
            "WHERE t.role = 'assistant' AND t.status IN ('complete', 'cancelled') AND t.credits > 0 "
            "AND t.routed_model IS NOT NULL AND t.usage IS NOT NULL ORDER BY t.rowid DESC LIMIT ? OFFSET ?",
            (limit, offset),
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
            "anthropic_model = ?, route_reason = ?, stop_reason = ?, usage = ?, credits = ?, error = ? "
            "WHERE id = ?",
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
                answer_id,
            ),
        )

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
    )

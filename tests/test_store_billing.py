"""Who billed a stored answer (`turns.billed_by`): the crash reconcile of the local ledger charges only the
answers the local ledger bills, never one Switchboard Cloud answered and charged, and a file from before
the column opens with it added."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from switchboard.protocol.messages import Usage
from switchboard.store import GATEWAY, LOCAL, ConversationStore, TurnOutcome, utc_now

OLD_TURNS = """
CREATE TABLE workspaces (id INTEGER PRIMARY KEY, uri TEXT NOT NULL UNIQUE, selected_model TEXT,
    retry_count INTEGER NOT NULL DEFAULT 0, routed_count INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, auto_shift REAL NOT NULL DEFAULT 0, auto_shift_at INTEGER NOT NULL DEFAULT 0);
CREATE TABLE conversations (id TEXT PRIMARY KEY, workspace_id INTEGER NOT NULL, title TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, turn_count INTEGER NOT NULL DEFAULT 0,
    next_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE turns (id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, seq INTEGER NOT NULL,
    role TEXT NOT NULL, text TEXT NOT NULL, thinking TEXT, thinking_signature TEXT, model_id TEXT,
    routed_model TEXT, anthropic_model TEXT, route_reason TEXT, credits REAL NOT NULL DEFAULT 0,
    status TEXT NOT NULL, stop_reason TEXT, usage TEXT, context TEXT, error TEXT, retry_of TEXT,
    created_at TEXT NOT NULL, rating TEXT, UNIQUE (conversation_id, seq));
INSERT INTO workspaces (id, uri, created_at) VALUES (1, 'file:///old', '2026-11-01T00:00:00.000Z');
INSERT INTO conversations VALUES ('c1', 1, 'Old chat', '2026-11-01T00:00:00.000Z',
    '2026-11-01T00:00:00.000Z', 2, 2);
INSERT INTO turns (id, conversation_id, seq, role, text, model_id, routed_model, credits, status, usage,
    created_at)
    VALUES ('u1', 'c1', 0, 'user', 'hi', NULL, NULL, 0, 'complete', NULL, '2026-11-01T00:00:00.000Z'),
           ('a1', 'c1', 1, 'assistant', 'hello', 'claude-sonnet-4.5', 'claude-sonnet-4.5', 0.5, 'complete',
            '{"inputTokens": 10, "outputTokens": 20}', '2026-11-01T00:00:01.000Z');
"""

USAGE = Usage(input_tokens=40, output_tokens=20)


def _answer(store: ConversationStore, conversation: str, billed_by: str | None) -> str:
    _, answer = store.start_turn(conversation, prompt="q", context=[], model_id="claude-haiku-4.5")
    outcome = TurnOutcome(
        text="a", status="complete", routed_model="claude-haiku-4.5", usage=USAGE, credits=0.1,
        billed_by=billed_by,
    )  # fmt: skip
    store.finish_turn(answer, outcome)
    return answer


def test_the_reconcile_sees_only_answers_the_local_ledger_bills(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "conversations.sqlite3")
    try:
        conversation = store.create_conversation("file:///ws", "t")
        local = _answer(store, conversation, LOCAL)
        _answer(store, conversation, GATEWAY)
        assert [a.turn_id for a in store.recent_billable_answers()] == [local]
        loaded = store.load_conversation("file:///ws", conversation)
        assert loaded is not None
        assert [t.billed_by for t in loaded.turns if t.role == "assistant"] == [LOCAL, GATEWAY]
        # A process looks only at turns stored before it started: its own are its to charge.
        started = utc_now()
        later = _answer(store, conversation, LOCAL)
        assert [a.turn_id for a in store.recent_billable_answers(started_before=started)] == [local]
        assert [a.turn_id for a in store.recent_billable_answers()] == [later, local]
    finally:
        store.close()


def test_a_file_from_before_billed_by_gets_the_column_and_its_old_answers_are_not_recharged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "conversations.sqlite3"
    with sqlite3.connect(path) as old:
        old.executescript(OLD_TURNS)
    store = ConversationStore(path)
    try:
        loaded = store.load_conversation("file:///old", "c1")
        assert loaded is not None and [t.billed_by for t in loaded.turns] == [None, None]
        # Unknown: it may have been Switchboard Cloud's (the servers that stored it reconciled it anyway).
        assert store.recent_billable_answers() == []
        local = _answer(store, "c1", LOCAL)
        assert [a.turn_id for a in store.recent_billable_answers()] == [local]
    finally:
        store.close()
    ConversationStore(path).close()  # a second open adds nothing

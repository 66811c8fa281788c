"""SIGKILL at random moments: two server processes share one state directory while chats stream.

Each of two slots runs `switchboard serve` processes one after another; each process chats (slow,
streamed answers, new and continued conversations, some shared with the other slot) until a seeded
random moment, then gets SIGKILL and is replaced. Afterwards a fresh process and SQLite itself check:
both databases pass `integrity_check`; every turn whose chat result reached the client is stored with
its exact text, `complete`; every answer stored `complete` is charged once the fresh process has used the
ledger (a kill between storing and charging is made good on restart); no turn is charged twice and none
that failed is charged at all; the ledger total equals the sum of the charged turns and
`switchboard/usage` agrees.

The seed is printed (and in every assertion message); rerun with `SWITCHBOARD_CRASH_SEED=<seed>`.
`SWITCHBOARD_LONG_TESTS=1` enables the 100-kill run.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import server_env
from switchboard.fakeapi import FakeAnthropic
from switchboard.plans import credits_for
from switchboard.plans.dev_issuer import init, load_private_key, sign_token
from switchboard.protocol.messages import Usage
from switchboard.store.conversations import INTERRUPTED, LOCAL, ConversationStore, TurnOutcome
from test_frames import QuietServer

LONG = os.environ.get("SWITCHBOARD_LONG_TESTS") == "1"
SLOTS = 2
START_WITHIN = 60.0  # seconds for a process to answer `initialize` on a loaded machine
MAX_LIFE = 2.0  # a process is killed within this many seconds of its first streamed answer
EARLY_KILL = 0.1  # share of kills that strike during start-up instead


@dataclass
class Completed:
    turn_id: str
    conversation_id: str
    text: str
    credits: float
    slot: int


@dataclass
class Journal:
    """What the clients saw, shared by the slot threads."""

    seed: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    completed: dict[str, Completed] = field(default_factory=dict[str, Completed])
    conversations: list[str] = field(default_factory=list[str])
    errors: list[str] = field(default_factory=list[str])
    kills: Counter[str] = field(default_factory=Counter[str])
    kills_left: int = 0

    def take_kill(self) -> bool:
        with self.lock:
            if self.kills_left <= 0:
                return False
            self.kills_left -= 1
            return True

    def record(self, slot: int, result: dict[str, Any]) -> None:
        with self.lock:
            self.completed[result["turnId"]] = Completed(
                result["turnId"], result["conversationId"], result["text"], result["credits"], slot
            )
            if result["conversationId"] not in self.conversations:
                self.conversations.append(result["conversationId"])

    def pick_conversation(self, rng: random.Random) -> str | None:
        with self.lock:
            if not self.conversations or rng.random() < 0.4:
                return None
            return rng.choice(self.conversations[-6:])  # keep histories (and inputs) short


def _slot(slot: int, env: dict[str, str], workspace: str, journal: Journal) -> None:
    rng = random.Random(f"{journal.seed}-{slot}")
    generation = 0
    while journal.take_kill():
        generation += 1
        server = QuietServer(env)
        try:
            if rng.random() < EARLY_KILL:
                phase = _early(server, workspace, rng.uniform(0.0, 1.5))
            else:
                phase = _chat_until(server, slot, generation, workspace, journal, rng)
        finally:
            os.kill(server.proc.pid, signal.SIGKILL)
            server.kill()
        # A result may have landed between the deadline and the kill: it reached the client.
        for frame in server.frames:
            if isinstance(frame, dict) and "result" in frame and str(frame.get("id", "")).startswith("c"):
                result = frame["result"]
                if isinstance(result, dict) and "turnId" in result:
                    journal.record(slot, result)
        journal.kills[phase] += 1


def _early(server: QuietServer, workspace: str, after: float) -> str:
    server.request(0, "initialize", {"processId": None, "rootUri": workspace, "capabilities": {}})
    try:
        server.wait_for(0, after)
    except TimeoutError:
        return "starting"
    return "started"


def _chat_until(
    server: QuietServer,
    slot: int,
    generation: int,
    workspace: str,
    journal: Journal,
    rng: random.Random,
) -> str:
    server.initialize(workspace, timeout=START_WITHIN)
    # The clock starts when the first answer streams: the SDK's import on the first chat is not the point.
    deadline = float("inf")
    for number in range(10_000):
        msg_id = f"c{slot}-{generation}-{number}"
        params: dict[str, Any] = {
            "workspaceUri": workspace,
            "prompt": f"Question {msg_id} [[fake:slow=0.01 words={rng.randint(10, 60)}]]",
            "modelId": "claude-haiku-4.5",
            "workDoneToken": f"t{msg_id}",
        }
        conversation = journal.pick_conversation(rng)
        if conversation is not None:
            params["conversationId"] = conversation
        server.request(msg_id, "switchboard/chat", params)
        if number == 0:
            is_text: Any = lambda value: value.get("type") == "text"  # noqa: E731
            try:
                server.wait_for_progress(f"t{msg_id}", is_text, START_WITHIN)
            except TimeoutError:
                # Say why: an answer that came as an error streams nothing.
                answered = [f for f in server.frames if isinstance(f, dict) and f.get("id") == msg_id]
                raise TimeoutError(f"no text for {msg_id} in {START_WITHIN}s: {answered}") from None
            deadline = time.monotonic() + rng.uniform(0.0, MAX_LIFE)
        try:
            answer = server.wait_for(msg_id, max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            streamed = any(
                f.get("method") == "$/progress" and f["params"]["token"] == f"t{msg_id}"
                for f in server.frames
                if isinstance(f, dict)
            )
            return "streaming" if streamed else "sending"
        if "error" in answer:
            with journal.lock:
                journal.errors.append(f"{msg_id}: {answer['error']}")
        else:
            journal.record(slot, answer["result"])
    return "idle"


def _sqlite(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    return db


def _integrity(state_dir: Path) -> None:
    for name in ("conversations.sqlite3", "ledger.sqlite3"):
        db = _sqlite(state_dir / name)
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", name
            assert db.execute("PRAGMA foreign_key_check").fetchall() == [], name
        finally:
            db.close()


def _run(tmp_path: Path, kills: int) -> None:
    seed = int(os.environ.get("SWITCHBOARD_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"crash-safety seed {seed} ({kills} kills)")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    workspace = (tmp_path / "project").as_uri()
    issuer_paths, _ = init(tmp_path / "issuer")
    power = sign_token(load_private_key(tmp_path / "issuer"), "power")
    journal = Journal(seed=seed, kills_left=kills)

    with FakeAnthropic(host="127.0.0.1", port=0) as fake:
        env = server_env(
            state_dir,
            fake,
            SWITCHBOARD_TRUSTED_KEYS=str(issuer_paths.jwks),
            SWITCHBOARD_ENTITLEMENT=power,
        )
        failures: list[BaseException] = []

        def run_slot(slot: int) -> None:
            try:
                _slot(slot, env, workspace, journal)
            except BaseException as exc:  # surfaced in the main thread below
                failures.append(exc)

        threads = [threading.Thread(target=run_slot, args=(slot,)) for slot in range(SLOTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, f"seed {seed}: a slot failed: {failures[0]!r}"
        print(f"kills by phase: {dict(journal.kills)}; turns completed: {len(journal.completed)}")
        context = f"seed {seed}"
        assert journal.errors == [], f"{context}: chats failed while both servers ran: {journal.errors[:3]}"
        assert sum(journal.kills.values()) == kills
        assert journal.completed, f"{context}: no chat completed before the kills; nothing was checked"

        # What the crashes left, before any server touches it again.
        _integrity(state_dir)

        # Restart, and check what a client sees.
        server = QuietServer(env)
        try:
            server.initialize(workspace, timeout=START_WITHIN)
            _check_through_the_server(server, workspace, journal, state_dir, context)
        finally:
            code = server.close()
        assert code == 0 and server.stray == []
    _integrity(state_dir)


def _check_through_the_server(
    server: QuietServer, workspace: str, journal: Journal, state_dir: Path, context: str
) -> None:
    ids = iter(range(100, 1_000_000))
    stored: dict[str, dict[str, Any]] = {}
    for conversation in {c.conversation_id for c in journal.completed.values()} | set(journal.conversations):
        msg_id = next(ids)
        server.request(
            msg_id, "switchboard/conversation", {"workspaceUri": workspace, "conversationId": conversation}
        )
        answer = server.wait_for(msg_id, 30)
        assert "result" in answer, f"{context}: conversation {conversation} is gone: {answer}"
        for turn in answer["result"]["turns"]:
            stored[turn["id"]] = turn

    for turn_id, seen in journal.completed.items():
        turn = stored.get(turn_id)
        assert turn is not None, f"{context}: completed turn {turn_id} is missing"
        assert (turn["status"], turn["text"]) == ("complete", seen.text), f"{context}: turn {turn_id} changed"
        assert turn["credits"] == seen.credits, f"{context}: turn {turn_id}"

    # The first use of the ledger charges what a kill left stored but unmetered; read the files after it.
    server.request(99, "switchboard/usage", {})
    usage = server.wait_for(99, 30)["result"]
    ledger = _sqlite(state_dir / "ledger.sqlite3")
    store = _sqlite(state_dir / "conversations.sqlite3")
    try:
        rows = [dict(r) for r in ledger.execute("SELECT turn_id, charged, credits FROM turns")]
        answers = {
            r["id"]: dict(r)
            for r in store.execute("SELECT id, status, credits, error FROM turns WHERE role = 'assistant'")
        }
        counts = store.execute(
            "SELECT c.id, c.turn_count, c.next_seq, COUNT(t.id), COALESCE(MAX(t.seq) + 1, 0)"
            " FROM conversations c LEFT JOIN turns t ON t.conversation_id = c.id GROUP BY c.id"
        ).fetchall()
    finally:
        ledger.close()
        store.close()

    per_turn = Counter(r["turn_id"] for r in rows)
    assert [t for t, n in per_turn.items() if n > 1] == [], f"{context}: a turn is in the ledger twice"
    charged = {r["turn_id"]: r["credits"] for r in rows if r["charged"]}
    for turn_id, seen in journal.completed.items():
        assert charged.get(turn_id) == round(seen.credits * 100), (
            f"{context}: {turn_id} charged once, exactly"
        )
    for turn_id, credits in charged.items():
        answer = answers.get(turn_id)
        assert answer is not None, f"{context}: charged turn {turn_id} is not stored"
        assert answer["status"] in ("complete", "cancelled"), f"{context}: {turn_id} charged but {answer}"
        assert round(answer["credits"] * 100) == credits, f"{context}: {turn_id} stored and charged differ"
    for turn_id, answer in answers.items():
        if answer["status"] == "failed":
            assert turn_id not in charged, f"{context}: failed turn {turn_id} was charged"
            assert answer["error"] == INTERRUPTED, f"{context}: {turn_id} failed for another reason: {answer}"
    for conversation, turn_count, next_seq, rows_count, seq_end in counts:
        assert turn_count == rows_count == next_seq == seq_end, f"{context}: conversation {conversation}"

    total = sum(charged.values())
    assert round(usage["usedCredits"] * 100) == total, f"{context}: usage report and ledger disagree"
    unbilled = [t for t, a in answers.items() if a["status"] == "complete" and t not in charged]
    assert unbilled == [], f"{context}: stored answers the restart did not charge: {unbilled}"
    interrupted = sum(1 for a in answers.values() if a["status"] == "failed")
    print(
        f"stored answers: {len(answers)}, charged: {len(charged)} ({total / 100:.2f} credits), "
        f"interrupted: {interrupted}"
    )


def test_sigkill_during_streaming_chats_loses_nothing_and_charges_nothing_twice(tmp_path: Path) -> None:
    _run(tmp_path, kills=5)


@pytest.mark.long
@pytest.mark.timeout(3600)
@pytest.mark.skipif(not LONG, reason="the 100-kill run needs SWITCHBOARD_LONG_TESTS=1")
def test_a_hundred_sigkills_lose_nothing_and_charge_nothing_twice(tmp_path: Path) -> None:
    _run(tmp_path, kills=100)


def _stored_status(state_dir: Path, turn_id: str) -> str | None:
    db = _sqlite(state_dir / "conversations.sqlite3")
    try:
        row = db.execute("SELECT status FROM turns WHERE id = ?", (turn_id,)).fetchone()
        return None if row is None else row["status"]
    finally:
        db.close()


def test_a_turn_stored_complete_but_killed_before_its_charge_is_charged_after_restart(
    tmp_path: Path, state_dir: Path, workspace: str
) -> None:
    """The window the random kills rarely hit, forced open: the answer is on disk as `complete` (with its
    credits) and the process dies before the ledger write. After a restart the history and the ledger
    must agree: the turn is charged exactly once (the charge is idempotent by turn id), or not shown as a
    charged, complete answer."""
    with FakeAnthropic(host="127.0.0.1", port=0) as fake:
        env = server_env(state_dir, fake)
        server = QuietServer(env)
        lock: sqlite3.Connection | None = None
        try:
            server.initialize(workspace, timeout=START_WITHIN)
            server.request(1, "switchboard/chat", {"workspaceUri": workspace, "prompt": "First"})
            first = server.wait_for(1, 60)["result"]
            # Hold the ledger's write lock: the next charge waits (busy timeout) after the answer is stored.
            lock = sqlite3.connect(state_dir / "ledger.sqlite3", isolation_level=None, timeout=5)
            lock.execute("BEGIN IMMEDIATE")
            token = "t-second"
            server.request(
                2, "switchboard/chat", {"workspaceUri": workspace, "prompt": "Second", "workDoneToken": token}
            )
            server.wait_for_progress(
                token, lambda value: value.get("type") == "route" and value.get("turnId"), 60
            )
            route = next(
                f["params"]["value"]
                for f in server.frames
                if isinstance(f, dict)
                and f.get("method") == "$/progress"
                and f["params"]["token"] == token
                and f["params"]["value"].get("type") == "route"
            )
            turn_id = route["turnId"]
            deadline = time.monotonic() + 60
            while _stored_status(state_dir, turn_id) != "complete":
                assert time.monotonic() < deadline, "the answer was never stored"
                time.sleep(0.02)
            assert server.answered(2) is None, "the charge is still waiting for the ledger"
        finally:
            server.kill()
            if lock is not None:
                lock.execute("ROLLBACK")
                lock.close()

        again = QuietServer(env)
        try:
            again.initialize(workspace, timeout=START_WITHIN)
            again.request(3, "switchboard/usage", {})
            usage = again.wait_for(3, 30)["result"]
            again.request(
                4,
                "switchboard/conversation",
                {"workspaceUri": workspace, "conversationId": first["conversationId"]},
            )
            assert "result" in again.wait_for(4, 30)
        finally:
            again.close()

    store = _sqlite(state_dir / "conversations.sqlite3")
    ledger = _sqlite(state_dir / "ledger.sqlite3")
    try:
        stored = {
            r["id"]: (r["status"], round(r["credits"] * 100))
            for r in store.execute("SELECT id, status, credits FROM turns WHERE role = 'assistant'")
        }
        charged = {
            r["turn_id"]: r["credits"] for r in ledger.execute("SELECT * FROM turns WHERE charged = 1")
        }
    finally:
        store.close()
        ledger.close()
    shown = {t: credits for t, (status, credits) in stored.items() if status == "complete" and credits > 0}
    assert shown == charged, f"history shows {shown}, the ledger charged {charged} (second turn {turn_id})"
    assert round(usage["usedCredits"] * 100) == sum(charged.values())


def test_more_unmetered_answers_than_one_page_are_all_charged_on_restart(
    state_dir: Path, workspace: str
) -> None:
    """450 answers stored `complete` with no ledger row (as if as many processes died before charging):
    the restart walks back past the first page of 200 and charges every one, exactly once."""
    usage = Usage(input_tokens=40, output_tokens=20)
    store = ConversationStore(state_dir / "conversations.sqlite3")
    conversation = store.create_conversation(workspace, "piled up")
    for n in range(450):
        _, answer = store.start_turn(conversation, prompt=f"q{n}", context=[], model_id="claude-haiku-4.5")
        store.finish_turn(
            answer,
            TurnOutcome(
                text=f"a{n}",
                status="complete",
                routed_model="claude-haiku-4.5",
                usage=usage,
                credits=float(credits_for("claude-haiku-4.5", usage)),
                billed_by=LOCAL,
            ),
        )
    store.close()

    server = QuietServer(server_env(state_dir, None))
    try:
        server.initialize(workspace, timeout=START_WITHIN)
        server.request(1, "switchboard/usage", {})
        used = server.wait_for(1, 60)["result"]["usedCredits"]
    finally:
        server.close()
    ledger = _sqlite(state_dir / "ledger.sqlite3")
    try:
        rows = ledger.execute("SELECT COUNT(*), COUNT(DISTINCT turn_id), SUM(credits) FROM turns").fetchone()
    finally:
        ledger.close()
    expected = 450 * round(credits_for("claude-haiku-4.5", usage) * 100)
    assert tuple(rows) == (450, 450, expected)
    assert round(used * 100) == expected

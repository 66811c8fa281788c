"""The conversation store at scale: a workspace with 10,000 conversations of 20 turns, against one with 10.

Both workspaces live in the same database file (so both see the same file size and page cache). The big one
is built fast: one conversation is written through `ConversationStore` (start_turn/finish_turn, exactly the
rows the server writes), then copied 10,000 times with new ids and times in one transaction. The small one
is written entirely through the store's API.

Measured through `ConversationStore` (what the targets are about): list the workspace (< 50 ms), open one
conversation (< 10 ms), append a turn = start_turn + finish_turn (< 5 ms). Also shown, for context: the same
list and open through the server (`switchboard/conversations`, `switchboard/conversation`), which adds
validation, JSON and the pipe.

Run: .venv/bin/python bench/store_scale.py [--conversations 10000] [--turns 20]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BenchServer, clean_env, percentile
from switchboard.protocol.messages import ContextItem, Usage
from switchboard.store import ConversationStore, TurnOutcome

BIG = "file:///home/dev/big-monorepo"
SMALL = "file:///home/dev/small-project"
PROMPT = "How does the retry logic in the HTTP client handle a 429 with retry-after, and where is it tested?"
ANSWER = (
    "The client retries 429 and 5xx responses with exponential backoff, honouring `retry-after` when the "
    "server sends it. The policy lives in `http/retry.py` (see `RetryPolicy.delay_for`), and the tests are "
    "in `tests/test_retry.py`, which fake the clock so no test sleeps.\n\n```python\n"
    "def delay_for(attempt: int, retry_after: float | None) -> float:\n"
    "    return retry_after if retry_after is not None else min(30.0, 0.5 * 2 ** attempt)\n```\n\n"
    "One gap: a `retry-after` given as an HTTP date is not parsed yet."
)
CONTEXT = [
    ContextItem(uri="file:///home/dev/big-monorepo/http/retry.py", text="def delay_for(...): ...\n" * 10)
]


def _outcome() -> TurnOutcome:
    return TurnOutcome(
        text=ANSWER,
        status="complete",
        routed_model="claude-sonnet-4.5",
        anthropic_model="claude-sonnet-4-5-20250929",
        route_reason="Auto → Claude Sonnet 4.5",
        stop_reason="end_turn",
        usage=Usage(input_tokens=1850, output_tokens=240, cache_read_input_tokens=1200),
        credits=1.02,
    )


def _write_conversation(store: ConversationStore, workspace: str, exchanges: int) -> str:
    conversation = store.create_conversation(workspace, PROMPT)
    for index in range(exchanges):
        context = CONTEXT if index == 0 else []
        _, answer = store.start_turn(conversation, prompt=PROMPT, context=context, model_id="auto")
        store.finish_turn(answer, _outcome())
    return conversation


def build(path: Path, conversations: int, turns: int) -> dict[str, float]:
    started = time.perf_counter()
    store = ConversationStore(path)
    template = _write_conversation(store, BIG, turns // 2)
    for _ in range(10):
        _write_conversation(store, SMALL, turns // 2)
    store.close()

    db = sqlite3.connect(path, isolation_level=None)
    db.row_factory = sqlite3.Row
    conversation_row = dict(db.execute("SELECT * FROM conversations WHERE id = ?", (template,)).fetchone())
    turn_rows = [
        dict(row)
        for row in db.execute("SELECT * FROM turns WHERE conversation_id = ? ORDER BY seq", (template,))
    ]
    conversation_columns, turn_columns = list(conversation_row), list(turn_rows[0])
    insert_conversation = (
        f"INSERT INTO conversations ({', '.join(conversation_columns)}) "
        f"VALUES ({', '.join('?' * len(conversation_columns))})"
    )
    insert_turn = (
        f"INSERT INTO turns ({', '.join(turn_columns)}) VALUES ({', '.join('?' * len(turn_columns))})"
    )
    origin = datetime.now(UTC) - timedelta(days=400)
    db.execute("BEGIN")
    for index in range(conversations - 1):
        moment = origin + timedelta(minutes=index * 50)
        stamp = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        conversation_id = uuid.uuid4().hex
        db.execute(
            insert_conversation,
            [
                conversation_id
                if c == "id"
                else stamp
                if c in ("created_at", "updated_at")
                else conversation_row[c]
                for c in conversation_columns
            ],
        )
        db.executemany(
            insert_turn,
            [
                [
                    uuid.uuid4().hex
                    if c == "id"
                    else conversation_id
                    if c == "conversation_id"
                    else stamp
                    if c == "created_at"
                    else row[c]
                    for c in turn_columns
                ]
                for row in turn_rows
            ],
        )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return {"build_s": time.perf_counter() - started, "db_mb": path.stat().st_size / 1e6}


def _timed(action: Callable[[], Any], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _append(store: ConversationStore, conversation: str) -> None:
    _, answer = store.start_turn(conversation, prompt=PROMPT, context=[], model_id="auto")
    store.finish_turn(answer, _outcome())


PAGE = 200  # ConversationsParams.limit's default


def measure_store(path: Path, repeat: int) -> dict[str, dict[str, float]]:
    store = ConversationStore(path)  # a fresh connection, as after a server start
    results: dict[str, dict[str, float]] = {}
    rng = random.Random(7)
    for label, workspace in (("big", BIG), ("small", SMALL)):
        # What `switchboard/conversations` serves: the newest page (the protocol's default limit).
        first = _timed(lambda w=workspace: store.list_conversations(w, limit=PAGE), 1)[0]
        ids = [c.id for c in store.list_conversations(workspace)]
        lists = _timed(lambda w=workspace: store.list_conversations(w, limit=PAGE), max(10, repeat // 10))
        everything = _timed(lambda w=workspace: store.list_conversations(w), 10)
        opens = _timed(lambda w=workspace, i=ids: store.load_conversation(w, rng.choice(i)), repeat)
        appends = _timed(lambda i=ids: _append(store, rng.choice(i)), repeat)
        results[label] = {
            "conversations": len(ids),
            "turns_in_one": len(store.load_conversation(workspace, ids[-1]).turns),  # type: ignore[union-attr]
            "list_first_ms": first,
            "list_p50_ms": statistics.median(lists),
            "list_p99_ms": percentile(lists, 99),
            "list_all_p50_ms": statistics.median(everything),
            "open_p50_ms": statistics.median(opens),
            "open_p99_ms": percentile(opens, 99),
            "append_p50_ms": statistics.median(appends),
            "append_p99_ms": percentile(appends, 99),
        }
    store.close()
    return results


def measure_server(state: Path, repeat: int) -> dict[str, float]:
    """The same list and open through `switchboard serve` (validation, JSON and the pipe included)."""
    server = BenchServer(clean_env(state))
    try:
        server.initialize(BIG)
        ids = [
            c["id"] for c in server.call("switchboard/conversations", {"workspaceUri": BIG})["conversations"]
        ]
        lists = [
            server.timed_call("switchboard/conversations", {"workspaceUri": BIG}) * 1000
            for _ in range(repeat)
        ]
        opens = [
            server.timed_call(
                "switchboard/conversation", {"workspaceUri": BIG, "conversationId": random.choice(ids)}
            )
            * 1000
            for _ in range(repeat * 5)
        ]
    finally:
        server.close()
    return {
        "server_list_p50_ms": statistics.median(lists),
        "server_list_p99_ms": percentile(lists, 99),
        "server_open_p50_ms": statistics.median(opens),
        "server_open_p99_ms": percentile(opens, 99),
        "server_listed": len(ids),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as state:
        path = Path(state) / "conversations.sqlite3"
        built = build(path, args.conversations, args.turns)
        store = measure_store(path, args.repeat)
        server = measure_server(Path(state), 10)
    big, small = store["big"], store["small"]
    print(
        f"store at scale             built {big['conversations']:,} conversations x {big['turns_in_one']} "
        f"turns in {built['build_s']:.1f} s ({built['db_mb']:.0f} MB); "
        f"baseline {small['conversations']} conversations"
    )
    for what, target in (("list", 50), ("open", 10), ("append", 5)):
        print(
            f"  {what:<7} 10k: p50 {big[f'{what}_p50_ms']:6.2f} ms  p99 {big[f'{what}_p99_ms']:6.2f} ms   "
            f"10: p50 {small[f'{what}_p50_ms']:6.2f} ms  p99 {small[f'{what}_p99_ms']:6.2f} ms   "
            f"(target < {target} ms)"
        )
    everything = big["list_all_p50_ms"]
    print(f"  (list = the newest {PAGE}, as the protocol pages; all at once: p50 {everything:.1f} ms)")
    print(
        f"  through the server (10k): list p50 {server['server_list_p50_ms']:.1f} ms, "
        f"open p50 {server['server_open_p50_ms']:.2f} ms"
    )
    return {"build": built, "store": store, "server": server}


if __name__ == "__main__":
    main()

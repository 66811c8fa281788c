"""PostgreSQL's CPU per reserve and settle: each turn's statements alone, against queued turns grouped.

One throwaway cluster (tests/gateway/pgcluster.py, the tests' settings), migrated to head, 200 Power accounts.
Clients reserve and settle short turns as a replica does, through `switchboard.gateway.batches` on the
replica's ledger pool (`db.LedgerPool`), a new turn id each, `--connections` turns in flight. Two ways
alternate by round in the same database (the order rotating), so the noise of a shared machine and the
growth of the tables fall on both alike:
- **alone**: `ledger_batch_max = 1`, every reserve and settle its own statement (as before 2026-12-07);
- **grouped**: the default (64): turns that queue while both lanes of a kind are busy share one statement.
The figures are the CPU every PostgreSQL process spent (postmaster, backends, WAL writer, autovacuum: from
/proc) and this process's own (the replica's side of the ledger) per settled turn, per round, with the medians
at the end. Only the ledger is measured: no HTTP, no upstream (`gateway_load.py` measures the whole turn).
Afterwards the ledger must be exact: every turn complete, nothing held.

Run: .venv/bin/python bench/gateway_ledger_sql.py [--rounds 6] [--turns 3000] [--connections 32]
     (about a minute)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from common import cpu_seconds, load_average  # noqa: E402

MODEL = "claude-haiku-4.5"
ACCOUNTS = 200
WARM_UP_TURNS = 500
WAYS = {"alone": 1, "grouped": 64}  # ledger_batch_max


def postgres_pids(data: Path) -> list[int]:
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    children.append(int(entry.name))
    return [postmaster, *children]


def cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):  # a process that exited meanwhile
            total += cpu_seconds(pid)
    return total


async def run_turns(batches: Any, accounts: list[str], turns: int, connections: int) -> None:
    """`turns` reserve-and-settle pairs, `connections` at a time, accounts round robin."""
    from switchboard.gateway import ledger
    from switchboard.plans.period import period_of
    from switchboard.protocol.messages import Usage

    outcome = ledger.Outcome("complete", Usage(input_tokens=20, output_tokens=5))
    ttl = timedelta(seconds=30)
    period = period_of(datetime.now(UTC)).key
    left = turns

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            key = ledger.TurnKey(accounts[left % len(accounts)], uuid.uuid4().hex)
            hold = ledger.Hold(key, period, MODEL, MODEL, "Chosen by you", 500, "bench", ttl)
            await batches.settle(await batches.reserve(hold), outcome)

    await asyncio.gather(*(client() for _ in range(connections)))


async def measure(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    import psycopg

    from gateway.pgcluster import Cluster
    from switchboard.gateway.batches import LedgerBatches
    from switchboard.gateway.db import LedgerPool, ledger_connection
    from switchboard.gateway.migrate import upgrade

    figures: dict[str, dict[str, list[float]]] = {way: {"postgresql": [], "client": []} for way in WAYS}
    cluster = Cluster.start()
    try:
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE gateway")
        url = cluster.url("gateway")
        upgrade(url)
        accounts = [f"bench-{index}" for index in range(ACCOUNTS)]
        with psycopg.connect(url, autocommit=True) as conn:
            for account in accounts:
                conn.execute(
                    "INSERT INTO accounts (id, email, password_hash, plan) VALUES (%s, %s, '-', 'power')",
                    (account, f"{account}@example.test"),
                )
        for round_number in range(args.rounds):
            names = list(WAYS)
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                pool = LedgerPool(url, max_size=20, connect_timeout=5)
                batches = LedgerBatches(lambda pool=pool: ledger_connection(pool, 5.0), largest=WAYS[name])
                try:
                    await run_turns(batches, accounts, WARM_UP_TURNS, args.connections)  # plans, caches
                    before, own_before = cpu(postgres_pids(cluster.data)), time.process_time()
                    await run_turns(batches, accounts, args.turns, args.connections)
                    spent = cpu(postgres_pids(cluster.data)) - before
                    figures[name]["postgresql"].append(spent / args.turns * 1000)
                    figures[name]["client"].append((time.process_time() - own_before) / args.turns * 1000)
                finally:
                    await pool.close()
                statements, turns = batches.sent["settle"]
                print(
                    f"round {round_number + 1} {name}: PostgreSQL {figures[name]['postgresql'][-1]:.3f} ms,"
                    f" client {figures[name]['client'][-1]:.3f} ms a turn"
                    f" ({turns / statements:.1f} settlements a statement)",
                    file=sys.stderr,
                )
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status <> 'complete'), (SELECT sum(reserved_h)"
                " FROM account_periods) FROM turns"
            ).fetchone()
        assert row is not None
        if row != (0, 0):
            raise RuntimeError(f"the ledger is not exact: {row[0]} turns not complete, {row[1]} held")
    finally:
        cluster.stop()
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=6, help="rounds, each measuring both ways once")
    parser.add_argument("--turns", type=int, default=3000, help="measured turns per way and round")
    parser.add_argument("--connections", type=int, default=32, help="turns in flight")
    args = parser.parse_args(argv)
    load_before = load_average()
    figures = asyncio.run(measure(args))
    load_after = load_average()
    medians = {
        way: {side: statistics.median(values) for side, values in sides.items()}
        for way, sides in figures.items()
    }
    print(f"Load average before and after: {load_before} / {load_after}")
    for side in ("postgresql", "client"):
        alone, grouped = medians["alone"][side], medians["grouped"][side]
        print(
            f"{side} CPU ms per reserve + settle (median of {args.rounds} rounds): alone {alone:.3f},"
            f" grouped {grouped:.3f} ({grouped / alone - 1:+.0%})"
        )
    return {"cpu_ms": figures, "median_ms": medians, "load_average": [load_before, load_after]}


if __name__ == "__main__":
    main()

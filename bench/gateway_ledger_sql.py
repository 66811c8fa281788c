"""PostgreSQL's CPU per reserve and settle: the ledger functions' current bodies against 0003's.

One throwaway cluster (tests/gateway/pgcluster.py, the tests' settings), migrated to head, 200 Power accounts.
Clients reserve and settle short turns through `switchboard.gateway.ledger` on an asyncpg pool as a replica
does (16 connections, no reset on release, a new turn id each). The bodies alternate by round in the same
database (0003's `ledger_reserve` and `ledger_settle`, then head's, the order rotating), so the noise of a
shared machine and the growth of the tables fall on both alike. The figure is the CPU every PostgreSQL
process spent (postmaster, backends, WAL writer, autovacuum: from /proc) per settled turn, per round, with
the medians at the end. Only the SQL is measured: no HTTP, no replica, no upstream (`gateway_load.py`
measures the whole turn). Afterwards the ledger must be exact: every turn complete, nothing held.

Run: .venv/bin/python bench/gateway_ledger_sql.py [--rounds 8] [--turns 2500]   (about 2 minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import statistics
import sys
import uuid
from collections.abc import Callable
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


def bodies_0003() -> str:
    """0003's `ledger_reserve` and `ledger_settle`, as statements that replace whatever is there."""
    module = importlib.import_module("switchboard.gateway.migrations.versions.0003_ledger_functions")
    return ";\n".join(
        text.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
        for text in (module._RESERVE, module._SETTLE)
    )


def bodies_head() -> str:
    module = importlib.import_module("switchboard.gateway.migrations.versions.0006_ledger_fast_paths")
    return ";\n".join((module._RESERVE, module._SETTLE))


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


async def run_turns(pool: Any, accounts: list[str], turns: int, connections: int) -> None:
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
            async with pool.acquire() as conn:
                reservation = await ledger.reserve(conn, hold)
            async with pool.acquire() as conn:
                await ledger.settle(conn, reservation, outcome)

    await asyncio.gather(*(client() for _ in range(connections)))


async def measure(args: argparse.Namespace) -> dict[str, list[float]]:
    import asyncpg
    import psycopg

    from gateway.pgcluster import Cluster
    from switchboard.gateway.migrate import upgrade

    versions: dict[str, Callable[[], str]] = {"0003": bodies_0003, "head": bodies_head}
    figures: dict[str, list[float]] = {name: [] for name in versions}
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

        async def no_reset(_: Any) -> None:  # as the replicas' ledger pool (gateway/db.py)
            return None

        for round_number in range(args.rounds):
            names = list(versions)
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(versions[name]())
                pool = await asyncpg.create_pool(
                    url, min_size=args.connections, max_size=args.connections, reset=no_reset
                )
                try:
                    await run_turns(pool, accounts, WARM_UP_TURNS, args.connections)  # plans, caches
                    pids = postgres_pids(cluster.data)
                    before = cpu(pids)
                    await run_turns(pool, accounts, args.turns, args.connections)
                    figures[name].append((cpu(postgres_pids(cluster.data)) - before) / args.turns * 1000)
                finally:
                    await pool.close()
                print(f"round {round_number + 1} {name}: {figures[name][-1]:.3f} ms", file=sys.stderr)
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
    parser.add_argument("--rounds", type=int, default=8, help="rounds, each measuring every version once")
    parser.add_argument("--turns", type=int, default=2500, help="measured turns per version and round")
    parser.add_argument("--connections", type=int, default=16, help="connections (and turns) in flight")
    args = parser.parse_args(argv)
    load_before = load_average()
    figures = asyncio.run(measure(args))
    load_after = load_average()
    medians = {name: statistics.median(values) for name, values in figures.items()}
    print(f"Load average before and after: {load_before} / {load_after}")
    print(
        "PostgreSQL CPU ms per reserve + settle (median of "
        f"{args.rounds} rounds): 0003's bodies {medians['0003']:.3f}, head's {medians['head']:.3f} "
        f"({medians['head'] / medians['0003'] - 1:+.0%})"
    )
    return {"cpu_ms": figures, "median_ms": medians, "load_average": [load_before, load_after]}


if __name__ == "__main__":
    main()

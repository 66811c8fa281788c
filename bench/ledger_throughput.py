"""Ledger charges per second with two processes writing at once (two editor windows), against one process.

Each worker process opens the shared ledger with `switchboard.plans.Ledger` and charges turns through
`Meter.charge` (one `BEGIN IMMEDIATE` transaction each, as the server does) as fast as it can, after a start
signal so that both really write at the same time. Afterwards the ledger must be exact: every turn charged
once, the total equal to the sum of what each worker computed, and a repeated charge adding nothing.
A diagnostic row repeats the single-process run on a ledger that already holds 20,000 turns this month.

Run: .venv/bin/python bench/ledger_throughput.py [--charges 1000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from switchboard.plans import Entitlement, credits_for, to_hundredths, utc_now
from switchboard.plans.ledger import Ledger, TurnRecord
from switchboard.plans.meter import Meter
from switchboard.plans.period import period_of
from switchboard.protocol.messages import Usage

ACCOUNT = Entitlement("power", "bench-account", "bench", None, "bench")
MODEL = "claude-sonnet-4.5"


def usage_for(index: int) -> Usage:
    return Usage(
        input_tokens=900 + index % 700,
        output_tokens=150 + index % 450,
        cache_read_input_tokens=(index * 37) % 2000,
        cache_creation_input_tokens=(index * 11) % 300,
    )


def worker(db: str, count: int, tag: str) -> None:
    meter = Meter(Ledger(db))
    expected = sum(to_hundredths(credits_for(MODEL, usage_for(i))) for i in range(count))
    print("ready", flush=True)
    sys.stdin.readline()  # the start signal
    started_wall, started = time.time(), time.perf_counter()
    for index in range(count):
        meter.charge(f"{tag}-{index}", ACCOUNT, model_id=MODEL, routed_model=MODEL, usage=usage_for(index))
    elapsed, ended_wall = time.perf_counter() - started, time.time()
    duplicates = sum(
        meter.charge(
            f"{tag}-{index}", ACCOUNT, model_id=MODEL, routed_model=MODEL, usage=usage_for(index)
        ).duplicate
        for index in range(min(count, 50))
    )
    report = {
        "start": started_wall,
        "end": ended_wall,
        "elapsed": elapsed,
        "expected_h": expected,
        "count": count,
        "duplicates": duplicates,
        "retried": min(count, 50),
    }
    print(json.dumps(report), flush=True)


def run_workers(db: Path, count: int, tags: list[str]) -> list[dict[str, Any]]:
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", str(db), str(count), tag],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for tag in tags
    ]
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("a ledger worker did not start")
    for proc in procs:  # both start together
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    reports = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def prefill(db: Path, turns: int) -> None:
    ledger = Ledger(db)
    start = utc_now() - timedelta(seconds=turns)
    with ledger.write() as tx:
        for index in range(turns):
            usage = usage_for(index)
            tx.insert(
                TurnRecord(
                    turn_id=f"old-{index}",
                    account=ACCOUNT.account_key,
                    plan=ACCOUNT.plan,
                    model_id=MODEL,
                    routed_model=MODEL,
                    usage=usage,
                    credits=to_hundredths(credits_for(MODEL, usage)),
                    overage=0,
                    charged=True,
                    reason=None,
                    at=max(start + timedelta(seconds=index), utc_now().replace(day=1, hour=0, minute=0)),
                )
            )
    ledger.close()


def check_exact(
    db: Path, reports: list[dict[str, Any]], tags: list[str], already_h: int = 0
) -> dict[str, Any]:
    ledger = Ledger(db)
    with ledger.read() as view:
        now = utc_now()
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        totals = view.totals(ACCOUNT.account_key, period_of(now))
        ours = [
            t
            for t in view.turns(ACCOUNT.account_key, start, now + timedelta(days=1))
            if t.turn_id[:2] != "ol"
        ]
    report = Meter(ledger).report(ACCOUNT)
    ledger.close()
    expected_h = sum(r["expected_h"] for r in reports) + already_h
    expected_turns = sum(r["count"] for r in reports)
    ids = {t.turn_id for t in ours}
    exact = (
        totals.credits == expected_h
        and len(ours) == expected_turns == len(ids)
        and all(f"{tag}-0" in ids for tag in tags)
        and all(r["duplicates"] == r["retried"] for r in reports)
        and round(report.used_credits * 100) == expected_h
    )
    return {"exact": exact, "ledger_h": totals.credits, "expected_h": expected_h, "turns": len(ours)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--charges", type=int, default=1000)
    parser.add_argument("--prefill", type=int, default=20_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        one_db, two_db, big_db = (Path(root) / name for name in ("one.sqlite3", "two.sqlite3", "big.sqlite3"))
        Ledger(one_db).close()
        Ledger(two_db).close()
        prefill(big_db, args.prefill)
        already = Ledger(big_db)
        with already.read() as view:
            now = utc_now()
            already_h = view.totals(ACCOUNT.account_key, period_of(now)).credits
        already.close()

        one = run_workers(one_db, args.charges, ["solo"])
        one_check = check_exact(one_db, one, ["solo"])
        two = run_workers(two_db, args.charges, ["left", "right"])
        two_check = check_exact(two_db, two, ["left", "right"])
        big = run_workers(big_db, args.charges, ["late"])
        big_check = check_exact(big_db, big, ["late"], already_h)

    def rate(reports: list[dict[str, Any]]) -> float:
        span = max(r["end"] for r in reports) - min(r["start"] for r in reports)
        return sum(r["count"] for r in reports) / span

    figures = {
        "one_per_s": rate(one),
        "two_per_s": rate(two),
        "two_per_process_per_s": [r["count"] / r["elapsed"] for r in two],
        "prefilled_per_s": rate(big),
        "exact": one_check["exact"] and two_check["exact"] and big_check["exact"],
        "checks": {"one": one_check, "two": two_check, "prefilled": big_check},
    }
    print(
        f"ledger charges             one process {figures['one_per_s']:,.0f}/s   "
        f"two processes at once {figures['two_per_s']:,.0f}/s in total "
        f"({', '.join(f'{r:,.0f}' for r in figures['two_per_process_per_s'])} each)   "
        f"exact after: {'yes' if figures['exact'] else 'NO ' + json.dumps(figures['checks'])}"
    )
    print(
        f"  diagnostic: one process on a ledger already holding {args.prefill:,} turns this month "
        f"{figures['prefilled_per_s']:,.0f}/s"
    )
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main()

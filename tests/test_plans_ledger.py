"""The SQLite ledger: storage, invariants under random use, and two processes charging one file at once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.plans.credits import credits_for
from switchboard.plans.entitlement import Entitlement
from switchboard.plans.ledger import SCHEMA_VERSION, AccountSettings, Ledger, Totals, TurnRecord
from switchboard.plans.meter import ChargeResult, Meter
from switchboard.plans.period import period_of
from switchboard.protocol.messages import ConcreteModelId, PlanId, Usage

NOW = datetime(2026, 11, 15, 10, 20, 30, 123456, tzinfo=UTC)
MODELS = ["auto", "claude-haiku-4.5", "claude-sonnet-4.0", "claude-sonnet-4.5", "claude-opus-4.5"]


def record(turn_id: str = "t1", **changes: Any) -> TurnRecord:
    fields: dict[str, Any] = {
        "turn_id": turn_id,
        "account": "acct",
        "plan": "pro",
        "model_id": "auto",
        "routed_model": "claude-haiku-4.5",
        "usage": Usage(
            input_tokens=10, output_tokens=20, cache_read_input_tokens=30, cache_creation_input_tokens=40
        ),
        "credits": 1234,
        "overage": 34,
        "charged": True,
        "reason": None,
        "at": NOW,
        "workspace": "file:///w",
        "conversation_id": "c1",
    }
    return TurnRecord(**(fields | changes))


# --- storage -----------------------------------------------------------------------------------------


def test_a_turn_round_trips(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        with ledger.write() as tx:
            tx.insert(record())
        with ledger.read() as view:
            assert view.turn("t1") == record()
            assert view.turn("t2") is None


def test_the_file_is_wal_with_a_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ledger.sqlite3"
    Ledger(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(RuntimeError, match="newer Switchboard"):
        Ledger(path)


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    with pytest.raises(KeyError), ledger.write() as tx:
        tx.insert(record())
        raise KeyError("boom")
    with ledger.read() as view:
        assert view.turn("t1") is None


def test_the_schema_refuses_impossible_rows(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    with ledger.write() as tx:
        tx.insert(record())
    for bad in (record(), record("t2", credits=-1, overage=0), record("t3", credits=5, overage=6)):
        with pytest.raises(sqlite3.IntegrityError), ledger.write() as tx:
            tx.insert(bad)


def test_settings_and_alerts(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    with ledger.write() as tx:
        assert tx.settings("acct") == AccountSettings()
        tx.save_settings("acct", AccountSettings(True, 1_000))
        assert tx.mark_alert("acct", "2026-11", 80, "eighty", NOW)
        assert not tx.mark_alert("acct", "2026-11", 80, "again", NOW)
        assert tx.mark_alert("acct", "2026-12", 80, "next month", NOW)
    with ledger.read() as view:
        assert view.settings("acct") == AccountSettings(True, 1_000)
        assert view.alerts("acct", "2026-11") == ["eighty"]


def test_totals_by_model_and_by_day_follow_charged_turns(tmp_path: Path) -> None:
    first_of_december = datetime(2026, 12, 1, tzinfo=UTC)
    november, december = period_of(NOW), period_of(first_of_december)
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        with ledger.write() as tx:
            tx.insert(record("t1"))
            tx.insert(record("t2", credits=100, overage=0, at=NOW.replace(day=16)))
            tx.insert(record("t3", credits=500, overage=0, charged=False, reason="failed"))
            tx.insert(record("t4", credits=7, overage=7, at=first_of_december))
            tx.insert(record("t5", account="other"))
            tx.insert(
                record("t6", model_id="claude-opus-4.5", routed_model="claude-opus-4.5", credits=9, overage=0)
            )
        with ledger.read() as view:
            assert view.totals("acct", november) == Totals(1343, 34, 3)
            assert view.totals("acct", december) == Totals(7, 7, 1)
            assert view.totals("acct", period_of(datetime(2027, 1, 1, tzinfo=UTC))) == Totals(0, 0, 0)
            assert [
                (m.model_id, m.routed_model, m.turns, m.credits) for m in view.by_model("acct", november)
            ] == [
                ("auto", "claude-haiku-4.5", 2, 1334),
                ("claude-opus-4.5", "claude-opus-4.5", 1, 9),
            ]
            assert view.daily("acct", november) == {
                "2026-11-15": {("auto", "claude-haiku-4.5"): 1234, ("claude-opus-4.5", "claude-opus-4.5"): 9},
                "2026-11-16": {("auto", "claude-haiku-4.5"): 100},
            }


def test_a_ledger_from_before_the_daily_sums_gains_them_on_open(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    with Ledger(path) as ledger, ledger.write() as tx:
        for n in range(5):
            tx.insert(record(f"t{n}", credits=100 + n, overage=n, at=NOW.replace(day=10 + n % 2)))
        tx.insert(record("failed", credits=0, overage=0, charged=False, reason="failed"))
    db = sqlite3.connect(path)  # back to what an older Switchboard left
    db.executescript("DROP TRIGGER turns_add_to_usage_by_day; DROP TABLE usage_by_day;")
    db.close()
    for _ in range(2):  # filled once, not again on the next open
        with Ledger(path) as ledger, ledger.read() as view:
            assert view.totals("acct", period_of(NOW)) == Totals(510, 10, 5)
            assert view.daily("acct", period_of(NOW)) == {
                "2026-11-10": {("auto", "claude-haiku-4.5"): 306},
                "2026-11-11": {("auto", "claude-haiku-4.5"): 204},
            }
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (1,)


def test_turns_inserted_by_an_older_process_still_count(tmp_path: Path) -> None:
    """A window still running older code inserts turns only; the trigger keeps the sums right."""
    path = tmp_path / "l.sqlite3"
    Ledger(path).close()
    old = sqlite3.connect(path)
    old.execute(
        "INSERT INTO turns VALUES ('old', 'acct', 'pro', NULL, NULL, 'auto', 'claude-haiku-4.5', 1, 2, 0, 0,"
        " 250, 0, 1, NULL, '2026-11-15T10:00:00.000000Z')"
    )
    old.commit()
    old.close()
    with Ledger(path) as ledger, ledger.read() as view:
        assert view.totals("acct", period_of(NOW)) == Totals(250, 0, 1)


# --- invariants under random use ---------------------------------------------------------------------

PLANS: list[PlanId] = ["free", "pro", "pro_plus", "power"]
operation = st.one_of(
    st.tuples(
        st.just("charge"),
        st.integers(0, 12),
        st.sampled_from(MODELS),
        st.integers(0, 3_000_000),
        st.sampled_from(PLANS),
    ),
    st.tuples(
        st.just("uncharged"), st.integers(0, 12), st.sampled_from(MODELS), st.just(0), st.sampled_from(PLANS)
    ),
    st.tuples(st.just("overage"), st.booleans(), st.none() | st.integers(1, 500), st.just(0), st.just("pro")),
)


def _entitlement(plan: PlanId) -> Entitlement:
    return Entitlement(plan, "acct", "issuer", None, "test")


def _apply(meter: Meter, op: tuple[Any, ...]) -> ChargeResult | None:
    kind, a, b, tokens, plan = op
    entitlement = _entitlement(plan)
    if kind == "overage":
        meter.set_overage(entitlement, a, b)
        return None
    routed: ConcreteModelId = "claude-sonnet-4.5" if b == "auto" else b
    if kind == "uncharged":
        return meter.record_uncharged(f"t{a}", entitlement, reason="failed", model_id=b)
    usage = Usage(input_tokens=tokens // 3, output_tokens=tokens // 7, cache_read_input_tokens=tokens)
    return meter.charge(f"t{a}", entitlement, model_id=b, routed_model=routed, usage=usage)


def _amounts(result: ChargeResult) -> tuple[object, ...]:
    return (result.credits, result.overage_credits, result.charged, result.reason)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, max_size=25))
def test_ledger_invariants(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp, Ledger(Path(tmp) / "l.sqlite3") as ledger:
        meter = Meter(ledger, lambda: NOW)
        first: dict[str, ChargeResult] = {}
        for op in ops:
            before = meter.report(_entitlement("pro")).overage.credits
            result = _apply(meter, op)
            if result is None:
                continue
            assert result.duplicate == (result.turn_id in first)  # never charged twice
            original = first.setdefault(result.turn_id, result)
            assert _amounts(result) == _amounts(original)
            assert 0 <= result.overage_credits <= result.credits
            report = meter.report(_entitlement(op[4]))
            assert report.remaining_credits >= 0
            assert report.overage.credits >= before
            charged = sum((r.credits for r in first.values() if r.charged), Decimal(0))
            assert Decimal(str(report.used_credits)) == charged  # totals equal the sum of turns
            assert Decimal(str(report.overage.credits)) == sum(
                (r.overage_credits for r in first.values()), Decimal(0)
            )
            assert sum(row.turns for row in report.by_model) == sum(1 for r in first.values() if r.charged)
            assert Decimal(str(sum(d.credits for d in report.daily))) == charged


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2_000_000), max_size=20))
def test_with_overage_on_and_no_budget_overage_is_exactly_the_excess(outputs: list[int]) -> None:
    pro = _entitlement("pro")
    with tempfile.TemporaryDirectory() as tmp, Ledger(Path(tmp) / "l.sqlite3") as ledger:
        meter = Meter(ledger, lambda: NOW)
        meter.set_overage(pro, True, None)
        for n, tokens in enumerate(outputs):
            haiku: ConcreteModelId = "claude-haiku-4.5"
            meter.charge(f"t{n}", pro, model_id=haiku, routed_model=haiku, usage=Usage(output_tokens=tokens))
        report = meter.report(pro)
        used = sum((credits_for("claude-haiku-4.5", Usage(output_tokens=t)) for t in outputs), Decimal(0))
        assert Decimal(str(report.used_credits)) == used
        assert Decimal(str(report.overage.credits)) == max(Decimal(0), used - 1_000)


# --- two processes -----------------------------------------------------------------------------------

ACCOUNTS = 10
BUDGET_USD = 40  # 1,000 credits of overage per account
WORKER = """
import json, sys, time
from datetime import UTC, datetime
from switchboard.plans import Entitlement
from switchboard.plans.ledger import Ledger
from switchboard.plans.meter import Meter
from switchboard.protocol.messages import Usage

path, ids, accounts = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
meter = Meter(Ledger(path), lambda: datetime(2026, 11, 15, tzinfo=UTC))
pro = [Entitlement("pro", f"acct-{n}", "issuer", None, "test") for n in range(accounts)]
for entitlement in pro:
    meter.set_overage(entitlement, True, float(sys.argv[4]))
print("ready", flush=True)
sys.stdin.readline()
duplicates, crossed, started = 0, [], time.time()
for i in ids:
    usage = Usage(input_tokens=2_000, output_tokens=50_000 + 37 * i)
    model = "claude-sonnet-4.5"
    result = meter.charge(f"turn-{i}", pro[i % accounts], model_id=model, routed_model=model, usage=usage)
    duplicates += result.duplicate
    crossed += result.crossed
out = {"duplicates": duplicates, "crossed": crossed, "started": started, "ended": time.time()}
print(json.dumps(out), flush=True)
"""


def _turn_credits(i: int) -> Decimal:
    return credits_for("claude-sonnet-4.5", Usage(input_tokens=2_000, output_tokens=50_000 + 37 * i))


def _run_workers(path: Path, ids: list[list[int]]) -> list[dict[str, Any]]:
    args = [str(ACCOUNTS), str(BUDGET_USD)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), json.dumps(chunk), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for chunk in ids
    ]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    for worker in workers:  # release both at once
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    outputs = [json.loads(worker.communicate(timeout=60)[0]) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0]
    return outputs


def _check_serial_split(path: Path) -> None:
    """Each turn's overage is what a one-at-a-time meter would have given it, in commit order."""
    included, budget = 1_000 * 100, BUDGET_USD * 25 * 100
    used: dict[str, tuple[int, int]] = {}
    db = sqlite3.connect(path)
    for account, credits, overage in db.execute("SELECT account, credits, overage FROM turns ORDER BY rowid"):
        before, spent = used.get(account, (0, 0))
        expected = min(credits, max(0, before + credits - included), max(0, budget - spent))
        assert overage == expected
        used[account] = (before + credits, spent + overage)
    db.close()


def test_two_processes_charge_one_ledger_exactly(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"  # created by both workers at once
    # 2 × 200 charges over 280 turns: 120 ids charged by both, and 20 repeats within each worker.
    outputs = _run_workers(path, [[*range(0, 180), *range(0, 20)], [*range(80, 280)]])
    first, second = outputs
    assert first["started"] < second["ended"] and second["started"] < first["ended"]  # they did overlap
    assert sum(out["duplicates"] for out in outputs) == 400 - 280

    meter = Meter(Ledger(path), lambda: datetime(2026, 11, 20, tzinfo=UTC))
    for n in range(ACCOUNTS):
        report = meter.report(Entitlement("pro", f"acct-{n}", "issuer", None, "test"))
        expected = sum((_turn_credits(i) for i in range(n, 280, ACCOUNTS)), Decimal(0))
        assert sum(row.turns for row in report.by_model) == 28
        assert Decimal(str(report.used_credits)) == expected
        assert Decimal(str(report.overage.credits)) == min(expected - 1_000, Decimal(1_000))
        assert len(report.alerts) == 2
    assert sorted(t for out in outputs for t in out["crossed"]) == [80] * ACCOUNTS + [100] * ACCOUNTS
    _check_serial_split(path)

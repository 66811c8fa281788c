"""The meter: enforcement order and messages, charging, overage, alerts, rollover and the usage report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from switchboard.plans.credits import cancelled_usage
from switchboard.plans.entitlement import NO_ENTITLEMENT, Entitlement
from switchboard.plans.errors import OverageNotAvailable
from switchboard.plans.ledger import Ledger
from switchboard.plans.meter import ChargeResult, Meter
from switchboard.protocol.errors import CreditsExhausted, ErrorCode, InvalidParams, PlanForbidsModel
from switchboard.protocol.messages import ConcreteModelId, PlanId, Usage, UsageReport

NOV_10 = datetime(2026, 11, 10, 9, 30, tzinfo=UTC)
FREE_OUT = (
    "You've used all 50 Free credits this month. They reset on Dec 1; upgrade to Pro for 1,000 a month."
)
PRO_OUT = (
    "You've used all 1,000 Pro credits this month. Enable overage to keep going at $0.04 a credit, "
    "or wait until they reset on Dec 1."
)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def paid(plan: PlanId = "pro", account: str = "acct-1") -> Entitlement:
    return Entitlement(plan, account, "issuer", NOV_10 + timedelta(days=30), f"{plan} for {account}")


def worth(credits: int) -> Usage:
    """Usage that costs exactly `credits` on Auto: 10,000 input tokens are 3 credits, and any shortfall
    under one token (< 0.0003 credits) is rounded up to the whole credit."""
    return Usage(input_tokens=credits * 10_000 // 3)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOV_10)


@pytest.fixture
def meter(tmp_path: Path, clock: FakeClock) -> Meter:
    return Meter(Ledger(tmp_path / "ledger.sqlite3"), clock)


_turns = iter(range(1_000_000))


def spend(
    meter: Meter, entitlement: Entitlement, credits: int, routed: ConcreteModelId = "claude-haiku-4.5"
) -> ChargeResult:
    turn = f"turn-{next(_turns)}"
    return meter.charge(turn, entitlement, model_id="auto", routed_model=routed, usage=worth(credits))


def direct(
    meter: Meter, turn: str, entitlement: Entitlement, model: ConcreteModelId, usage: Usage
) -> ChargeResult:
    """Charge a turn on a model the user picked (not Auto)."""
    return meter.charge(turn, entitlement, model_id=model, routed_model=model, usage=usage)


# --- enforcement -------------------------------------------------------------------------------------


def test_free_may_not_use_opus(meter: Meter) -> None:
    with pytest.raises(PlanForbidsModel) as caught:
        meter.check(NO_ENTITLEMENT, "claude-opus-4.5")
    error = caught.value
    assert error.code == ErrorCode.PLAN_FORBIDS_MODEL == 1001
    assert error.message.startswith("Claude Opus 4.5 needs Pro, Pro+ or Power; you're on Free.")
    assert error.data == {
        "modelId": "claude-opus-4.5",
        "plan": "free",
        "allowedPlans": ["pro", "pro_plus", "power"],
    }
    for model_id in ("auto", "claude-haiku-4.5", "claude-sonnet-4.0", "claude-sonnet-4.5"):
        meter.check(NO_ENTITLEMENT, model_id)
    meter.check(paid(), "claude-opus-4.5")


def test_an_unknown_model_is_invalid_params(meter: Meter) -> None:
    with pytest.raises(InvalidParams) as caught:
        meter.check(paid(), "gpt-5")
    assert caught.value.data == {"modelId": "gpt-5", "errors": []}


def test_the_plan_is_checked_before_credits(meter: Meter) -> None:
    spend(meter, NO_ENTITLEMENT, 51)
    with pytest.raises(PlanForbidsModel):
        meter.check(NO_ENTITLEMENT, "claude-opus-4.5")
    with pytest.raises(CreditsExhausted):
        meter.check(NO_ENTITLEMENT, "auto")


def test_free_runs_out_with_advice(meter: Meter) -> None:
    spend(meter, NO_ENTITLEMENT, 48)
    meter.check(NO_ENTITLEMENT, "auto")  # 2 left
    spend(meter, NO_ENTITLEMENT, 3)  # starts with credits left, finishes past zero
    with pytest.raises(CreditsExhausted) as caught:
        meter.check(NO_ENTITLEMENT, "claude-haiku-4.5")
    assert caught.value.code == ErrorCode.CREDITS_EXHAUSTED == 1002
    assert caught.value.message == FREE_OUT
    assert caught.value.data == {
        "plan": "free",
        "remainingCredits": 0.0,
        "overageAvailable": False,
        "overageEnabled": False,
        "neededCredits": None,
    }
    report = meter.report(NO_ENTITLEMENT)
    assert (report.used_credits, report.remaining_credits, report.overage.credits) == (51.0, 0.0, 0.0)


def test_paid_plans_run_out_with_the_overage_offer(meter: Meter) -> None:
    pro = paid()
    spend(meter, pro, 999)
    meter.check(pro, "claude-opus-4.5")
    result = spend(meter, pro, 30)
    assert result.overage_credits == 0  # overage is off: the overshoot is absorbed
    with pytest.raises(CreditsExhausted) as caught:
        meter.check(pro, "auto")
    assert caught.value.message == PRO_OUT
    assert caught.value.data == {
        "plan": "pro",
        "remainingCredits": 0.0,
        "overageAvailable": True,
        "overageEnabled": False,
        "neededCredits": None,
    }


def test_pro_plus_and_power_have_their_own_allowances(meter: Meter) -> None:
    plans: list[tuple[PlanId, int]] = [("pro_plus", 2_000), ("power", 10_000)]
    for plan, included in plans:
        entitlement = paid(plan, account=plan)
        spend(meter, entitlement, included - 1)
        meter.check(entitlement, "auto")
        spend(meter, entitlement, 1)
        with pytest.raises(CreditsExhausted, match=f"all {included:,} "):
            meter.check(entitlement, "auto")


# --- overage -----------------------------------------------------------------------------------------


def test_overage_without_a_budget_has_no_cap(meter: Meter) -> None:
    pro = paid()
    meter.set_overage(pro, True, None)
    spend(meter, pro, 990)
    assert spend(meter, pro, 30).overage_credits == Decimal(20)
    for _ in range(5):
        meter.check(pro, "auto")
        assert spend(meter, pro, 3_000).overage_credits == Decimal(3_000)
    overage = meter.report(pro).overage
    assert (overage.available, overage.enabled, overage.budget_usd) == (True, True, None)
    assert overage.credits == 15_020.0
    assert overage.cost_usd == pytest.approx(600.80)


def test_turning_overage_on_after_running_out(meter: Meter) -> None:
    pro = paid()
    spend(meter, pro, 1_029)
    with pytest.raises(CreditsExhausted):
        meter.check(pro, "auto")
    report = meter.set_overage(pro, True, None)
    assert report.overage.enabled
    meter.check(pro, "auto")
    assert spend(meter, pro, 30).overage_credits == Decimal(30)  # the earlier overshoot stays absorbed
    assert meter.report(pro).overage.credits == 30.0


def test_a_budget_stops_overage_at_the_budget(meter: Meter) -> None:
    pro = paid()
    meter.set_overage(pro, True, 1.00)  # $1 buys 25 credits
    spend(meter, pro, 999)
    assert spend(meter, pro, 3).overage_credits == 2
    assert spend(meter, pro, 21).overage_credits == 21
    meter.check(pro, "auto")  # 23 of 25
    capped = spend(meter, pro, 3)
    assert (capped.credits, capped.overage_credits) == (3, 2)  # billing never passes the budget
    with pytest.raises(CreditsExhausted) as caught:
        meter.check(pro, "auto")
    assert caught.value.message.startswith("You've reached your $1.00 overage budget for this month.")
    assert "Raise the budget" in caught.value.message
    assert caught.value.data["overageEnabled"] is True, "overage is on: raise its budget, not turn it on"
    overage = meter.report(pro).overage
    assert (overage.credits, overage.cost_usd, overage.budget_usd) == (25.0, 1.0, 1.0)
    meter.set_overage(pro, True, 2.5)
    meter.check(pro, "auto")


def test_turning_overage_off_refuses_again(meter: Meter) -> None:
    pro = paid()
    meter.set_overage(pro, True, None)
    spend(meter, pro, 1_200)
    meter.check(pro, "auto")
    meter.set_overage(pro, False, None)
    with pytest.raises(CreditsExhausted, match="Enable overage"):
        meter.check(pro, "auto")


def test_free_cannot_turn_overage_on(meter: Meter) -> None:
    with pytest.raises(OverageNotAvailable) as caught:
        meter.set_overage(NO_ENTITLEMENT, True, 10)
    assert caught.value.code == 1001
    assert (
        caught.value.message == "Overage is for paid plans: upgrade to Pro to keep going past your credits."
    )
    assert caught.value.data == {"plan": "free", "allowedPlans": ["pro", "pro_plus", "power"]}
    assert not meter.set_overage(NO_ENTITLEMENT, False, None).overage.enabled


def test_overage_stops_applying_after_a_downgrade(meter: Meter) -> None:
    meter.set_overage(paid("pro"), True, None)
    downgraded = paid("free")  # same account, now on Free
    spend(meter, downgraded, 51)
    with pytest.raises(CreditsExhausted, match="upgrade to Pro"):
        meter.check(downgraded, "auto")
    overage = meter.report(downgraded).overage
    assert (overage.available, overage.enabled) == (False, False)


def test_budgets_are_whole_cents(meter: Meter) -> None:
    assert meter.set_overage(paid(), True, 12.349).overage.budget_usd == 12.34
    with pytest.raises(InvalidParams):
        meter.set_overage(paid(), True, 0.001)


def test_settings_persist_in_the_ledger_file(tmp_path: Path, clock: FakeClock) -> None:
    Meter(Ledger(tmp_path / "l.sqlite3"), clock).set_overage(paid(), True, 7)
    overage = Meter(Ledger(tmp_path / "l.sqlite3"), clock).report(paid()).overage
    assert (overage.enabled, overage.budget_usd) == (True, 7.0)


# --- charging ----------------------------------------------------------------------------------------


def test_one_charge_per_turn(meter: Meter) -> None:
    pro = paid()
    first = direct(meter, "t1", pro, "claude-sonnet-4.5", Usage(input_tokens=1_000_000))
    again = direct(meter, "t1", pro, "claude-opus-4.5", Usage(output_tokens=5_000_000))
    assert first.credits == again.credits == Decimal("390.00")
    assert (first.duplicate, again.duplicate, first.charged) == (False, True, True)
    assert meter.report(pro).used_credits == 390.0


def test_uncharged_turns_cost_nothing_and_stay_uncharged(meter: Meter) -> None:
    pro = paid()
    result = meter.record_uncharged("t1", pro, reason="upstream rejected: overloaded", model_id="auto")
    assert (result.charged, result.credits, result.reason) == (False, 0, "upstream rejected: overloaded")
    late = meter.charge("t1", pro, model_id="auto", routed_model="claude-haiku-4.5", usage=worth(300))
    assert (late.duplicate, late.charged, late.credits) == (True, False, 0)
    report = meter.report(pro)
    assert (report.used_credits, report.by_model) == (0.0, [])


def test_a_cancelled_turn_is_charged_for_what_streamed(meter: Meter) -> None:
    usage = cancelled_usage(Usage(input_tokens=1_000), "x" * 4_000)  # ~1,000 output tokens
    result = meter.charge(
        "t1", paid(), model_id="claude-sonnet-4.5", routed_model="claude-sonnet-4.5", usage=usage
    )
    assert result.credits == Decimal("2.34")  # (0.3 + 1.5) cents × 1.3


def test_accounts_are_metered_separately(meter: Meter) -> None:
    spend(meter, paid(account="alice"), 300)
    assert meter.report(paid(account="bob")).used_credits == 0
    assert meter.report(NO_ENTITLEMENT).used_credits == 0
    assert meter.report(paid(account="alice")).used_credits == 300


# --- alerts and periods ------------------------------------------------------------------------------


def test_alerts_are_sent_once_per_period(meter: Meter, clock: FakeClock) -> None:
    pro = paid()
    assert spend(meter, pro, 795).alerts == ()
    crossed = spend(meter, pro, 6)
    assert crossed.crossed == (80,)
    assert crossed.alerts == ("You've used 80% of your 1,000 Pro credits this month. They reset on Dec 1.",)
    assert spend(meter, pro, 6).alerts == ()
    assert spend(meter, pro, 300).crossed == (100,)
    assert spend(meter, pro, 300).crossed == ()
    assert meter.report(pro).alerts == [crossed.alerts[0], PRO_OUT]
    clock.now = datetime(2026, 12, 2, tzinfo=UTC)
    assert meter.report(pro).alerts == []
    assert spend(meter, pro, 1_000).crossed == (80, 100)


def test_the_full_alert_says_overage_is_on(meter: Meter) -> None:
    pro = paid()
    meter.set_overage(pro, True, 20)
    assert spend(meter, pro, 1_002).alerts[-1] == (
        "You've used all 1,000 Pro credits this month. Overage is on: you keep going at $0.04 a credit, "
        "up to your $20.00 budget."
    )


def test_uncharged_turns_raise_no_alerts(meter: Meter) -> None:
    result = meter.record_uncharged("t", NO_ENTITLEMENT, reason="failed", model_id="auto", usage=worth(300))
    assert result.alerts == () and meter.report(NO_ENTITLEMENT).alerts == []


def test_credits_come_back_on_the_first(meter: Meter, clock: FakeClock) -> None:
    clock.now = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
    spend(meter, NO_ENTITLEMENT, 51)
    with pytest.raises(CreditsExhausted):
        meter.check(NO_ENTITLEMENT, "auto")
    clock.now = datetime(2026, 12, 1, tzinfo=UTC)
    meter.check(NO_ENTITLEMENT, "auto")
    december = meter.report(NO_ENTITLEMENT)
    assert (december.period_start, december.period_end) == ("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")
    assert (december.used_credits, december.remaining_credits) == (0.0, 50.0)
    clock.now = datetime(2026, 11, 20, tzinfo=UTC)
    assert meter.report(NO_ENTITLEMENT).used_credits == 51.0


def test_the_december_message_names_january(meter: Meter, clock: FakeClock) -> None:
    clock.now = datetime(2026, 12, 24, tzinfo=UTC)
    spend(meter, NO_ENTITLEMENT, 51)
    with pytest.raises(CreditsExhausted, match="They reset on Jan 1;"):
        meter.check(NO_ENTITLEMENT, "auto")


# --- the report --------------------------------------------------------------------------------------


def test_the_report_is_complete(meter: Meter, clock: FakeClock) -> None:
    pro = paid()
    clock.now = datetime(2026, 11, 2, 23, 59, tzinfo=UTC)
    spend(meter, pro, 30, routed="claude-haiku-4.5")
    clock.now = datetime(2026, 11, 3, 0, 1, tzinfo=UTC)
    spend(meter, pro, 60, routed="claude-sonnet-4.5")
    spend(meter, pro, 3, routed="claude-haiku-4.5")
    direct(meter, "direct", pro, "claude-sonnet-4.5", Usage(input_tokens=1_000_000))
    clock.now = datetime(2026, 11, 5, 8, tzinfo=UTC)
    report = meter.report(pro)
    assert UsageReport.model_validate_json(report.model_dump_json()) == report
    assert report.model_dump(mode="json") == {
        "plan": "pro",
        "planName": "Pro",
        "planReason": "pro for acct-1",
        "account": "acct-1",
        "periodStart": "2026-11-01T00:00:00Z",
        "periodEnd": "2026-12-01T00:00:00Z",
        "includedCredits": 1000.0,
        "usedCredits": 483.0,
        "remainingCredits": 517.0,
        "reserved": 0.0,
        "overage": {"available": True, "enabled": False, "budgetUsd": None, "credits": 0.0, "costUsd": 0.0},
        "byModel": [
            {
                "modelId": "claude-sonnet-4.5",
                "routedModel": "claude-sonnet-4.5",
                "turns": 1,
                "credits": 390.0,
            },
            {"modelId": "auto", "routedModel": "claude-sonnet-4.5", "turns": 1, "credits": 60.0},
            {"modelId": "auto", "routedModel": "claude-haiku-4.5", "turns": 2, "credits": 33.0},
        ],
        "daily": [
            {"date": "2026-11-01", "credits": 0.0, "byModel": []},
            {
                "date": "2026-11-02",
                "credits": 30.0,
                "byModel": [{"modelId": "auto", "routedModel": "claude-haiku-4.5", "credits": 30.0}],
            },
            {
                "date": "2026-11-03",
                "credits": 453.0,
                "byModel": [
                    {"modelId": "auto", "routedModel": "claude-haiku-4.5", "credits": 3.0},
                    {"modelId": "auto", "routedModel": "claude-sonnet-4.5", "credits": 60.0},
                    {"modelId": "claude-sonnet-4.5", "routedModel": "claude-sonnet-4.5", "credits": 390.0},
                ],
            },
            {"date": "2026-11-04", "credits": 0.0, "byModel": []},
            {"date": "2026-11-05", "credits": 0.0, "byModel": []},
        ],
        "alerts": [],
        "accountInfo": {
            "mode": "local",
            "email": None,
            "gatewayUrl": None,
            "accountUrl": None,
            "upgradeUrl": None,
        },
        "autoForYou": None,
    }


def test_the_local_report(meter: Meter) -> None:
    report = meter.report(NO_ENTITLEMENT)
    assert (report.plan, report.account, report.plan_reason) == (
        "free",
        None,
        "No entitlement: you are on Free",
    )
    assert (report.included_credits, report.remaining_credits) == (50, 50)
    assert not report.overage.available and len(report.daily) == 10


def test_remaining_is_never_negative(meter: Meter) -> None:
    spend(meter, NO_ENTITLEMENT, 3_000)
    report = meter.report(NO_ENTITLEMENT)
    assert (report.used_credits, report.remaining_credits) == (3_000.0, 0.0)


def test_a_naive_clock_is_refused(tmp_path: Path) -> None:
    meter = Meter(Ledger(tmp_path / "l.sqlite3"), lambda: datetime(2026, 11, 1))
    with pytest.raises(ValueError, match="naive"):
        meter.report(NO_ENTITLEMENT)

"""The plan catalog and the billing period."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from switchboard.catalog.models import CATALOG
from switchboard.plans.catalog import (
    PLANS,
    allowed_plans,
    forbidden_reason,
    get_plan,
    is_known_plan,
    plan_allows,
)
from switchboard.plans.period import iso_utc, period_of


def test_the_four_plans_match_the_issue() -> None:
    table = [(p.id, p.name, p.monthly_credits, p.overage_available) for p in PLANS.values()]
    assert table == [
        ("free", "Free", 50, False),
        ("pro", "Pro", 1_000, True),
        ("pro_plus", "Pro+", 2_000, True),
        ("power", "Power", 10_000, True),
    ]
    assert get_plan("free").overage_usd_per_credit is None
    assert {str(get_plan(p).overage_usd_per_credit) for p in ("pro", "pro_plus", "power")} == {"0.04"}


def test_free_gets_every_model_but_opus() -> None:
    for model_id in CATALOG:
        assert plan_allows("free", model_id) == (model_id != "claude-opus-4.5")
        for paid in ("pro", "pro_plus", "power"):
            assert plan_allows(paid, model_id)


def test_allowed_plans_and_reason() -> None:
    assert allowed_plans("claude-opus-4.5") == ["pro", "pro_plus", "power"]
    assert allowed_plans("auto") == ["free", "pro", "pro_plus", "power"]
    assert allowed_plans("gpt-4") == []
    assert forbidden_reason("claude-opus-4.5") == "Claude Opus 4.5 needs Pro, Pro+ or Power"


def test_unknown_plans_and_models_are_not_allowed() -> None:
    assert not is_known_plan("enterprise")
    assert not plan_allows("enterprise", "auto")
    assert not plan_allows("power", "claude-opus-9")


@pytest.mark.parametrize(
    ("moment", "start", "end"),
    [
        (datetime(2026, 11, 15, 12, tzinfo=UTC), "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"),
        (datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        (datetime(2027, 1, 1, tzinfo=UTC), "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"),
        # 20:00 on Nov 30 in UTC-5 is already December in UTC.
        (
            datetime(2026, 11, 30, 20, tzinfo=timezone(timedelta(hours=-5))),
            "2026-12-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        ),
    ],
)
def test_the_period_is_the_utc_calendar_month(moment: datetime, start: str, end: str) -> None:
    period = period_of(moment)
    assert (iso_utc(period.start), iso_utc(period.end)) == (start, end)


def test_period_labels_and_days() -> None:
    period = period_of(datetime(2028, 2, 10, tzinfo=UTC))
    assert period.key == "2028-02"
    assert period.reset_label == "Mar 1"
    assert period.days_until(datetime(2028, 2, 3, 5, tzinfo=UTC)) == [date(2028, 2, d) for d in (1, 2, 3)]
    assert len(period.days_until(datetime(2028, 3, 9, tzinfo=UTC))) == 29  # clamped, leap year


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        period_of(datetime(2026, 11, 1))

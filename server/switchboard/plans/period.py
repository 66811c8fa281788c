"""The billing period: the calendar month in UTC, from the 1st 00:00 UTC to the next 1st."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

Clock = Callable[[], datetime]

# Fixed English abbreviations: `%b` follows the process locale.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is refused rather than guessed at."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: the clock must return timezone-aware datetimes")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        """`YYYY-MM`, the period's name in the ledger."""
        return f"{self.start.year:04d}-{self.start.month:02d}"

    @property
    def reset_label(self) -> str:
        """When credits reset, for messages: "Dec 1"."""
        return f"{_MONTHS[self.end.month - 1]} {self.end.day}"

    def days_until(self, moment: datetime) -> list[date]:
        """Every day of the period from its start through `moment`'s day (clamped to the period)."""
        last = min(as_utc(moment), self.end - timedelta(microseconds=1)).date()
        first = self.start.date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def period_of(moment: datetime) -> Period:
    moment = as_utc(moment)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    end = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
    return Period(start, end)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z` suffix, e.g. `2026-12-01T00:00:00Z`."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")

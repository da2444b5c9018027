"""Contribution gaps and due dates: which months a membership's record lacks, and where any
month stands on a given day.

Pure: no I/O and no clock; callers pass today's date as counted in Asia/Jakarta. The rules are
DOMAIN.md's ("Contribution due dates"):

* a month's contribution is due by the 15th of the following month, whoever pays it (the
  employer for a wage earner, PU; the member for BPU and PMI);
* a month not recorded is "not due yet" up to and including its due date, "late" after it;
* an active membership expects a contribution for every month from its first one on; the
  running month is never late (its due date is next month); an inactive membership expects
  none after its last one.

Months before the first contribution are not expected: the record does not say when the
membership began.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

__all__ = ["DUE_DAY", "ContributionRecord", "MonthStanding", "Period", "Standing", "due_date",
           "months_between", "payer"]

DUE_DAY = 15
_PERIOD = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
_PAYERS = {"PU": "employer", "BPU": "member", "PMI": "member"}


@dataclass(frozen=True, order=True, slots=True)
class Period:
    """A contribution month; ordered in time."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1 <= self.year <= 9999:
            raise ValueError(f"not a month: {self.year}-{self.month}")

    @classmethod
    def parse(cls, text: str) -> Period:
        """``"2026-09"`` -> ``Period(2026, 9)``; raises :class:`ValueError` when malformed."""
        match = _PERIOD.fullmatch(text)
        if match is None:
            raise ValueError(f"malformed period: {text!r}")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, day: date) -> Period:
        """The month ``day`` falls in."""
        return cls(day.year, day.month)

    def shifted(self, months: int) -> Period:
        """This month moved by ``months`` (negative: back in time)."""
        index = self.year * 12 + self.month - 1 + months
        return Period(index // 12, index % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def due_date(period: Period) -> date:
    """The day by which ``period``'s contribution must be paid: the 15th of the next month."""
    following = period.shifted(1)
    return date(following.year, following.month, DUE_DAY)


def months_between(older: Period, newer: Period) -> tuple[Period, ...]:
    """The months strictly between ``older`` and ``newer``, oldest first."""
    months: list[Period] = []
    month = older.shifted(1)
    while month < newer:
        months.append(month)
        month = month.shifted(1)
    return tuple(months)


def payer(segment: str) -> str:
    """Who pays the contributions: ``"employer"`` for PU, ``"member"`` for BPU and PMI.
    Raises :class:`ValueError` for an unknown segment."""
    try:
        return _PAYERS[segment]
    except KeyError:
        raise ValueError(f"unknown segment: {segment!r}") from None


class Standing(StrEnum):
    """Where one month stands on a given day."""

    PAID = "paid"
    NOT_DUE = "not_due"  # not recorded, but its due date has not passed
    LATE = "late"  # not recorded after its due date
    NOT_EXPECTED = "not_expected"  # before the first contribution, or after an inactive end


@dataclass(frozen=True, slots=True)
class MonthStanding:
    """A month, its standing and its due date (late since the day after ``due``)."""

    period: Period
    standing: Standing
    due: date


@dataclass(frozen=True, slots=True)
class ContributionRecord:
    """A membership's contributed months (ascending, no repeats), who pays them, and whether
    the membership still expects contributions. Build it with :meth:`of`."""

    periods: tuple[Period, ...]
    segment: str
    active: bool

    @classmethod
    def of(cls, periods: Iterable[str | Period], segment: str, status: str) -> ContributionRecord:
        """The record from periods in any order (``"YYYY-MM"`` or :class:`Period`), the
        segment (``PU``, ``BPU``, ``PMI``) and the status (``active``, ``inactive``). Raises
        :class:`ValueError` for a malformed period, segment or status."""
        payer(segment)
        if status not in ("active", "inactive"):
            raise ValueError(f"unknown status: {status!r}")
        parsed = {p if isinstance(p, Period) else Period.parse(p) for p in periods}
        return cls(tuple(sorted(parsed)), segment, status == "active")

    @property
    def payer(self) -> str:
        """``"employer"`` or ``"member"`` (see :func:`payer`)."""
        return payer(self.segment)

    @property
    def first(self) -> Period | None:
        """The oldest contributed month."""
        return self.periods[0] if self.periods else None

    @property
    def last(self) -> Period | None:
        """The newest contributed month."""
        return self.periods[-1] if self.periods else None

    def inside_gaps(self) -> tuple[Period, ...]:
        """Months missing between the first and the last contribution, oldest first."""
        return tuple(month for older, newer in zip(self.periods, self.periods[1:], strict=False)
                     for month in months_between(older, newer))

    def since_last(self, today: date) -> tuple[Period, ...]:
        """Months after the last contribution up to last month (the running month is not
        owed yet), oldest first; none for an inactive membership or an empty record."""
        if not self.active or self.last is None:
            return ()
        return months_between(self.last, Period.of(today))

    def missing(self, today: date) -> tuple[Period, ...]:
        """Every expected month up to last month without a contribution, oldest first (a
        hole among months paid in advance is not owed yet, so not missing yet)."""
        running = Period.of(today)
        return tuple(m for m in self.inside_gaps() if m < running) + self.since_last(today)

    def missing_before(self, period: Period, today: date) -> tuple[Period, ...]:
        """The missing months between ``period`` and the newest contributed month before it,
        oldest first: where a listing newest first shows a gap, right after ``period``."""
        index = bisect_left(self.periods, period)
        if index == 0:
            return ()
        running = Period.of(today)
        return tuple(m for m in months_between(self.periods[index - 1], period) if m < running)

    def expects(self, period: Period) -> bool:
        """Whether a contribution is expected for ``period`` at all (paid or not)."""
        if self.first is None or period < self.first:
            return False
        return self.active or period <= self.periods[-1]

    def standing(self, period: Period, today: date) -> MonthStanding:
        """Where ``period`` stands on ``today``: paid, not due yet, late, or not expected."""
        due = due_date(period)
        if self._paid(period):
            return MonthStanding(period, Standing.PAID, due)
        if not self.expects(period):
            return MonthStanding(period, Standing.NOT_EXPECTED, due)
        return MonthStanding(period, Standing.NOT_DUE if today <= due else Standing.LATE, due)

    def unpaid(self, today: date, months: int = 12) -> tuple[MonthStanding, ...]:
        """The missing months among the ``months`` months up to last month, oldest first,
        with their standing (late, or not due yet for last month)."""
        window_start = Period.of(today).shifted(-months)
        return tuple(self.standing(month, today) for month in self.missing(today)
                     if month >= window_start)

    def _paid(self, period: Period) -> bool:
        index = bisect_left(self.periods, period)
        return index < len(self.periods) and self.periods[index] == period

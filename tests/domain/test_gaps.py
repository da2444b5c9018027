"""Contribution gaps and due dates: the demo cases by hand, then properties over any record."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.gaps import (
    ContributionRecord,
    Period,
    Standing,
    due_date,
    months_between,
    payer,
)

TODAY = date(2026, 12, 3)


def siti() -> ContributionRecord:
    """2016-01 to 2026-10, September 2026 not paid by the employer."""
    months = [Period(2016, 1).shifted(i) for i in range(130)]
    return ContributionRecord.of([m for m in months if m != Period(2026, 9)], "PU", "active")


def test_due_date_is_the_15th_of_the_following_month() -> None:
    assert due_date(Period(2026, 9)) == date(2026, 10, 15)
    assert due_date(Period(2026, 12)) == date(2027, 1, 15)


def test_siti_september_is_late_november_not_due_october_paid() -> None:
    record = siti()
    assert record.inside_gaps() == (Period(2026, 9),)
    assert record.since_last(TODAY) == (Period(2026, 11),)
    assert record.missing(TODAY) == (Period(2026, 9), Period(2026, 11))
    assert record.standing(Period(2026, 9), TODAY).standing is Standing.LATE
    assert record.standing(Period(2026, 9), TODAY).due == date(2026, 10, 15)
    assert record.standing(Period(2026, 10), TODAY).standing is Standing.PAID
    november = record.standing(Period(2026, 11), TODAY)
    assert (november.standing, november.due) == (Standing.NOT_DUE, date(2026, 12, 15))
    assert [m.period for m in record.unpaid(TODAY)] == [Period(2026, 9), Period(2026, 11)]


def test_missing_before_a_month_is_the_gap_under_it_in_a_listing() -> None:
    record = siti()
    assert record.missing_before(Period(2026, 10), TODAY) == (Period(2026, 9),)
    assert record.missing_before(Period(2026, 8), TODAY) == ()
    assert record.missing_before(Period(2016, 1), TODAY) == ()  # the first month
    holes = ContributionRecord.of(["2026-10", "2027-02"], "BPU", "active")
    assert holes.missing_before(Period(2027, 2), TODAY) == (Period(2026, 11),)  # 12, 1: not owed


def test_the_due_date_itself_is_not_late_the_day_after_is() -> None:
    record = ContributionRecord.of(["2026-08"], "BPU", "active")
    assert record.standing(Period(2026, 9), date(2026, 10, 15)).standing is Standing.NOT_DUE
    assert record.standing(Period(2026, 9), date(2026, 10, 16)).standing is Standing.LATE


def test_an_inactive_membership_expects_nothing_after_its_last_month() -> None:
    dewi = ContributionRecord.of([Period(2014, 6).shifted(i) for i in range(67)], "PU",
                                 "inactive")
    assert dewi.last == Period(2019, 12)
    assert dewi.since_last(TODAY) == () and dewi.missing(TODAY) == ()
    assert dewi.unpaid(TODAY) == ()
    assert dewi.standing(Period(2020, 1), TODAY).standing is Standing.NOT_EXPECTED


def test_months_before_the_first_contribution_are_not_expected() -> None:
    record = siti()
    assert record.standing(Period(2015, 12), TODAY).standing is Standing.NOT_EXPECTED
    empty = ContributionRecord.of([], "PU", "active")
    assert empty.missing(TODAY) == () and empty.first is None
    assert empty.standing(Period(2026, 11), TODAY).standing is Standing.NOT_EXPECTED


def test_the_running_month_is_never_missing_and_never_late() -> None:
    record = ContributionRecord.of(["2026-11"], "PU", "active")
    assert record.missing(TODAY) == ()
    assert record.standing(Period(2026, 12), TODAY).standing is Standing.NOT_DUE


def test_months_paid_in_advance_leave_no_gap() -> None:
    agus = ContributionRecord.of(["2026-10", "2026-11", "2026-12", "2027-01"], "BPU", "active")
    assert agus.missing(TODAY) == ()
    assert agus.standing(Period(2027, 1), TODAY).standing is Standing.PAID


def test_who_pays_and_bad_input() -> None:
    assert (payer("PU"), payer("BPU"), payer("PMI")) == ("employer", "member", "member")
    assert ContributionRecord.of([], "PMI", "active").payer == "member"
    for bad in (lambda: payer("XX"), lambda: Period.parse("2026-13"),
                lambda: ContributionRecord.of(["2026-01"], "PU", "gone"),
                lambda: Period(2026, 0)):
        with pytest.raises(ValueError):
            bad()


def test_periods_in_any_order_and_repeated_are_one_sorted_record() -> None:
    record = ContributionRecord.of(["2020-03", "2020-01", Period(2020, 3)], "PU", "active")
    assert record.periods == (Period(2020, 1), Period(2020, 3))
    assert record.inside_gaps() == (Period(2020, 2),)


# --- properties ------------------------------------------------------------------------------

months = st.builds(Period, st.integers(2000, 2030), st.integers(1, 12))
days = st.dates(date(2000, 1, 1), date(2032, 12, 31))
records = st.builds(ContributionRecord.of, st.lists(months, max_size=40),
                    st.sampled_from(["PU", "BPU", "PMI"]), st.sampled_from(["active", "inactive"]))


@given(months, st.integers(-400, 400))
def test_shifting_is_reversible_and_ordered(month: Period, step: int) -> None:
    assert month.shifted(step).shifted(-step) == month
    assert (month.shifted(step) > month) == (step > 0)
    assert Period.parse(str(month)) == month


@given(months)
def test_a_due_date_falls_in_the_next_month(month: Period) -> None:
    due = due_date(month)
    assert Period.of(due) == month.shifted(1) and due.day == 15


@given(months, months)
def test_months_between_fills_exactly_the_gap(a: Period, b: Period) -> None:
    older, newer = min(a, b), max(a, b)
    between = months_between(older, newer)
    assert all(older < m < newer for m in between)
    assert list(between) == sorted(between)
    expected = max(0, (newer.year - older.year) * 12 + newer.month - older.month - 1)
    assert len(between) == expected


@given(records, days)
def test_missing_months_are_expected_unpaid_and_never_the_running_month(
        record: ContributionRecord, today: date) -> None:
    missing = record.missing(today)
    assert list(missing) == sorted(set(missing))
    assert not set(missing) & set(record.periods)
    for month in missing:
        assert record.expects(month) and month < Period.of(today)
        assert record.standing(month, today).standing in (Standing.LATE, Standing.NOT_DUE)
    if not record.active:
        assert record.since_last(today) == ()
        assert all(m < record.periods[-1] for m in missing)


@given(records, days)
def test_every_expected_month_is_paid_or_missing(record: ContributionRecord,
                                                 today: date) -> None:
    if record.first is None:
        return
    end = max(record.periods[-1], Period.of(today).shifted(-1)) if record.active else \
        record.periods[-1]
    span = (record.first, *months_between(record.first, end), end) if end > record.first \
        else (record.first,)
    owed = {m for m in span if m < Period.of(today)}
    assert owed - set(record.periods) == set(record.missing(today))


@given(records, months, days)
def test_standing_follows_the_due_date(record: ContributionRecord, month: Period,
                                       today: date) -> None:
    found = record.standing(month, today)
    assert found.due == due_date(month)
    if found.standing is Standing.LATE:
        assert today > found.due and record.expects(month)
    if found.standing is Standing.NOT_DUE:
        assert today <= found.due and month not in record.periods
        assert record.standing(month, found.due + timedelta(days=1)).standing is Standing.LATE


@given(records, days, st.integers(1, 36))
def test_unpaid_months_lie_in_the_window(record: ContributionRecord, today: date,
                                         window: int) -> None:
    unpaid = record.unpaid(today, window)
    for item in unpaid:
        assert Period.of(today).shifted(-window) <= item.period < Period.of(today)
        assert item.standing in (Standing.LATE, Standing.NOT_DUE)
    assert {m.period for m in unpaid} <= set(record.missing(today))


@given(records, days)
def test_the_gaps_under_each_month_are_all_the_inside_gaps(record: ContributionRecord,
                                                          today: date) -> None:
    under = [m for p in record.periods for m in record.missing_before(p, today)]
    running = Period.of(today)
    assert under == [m for m in record.inside_gaps() if m < running]

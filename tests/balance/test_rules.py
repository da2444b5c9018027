"""The exact JHT rules: rounding, monthly parts and the yearly compounding development."""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from balance.rules import BalanceFigures, Posted, compute_balance, jht_parts, round_half_up

RATES = {2016: Decimal("7.19"), 2017: Decimal("7.82"), 2018: Decimal("6.26"),
         2019: Decimal("6.06"), 2020: Decimal("5.63")}


def paid(period: str, wage: int, paid_on: date | None = None) -> Posted:
    """A PU contribution for ``wage``, paid on the 10th of the next month unless given."""
    year, month = int(period[:4]), int(period[5:])
    default = date(year + month // 12, month % 12 + 1, 10)
    employer, employee = jht_parts(wage, "PU")
    return Posted(period, employer, employee, paid_on or default)


def months(year: int, first: int, last: int, wage: int) -> list[Posted]:
    """Contributions for months ``first..last`` of ``year`` at one wage."""
    return [paid(f"{year}-{m:02d}", wage) for m in range(first, last + 1)]


@pytest.mark.parametrize(("x", "expected"), [
    (Fraction(5, 2), 3), (Fraction(-5, 2), -3), (Decimal("0.5"), 1), (Decimal("-0.5"), -1),
    (Decimal("4098.3"), 4098), (Fraction(196804767, 1250), 157444), (Decimal("-1.49"), -1),
    (Decimal("7"), 7), (Fraction(0), 0), (Decimal("-7.5"), -8), (Decimal("1.4999"), 1),
])
def test_round_half_up_rounds_halves_away_from_zero(x: Fraction | Decimal, expected: int) -> None:
    """Halves go away from zero on both signs (negatives mirror positives)."""
    assert round_half_up(x) == expected


@given(st.fractions())
def test_round_half_up_is_odd_and_within_a_half(x: Fraction) -> None:
    assert round_half_up(-x) == -round_half_up(x)
    assert abs(round_half_up(x) - x) <= Fraction(1, 2)


def test_jht_parts_of_the_domain_worked_example() -> None:
    assert jht_parts(4_000_000, "PU") == (148_000, 80_000)


def test_jht_parts_round_odd_wages() -> None:
    # 4,567,891 * 0.037 = 169,011.967 -> 169,012; * 0.02 = 91,357.82 -> 91,358
    assert jht_parts(4_567_891, "PU") == (169_012, 91_358)
    # 1,250 * 0.037 = 46.25 -> 46; 1,275 * 0.02 = 25.5 -> 26 (a half, up)
    assert jht_parts(1_250, "PU") == (46, 25)
    assert jht_parts(1_275, "PU")[1] == 26
    # 500 * 0.037 = 18.5 -> 19
    assert jht_parts(500, "PU") == (19, 10)


def test_jht_parts_bpu_and_pmi_pay_only_two_percent() -> None:
    assert jht_parts(4_567_891, "BPU") == (0, 91_358)
    assert jht_parts(2_000_000, "PMI") == (0, 40_000)


def test_jht_parts_rejects_unknown_segments_and_negative_wages() -> None:
    with pytest.raises(ValueError, match="segment"):
        jht_parts(1_000_000, "XYZ")
    with pytest.raises(ValueError, match="wage"):
        jht_parts(-1, "PU")


def test_compute_balance_hand_computed_2016_to_2018() -> None:
    """Worked by hand (c = employer + employee JHT; weight = (12 - month) / 12).

    Wage 4,000,000 -> 148,000 + 80,000 = c 228,000; wage 5,000,000 -> 185,000 + 100,000 = 285,000.
    Contributions: 2016-10..12 at 4,000,000; 2017-01..06 at 4,000,000, 2017-07..12 at 5,000,000;
    2018-01..12 at 5,000,000. Each paid on the 10th of the next month. As of 2019-06-30.

    2016: opening 0; weighted 228,000 * (2+1+0)/12 = 57,000;
          7.19% * 57,000 = 4,098.3 -> 4,098. Contributions 684,000.
    2017: opening 684,000 + 4,098 = 688,098;
          weighted 228,000 * (11+10+9+8+7+6)/12 + 285,000 * (5+4+3+2+1+0)/12
                 = 228,000 * 51/12 + 285,000 * 15/12 = 969,000 + 356,250 = 1,325,250;
          7.82% * (688,098 + 1,325,250) = 7.82% * 2,013,348 = 157,443.8136 -> 157,444.
          Contributions 6 * 228,000 + 6 * 285,000 = 3,078,000.
    2018: opening 688,098 + 3,078,000 + 157,444 = 3,923,542;
          weighted 285,000 * 66/12 = 1,567,500;
          6.26% * (3,923,542 + 1,567,500) = 6.26% * 5,491,042 = 343,739.2292 -> 343,739.
          Contributions 3,420,000.
    2019 is the running year: nothing, although its rate (6.06) is configured.
    Employer 3 * 148,000 + 6 * 148,000 + 6 * 185,000 + 12 * 185,000 = 4,662,000;
    employee 3 * 80,000 + 6 * 80,000 + 6 * 100,000 + 12 * 100,000 = 2,520,000;
    development 4,098 + 157,444 + 343,739 = 505,281; total 7,687,281.
    """
    history = (months(2016, 10, 12, 4_000_000) + months(2017, 1, 6, 4_000_000)
               + months(2017, 7, 12, 5_000_000) + months(2018, 1, 12, 5_000_000))
    figures = compute_balance(history, RATES, date(2019, 6, 30))
    assert figures == BalanceFigures(
        employer_part=4_662_000, employee_part=2_520_000, development=505_281,
        total=7_687_281, last_period="2018-12", pending_years=(),
        development_by_year={2016: 4_098, 2017: 157_444, 2018: 343_739})


def test_a_december_contribution_earns_nothing_in_its_own_year() -> None:
    # 2016: 228,000 * 0/12 -> 0. 2017: 7.82% * 228,000 = 17,829.6 -> 17,830.
    figures = compute_balance([paid("2016-12", 4_000_000)], RATES, date(2017, 12, 31))
    assert dict(figures.development_by_year) == {2016: 0, 2017: 17_830}
    assert figures.total == 228_000 + 17_830


def test_a_year_without_a_rate_is_pending_and_later_years_compound_without_it() -> None:
    # 2016: 7.19% * 228,000 * 11/12 = 7.19% * 209,000 = 15,027.1 -> 15,027.
    # 2017: no rate -> 0, pending. 2018: 6.26% * (228,000 + 15,027) = 15,213.4902 -> 15,213.
    rates = {2016: Decimal("7.19"), 2018: Decimal("6.26")}
    figures = compute_balance([paid("2016-01", 4_000_000)], rates, date(2018, 12, 31))
    assert figures.pending_years == (2017,)
    assert dict(figures.development_by_year) == {2016: 15_027, 2017: 0, 2018: 15_213}
    assert figures.development == 30_240
    assert figures.total == 228_000 + 30_240


def test_a_year_without_a_rate_and_nothing_in_it_is_not_pending() -> None:
    zero = Posted("2016-05", 0, 0, date(2016, 6, 10))
    figures = compute_balance([zero], {}, date(2017, 12, 31))
    assert figures.pending_years == ()
    assert figures.total == 0
    assert figures.last_period == "2016-05"


def test_the_running_year_earns_nothing_until_31_december() -> None:
    history = [paid("2019-01", 4_000_000)]
    assert compute_balance(history, RATES, date(2019, 12, 30)).development == 0
    # as of exactly 31 December the year is complete: 6.06% * 228,000 * 11/12 = 12,665.4 -> 12,665
    figures = compute_balance(history, RATES, date(2019, 12, 31))
    assert dict(figures.development_by_year) == {2019: 12_665}
    assert figures.total == 240_665


def test_contributions_paid_after_as_of_are_excluded() -> None:
    history = [paid("2018-01", 4_000_000), paid("2018-02", 5_000_000, date(2019, 7, 1))]
    figures = compute_balance(history, RATES, date(2019, 6, 30))
    # only 2018-01: 6.26% * 228,000 * 11/12 = 6.26% * 209,000 = 13,083.4 -> 13,083
    assert (figures.employer_part, figures.employee_part) == (148_000, 80_000)
    assert figures.development == 13_083
    assert figures.last_period == "2018-01"


def test_a_late_payment_counts_in_its_periods_year() -> None:
    late = paid("2016-01", 4_000_000, date(2018, 5, 2))
    # not yet paid at the end of 2017: nothing at all
    assert compute_balance([late], RATES, date(2017, 12, 31)).total == 0
    # once paid it earns from its period: 2016 15,027;
    # 2017 7.82% * 243,027 = 19,004.7114 -> 19,005;
    # 2018 6.26% * (243,027 + 19,005) = 6.26% * 262,032 = 16,403.2032 -> 16,403
    figures = compute_balance([late], RATES, date(2018, 12, 31))
    assert dict(figures.development_by_year) == {2016: 15_027, 2017: 19_005, 2018: 16_403}
    assert figures.total == 228_000 + 15_027 + 19_005 + 16_403


def test_an_empty_history_is_all_zero() -> None:
    assert compute_balance([], RATES, date(2024, 1, 1)) == BalanceFigures(
        employer_part=0, employee_part=0, development=0, total=0, last_period=None,
        pending_years=(), development_by_year={})


def test_last_period_is_the_newest_paid_period_not_the_newest_payment() -> None:
    history = [paid("2018-03", 4_000_000), paid("2017-11", 4_000_000, date(2018, 6, 1)),
               paid("2018-04", 4_000_000, date(2030, 1, 1))]
    assert compute_balance(history, RATES, date(2018, 12, 31)).last_period == "2018-03"


def test_a_malformed_period_is_rejected() -> None:
    with pytest.raises(ValueError, match="period"):
        compute_balance([Posted("2018-13", 1, 1, date(2018, 1, 1))], RATES, date(2019, 1, 1))


def test_forty_years_of_monthly_contributions_compute_fast() -> None:
    history = [paid(f"{y}-{m:02d}", 4_567_891) for y in range(1985, 2025) for m in range(1, 13)]
    rates = {y: Decimal("6.26") for y in range(1985, 2025)}
    best = min(_timed(history, rates) for _ in range(5))
    assert best < 0.01  # typically well under 1 ms; generous bound against slow CI machines


def _timed(history: list[Posted], rates: dict[int, Decimal]) -> float:
    start = time.perf_counter()
    figures = compute_balance(history, rates, date(2025, 6, 30))
    elapsed = time.perf_counter() - start
    assert figures.last_period == "2024-12"
    return elapsed


# --- properties -------------------------------------------------------------------------------

PERIODS = st.builds(lambda y, m: f"{y}-{m:02d}", st.integers(2014, 2021), st.integers(1, 12))
RATE_MAPS = st.dictionaries(
    st.integers(2014, 2022), st.decimals(0, 12, places=2, allow_nan=False, allow_infinity=False))
AS_OF = st.dates(date(2013, 6, 1), date(2024, 12, 31))


@st.composite
def posted(draw: st.DrawFn) -> Posted:
    """One contribution, paid in its period's month or up to ~2 years later."""
    period = draw(PERIODS)
    start = date(int(period[:4]), int(period[5:]), 1)
    return Posted(period, draw(st.integers(0, 10_000_000)), draw(st.integers(0, 5_000_000)),
                  start + timedelta(days=draw(st.integers(0, 800))))


HISTORIES = st.lists(posted(), max_size=40, unique_by=lambda c: c.period)


@given(HISTORIES, RATE_MAPS, AS_OF)
def test_total_is_the_parts_plus_a_non_negative_development(
        history: list[Posted], rates: dict[int, Decimal], as_of: date) -> None:
    figures = compute_balance(history, rates, as_of)
    assert figures.total == figures.employer_part + figures.employee_part + figures.development
    assert figures.development >= 0
    assert figures.development == sum(figures.development_by_year.values())


@given(HISTORIES, RATE_MAPS, AS_OF, AS_OF)
def test_the_balance_never_decreases_with_as_of(
        history: list[Posted], rates: dict[int, Decimal], a: date, b: date) -> None:
    early, late = sorted((a, b))
    assert compute_balance(history, rates, early).total <= compute_balance(
        history, rates, late).total


@given(HISTORIES, RATE_MAPS, AS_OF, st.data())
def test_adding_a_contribution_never_decreases_the_total(
    history: list[Posted], rates: dict[int, Decimal], as_of: date, data: st.DataObject,
) -> None:
    extra = data.draw(posted())
    others = [c for c in history if c.period != extra.period]
    assert compute_balance(others, rates, as_of).total <= compute_balance(
        [*others, extra], rates, as_of).total


@pytest.mark.parametrize(("segment", "share"), [("PU", "0.057"), ("BPU", "0.02"),
                                                ("PMI", "0.02")])
def test_the_jht_share_is_the_sum_of_the_parts_rates(segment: str, share: str) -> None:
    from fractions import Fraction

    from balance.rules import jht_share

    assert jht_share(segment) == Fraction(share)

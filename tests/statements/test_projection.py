"""The JHT projection to age 56, against hand-computed figures."""

from __future__ import annotations

from datetime import date

from statements.projection import project


def test_two_years_by_hand() -> None:
    # Born June 1970: 56 in 2026. Today March 2024: 2025 and 2026 are projected.
    # 2025: wage 4,000,000, c = 5.7% = 228,000; development = 6% of (10,000,000 + 5.5 * 228,000)
    #       = 6% of 11,254,000 = 675,240; balance 10,000,000 + 12 * 228,000 + 675,240 = 13,411,240
    # 2026: wage 4,200,000 (+5%), c = 239,400; development = 6% of (13,411,240 + 1,316,700)
    #       = 883,676.4 -> 883,676; balance 13,411,240 + 2,872,800 + 883,676 = 17,167,716
    result = project(balance=10_000_000, monthly_wage=4_000_000, birth_date=date(1970, 6, 1),
                     today=date(2024, 3, 1), rate=0.06, wage_growth=0.05)
    assert result.years == ((2025, 13_411_240), (2026, 17_167_716))
    assert result.at_56 == 17_167_716
    assert result.age_56_year == 2026
    assert result.monthly_contribution == 228_000
    assert (result.rate, result.wage_growth) == (0.06, 0.05)


def test_contribution_share_for_a_non_wage_earner() -> None:
    # BPU: 2% of 3,000,000 = 60,000 a month; no development, no wage growth.
    result = project(balance=1_000_000, monthly_wage=3_000_000, birth_date=date(1971, 1, 1),
                     today=date(2025, 7, 1), rate=0.0, wage_growth=0.0, contribution_share=0.02)
    assert result.years == ((2026, 1_720_000), (2027, 2_440_000))
    assert result.monthly_contribution == 60_000


def test_member_already_56_gets_no_future_years() -> None:
    result = project(balance=55_000_000, monthly_wage=5_000_000, birth_date=date(1960, 1, 1),
                     today=date(2026, 11, 20), rate=0.06, wage_growth=0.05)
    assert result.years == ()
    assert result.at_56 == 55_000_000
    assert result.age_56_year == 2016


def test_member_turning_56_this_year_gets_no_future_years() -> None:
    result = project(balance=7, monthly_wage=5_000_000, birth_date=date(1970, 12, 31),
                     today=date(2026, 1, 2), rate=0.06, wage_growth=0.05)
    assert (result.years, result.at_56, result.age_56_year) == ((), 7, 2026)


def test_projection_reaches_the_year_of_age_56_and_grows() -> None:
    result = project(balance=38_876_797, monthly_wage=6_758_000, birth_date=date(1990, 1, 5),
                     today=date(2026, 11, 20), rate=0.06, wage_growth=0.05)
    assert [year for year, _ in result.years] == list(range(2027, 2047))
    values = [value for _, value in result.years]
    assert values == sorted(values)
    assert result.at_56 == values[-1]

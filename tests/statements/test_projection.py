"""The JHT projection to age 56, against hand-computed figures."""

from __future__ import annotations

from datetime import date

from statements.projection import project


def test_three_years_by_hand() -> None:
    # Born June 1970: 56 in June 2026, so contributions until May 2026. Today March 2024.
    # 2024: wage 4,000,000, c = 5.7% = 228,000 for March..December (10 months);
    #       development = 6% of (10,000,000 + 228,000 * (9+8+...+0)/12 = 855,000) = 651,300;
    #       balance 10,000,000 + 2,280,000 + 651,300 = 12,931,300
    # 2025: wage 4,200,000 (+5%), c = 239,400; development = 6% of (12,931,300 + 5.5 * 239,400)
    #       = 6% of 14,248,000 = 854,880; balance 12,931,300 + 2,872,800 + 854,880 = 16,658,980
    # 2026: wage 4,410,000, c = 251,370 for January..May; the opening earns 5/12 of a year, the
    #       contributions (4+3+2+1+0)/12: 6% of (6,941,241.67 + 209,475) = 429,043.0;
    #       balance 16,658,980 + 1,256,850 + 429,043 = 18,344,873 at the birthday
    result = project(balance=10_000_000, monthly_wage=4_000_000, birth_date=date(1970, 6, 1),
                     today=date(2024, 3, 1), rate=0.06, wage_growth=0.05)
    assert result.years == ((2024, 12_931_300), (2025, 16_658_980), (2026, 18_344_873))
    assert result.at_56 == 18_344_873
    assert result.age_56_year == 2026
    assert result.monthly_contribution == 228_000
    assert (result.rate, result.wage_growth) == (0.06, 0.05)


def test_contribution_share_for_a_non_wage_earner() -> None:
    # BPU: 2% of 3,000,000 = 60,000 a month from July 2025; no development, no wage growth;
    # born January 1971: the last contribution is December 2026's.
    result = project(balance=1_000_000, monthly_wage=3_000_000, birth_date=date(1971, 1, 1),
                     today=date(2025, 7, 1), rate=0.0, wage_growth=0.0, segment="BPU")
    assert result.years == ((2025, 1_360_000), (2026, 2_080_000))
    assert result.monthly_contribution == 60_000


def test_the_birthday_month_counts() -> None:
    # Two members of the same year, born in January and in December: eleven months apart.
    def at_56(born: date) -> int:
        return project(balance=100_000_000, monthly_wage=5_000_000, birth_date=born,
                       today=date(2026, 12, 4), rate=0.06, wage_growth=0.03).at_56

    assert at_56(date(1990, 1, 5)) < at_56(date(1990, 12, 28))


def test_member_already_56_gets_no_future_years() -> None:
    result = project(balance=55_000_000, monthly_wage=5_000_000, birth_date=date(1960, 1, 1),
                     today=date(2026, 11, 20), rate=0.06, wage_growth=0.05)
    assert result.years == ()
    assert result.at_56 == 55_000_000
    assert result.age_56_year == 2016


def test_member_turning_56_later_this_year_gets_the_months_before() -> None:
    # Born 31 December 1970, today 2 January 2026: January..November, 285,000 each (3,135,000);
    # development 6% of (7 * 11/12 + 285,000 * 55/12) = 78,375.4 -> 78,375.
    result = project(balance=7, monthly_wage=5_000_000, birth_date=date(1970, 12, 31),
                     today=date(2026, 1, 2), rate=0.06, wage_growth=0.05)
    assert (result.years, result.at_56, result.age_56_year) == (
        ((2026, 3_213_382),), 3_213_382, 2026)


def test_member_whose_56th_birthday_month_has_come_gets_no_months() -> None:
    result = project(balance=7, monthly_wage=5_000_000, birth_date=date(1970, 1, 31),
                     today=date(2026, 1, 2), rate=0.06, wage_growth=0.05)
    assert (result.years, result.at_56, result.monthly_contribution) == ((), 7, 0)


def test_projection_reaches_the_year_of_age_56_and_grows() -> None:
    result = project(balance=38_876_797, monthly_wage=6_758_000, birth_date=date(1990, 1, 5),
                     today=date(2026, 11, 20), rate=0.06, wage_growth=0.05)
    # Born in January: the last contribution is December 2045's, the balance at 56 that year's.
    assert [year for year, _ in result.years] == list(range(2026, 2046))
    assert result.age_56_year == 2046
    values = [value for _, value in result.years]
    assert values == sorted(values)
    assert result.at_56 == values[-1]

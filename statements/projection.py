"""An estimate of the JHT balance at age 56 (the age JHT is paid out in full).

Each projected year is a whole calendar year after the current one, up to the year the member
turns 56. In year ``k`` (``k = 0`` the first) the monthly wage is
``monthly_wage * (1 + wage_growth) ** k`` and each of the 12 months contributes
``round_half_up(wage * contribution_share)`` (5.7% for a wage earner: 3.7% employer + 2%
employee). Development follows the rule the balance service applies to a completed year
(DOMAIN.md): ``round_half_up(rate * (opening + sum(c * (12 - m) / 12)))``, which for 12 equal
contributions is ``rate * (opening + 5.5 * c)``; so the opening balance compounds yearly and each
contribution earns for the months it was in the account. The rest of the current year is left
out (the estimate errs low by less than a year of contributions). Amounts are whole Rupiah;
rates are exact decimal fractions (``0.06`` is 6/100, never a binary float).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from balance.rules import round_half_up

PAYOUT_AGE = 56
_MONTH_WEIGHT = Fraction(sum(12 - m for m in range(1, 13)), 12)  # 66/12 = 5.5 months' worth


@dataclass(frozen=True)
class Projection:
    """Projected balance at the end of each year up to the year of age 56.

    ``years`` holds ``(year, balance at its end)``; ``at_56`` the last of them (today's balance
    when there is no year left); ``monthly_contribution`` the first projected year's."""

    years: tuple[tuple[int, int], ...]
    at_56: int
    age_56_year: int
    monthly_contribution: int
    rate: float
    wage_growth: float


def project(*, balance: int, monthly_wage: int, birth_date: date, today: date, rate: float,
            wage_growth: float, contribution_share: float = 0.057) -> Projection:
    """The projection from ``balance`` today (see the module text for the rule).

    ``rate`` and ``wage_growth`` are yearly fractions (0.06 for 6%); ``contribution_share`` is the
    JHT share of the wage (0.057 for PU; a BPU member's 0.02). A member already 56 or older, or
    turning 56 this year, gets no projected years and ``at_56 == balance``."""
    age_56_year = birth_date.year + PAYOUT_AGE
    growth, yearly, share = (Fraction(str(wage_growth)), Fraction(str(rate)),
                             Fraction(str(contribution_share)))
    first_contribution = round_half_up(monthly_wage * share)
    years: list[tuple[int, int]] = []
    closing = balance
    for k, year in enumerate(range(today.year + 1, age_56_year + 1)):
        wage = round_half_up(monthly_wage * (1 + growth) ** k)
        contribution = round_half_up(wage * share)
        development = round_half_up(yearly * (closing + contribution * _MONTH_WEIGHT))
        closing = closing + 12 * contribution + development
        years.append((year, closing))
    return Projection(years=tuple(years), at_56=closing, age_56_year=age_56_year,
                      monthly_contribution=first_contribution, rate=rate,
                      wage_growth=wage_growth)

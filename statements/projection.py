"""An estimate of the JHT balance at age 56 (the age JHT is paid out in full).

Contributions are counted from the current month up to the month before the member's 56th
birthday month. In calendar year ``k`` (``k = 0`` this year) the monthly wage is
``monthly_wage * (1 + wage_growth) ** k`` and each month contributes the parts
:func:`balance.rules.jht_parts` gives the segment (a wage earner: 3.7% employer + 2% employee,
each rounded; a non-wage earner or migrant worker: 2%). Development follows the rule the
balance service applies to a year (DOMAIN.md),
``round_half_up(rate * (opening + sum(c * (12 - m) / 12)))``: the opening balance earns for the
whole year, each contribution for the months after its own. This year's opening is taken as
today's balance (contributions already paid this year earn as if there since January: a
slight overestimate, under one month's development). The year of 56 ends at the birthday
month: the opening earns ``(b - 1) / 12`` of a year and a contribution of month ``m``
``(b - 1 - m) / 12``, ``b`` the birthday month. Amounts are whole Rupiah; rates are exact
decimal fractions (``0.06`` is 6/100, never a binary float).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from balance.rules import jht_parts, round_half_up

PAYOUT_AGE = 56


@dataclass(frozen=True)
class Projection:
    """Projected balance at the end of each year from this one, and at the 56th birthday.

    ``years`` holds ``(year, balance at its end)``, the last at the birthday; ``at_56`` the
    last of them (today's balance when there is no month left); ``monthly_contribution`` this
    year's (0 when there is none)."""

    years: tuple[tuple[int, int], ...]
    at_56: int
    age_56_year: int
    monthly_contribution: int
    rate: float
    wage_growth: float


def project(*, balance: int, monthly_wage: int, birth_date: date, today: date, rate: float,
            wage_growth: float, segment: str = "PU") -> Projection:
    """The projection from ``balance`` today (see the module text for the rule).

    ``rate`` and ``wage_growth`` are yearly fractions (0.06 for 6%); ``segment`` (``PU``,
    ``BPU``, ``PMI``) sets the contribution, as the balance service computes it. ``years``
    ends with the year of 56 (its value: the balance at the birthday); a member whose 56th
    birthday month has come gets no projected years and ``at_56 == balance``."""
    age_56_year, birthday_month = birth_date.year + PAYOUT_AGE, birth_date.month
    growth, yearly = Fraction(str(wage_growth)), Fraction(str(rate))
    years: list[tuple[int, int]] = []
    closing = balance
    contributions: list[int] = []
    for k, year in enumerate(range(today.year, age_56_year + 1)):
        first = today.month if k == 0 else 1
        end = birthday_month - 1 if year == age_56_year else 12  # the year's last month counted
        if end < first:
            break
        wage = round_half_up(monthly_wage * (1 + growth) ** k)
        contribution = sum(jht_parts(wage, segment))
        contributions.append(contribution)
        months = range(first, end + 1)
        weight = Fraction(sum(end - m for m in months), 12)
        opening = Fraction(end, 12) if year == age_56_year else 1
        development = round_half_up(yearly * (closing * opening + contribution * weight))
        closing = closing + len(months) * contribution + development
        years.append((year, closing))
    return Projection(years=tuple(years), at_56=closing, age_56_year=age_56_year,
                      monthly_contribution=contributions[0] if contributions else 0,
                      rate=rate, wage_growth=wage_growth)

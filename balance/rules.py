"""The JHT rules of the reference balance service: exact, pure, in whole Rupiah.

Everything is exact: :class:`~fractions.Fraction` and integer ratios (rates come in as
:class:`~decimal.Decimal` percentages), never floats, so results are reproducible to the Rupiah.
The rule is DOMAIN.md's "JHT balance and its development":

* each month's JHT contribution is ``round_half_up(w * 3.7%)`` (employer) and
  ``round_half_up(w * 2%)`` (employee) of the reported wage ``w``;
* a completed year Y earns ``round_half_up(r * (opening_Y + sum(c * (12 - m) / 12)))``, credited on
  31 December of Y; the running year earns nothing; a completed year without a configured rate
  credits nothing and is reported as pending;
* a contribution counts in the year of its period, whatever its paid date, but only once paid.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from types import MappingProxyType
from typing import NamedTuple

_EMPLOYER_RATE = Fraction(37, 1000)  # JHT employer 3.7% (PP 46/2015)
_EMPLOYEE_RATE = Fraction(2, 100)  # JHT employee 2%; BPU: 2% of declared income
_PERIOD = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def round_half_up(x: Fraction | Decimal) -> int:
    """Round ``x`` to the nearest integer, halves away from zero.

    ``2.5 -> 3`` and ``-2.5 -> -3`` (like :data:`decimal.ROUND_HALF_UP`): negatives mirror
    positives. Amounts are never negative in practice; the symmetric choice keeps
    ``round_half_up(-x) == -round_half_up(x)``.
    """
    return _round_ratio(*Fraction(x).as_integer_ratio())


def _round_ratio(numerator: int, denominator: int) -> int:
    """``round_half_up(numerator / denominator)`` in integers (``denominator > 0``)."""
    magnitude = (2 * abs(numerator) + denominator) // (2 * denominator)
    return magnitude if numerator >= 0 else -magnitude


def jht_parts(wage: int, segment: str) -> tuple[int, int]:
    """The monthly JHT ``(employer_part, employee_part)`` for a reported wage, whole Rupiah.

    ``PU`` (wage earners): 3.7% and 2%. ``BPU`` (non-wage earners): 0 and 2% of declared
    income. ``PMI`` (migrant workers) is not in DOMAIN.md: treated like BPU (flagged).
    Raises :class:`ValueError` for a negative wage or an unknown segment.
    """
    if wage < 0:
        raise ValueError(f"negative wage: {wage}")
    employee = round_half_up(wage * _EMPLOYEE_RATE)
    if segment == "PU":
        return round_half_up(wage * _EMPLOYER_RATE), employee
    if segment in {"BPU", "PMI"}:  # PMI: assumption, not in DOMAIN.md (same as BPU)
        return 0, employee
    raise ValueError(f"unknown segment: {segment!r}")


def jht_share(segment: str) -> Fraction:
    """The JHT contribution as a share of the wage: 5.7% for ``PU``, 2% for ``BPU`` and
    ``PMI`` (the rates :func:`jht_parts` applies). Raises :class:`ValueError` for an unknown
    segment."""
    employer, employee = jht_parts(1000, segment)
    return Fraction(employer + employee, 1000)


class Posted(NamedTuple):
    """One month's posted JHT contribution: period ``"YYYY-MM"``, both parts, paid date.

    A named tuple rather than a frozen dataclass: a balance reads hundreds of them, and a
    tuple is built several times faster."""

    period: str
    employer_part: int
    employee_part: int
    paid_on: date


@dataclass(frozen=True, slots=True)
class BalanceFigures:
    """A JHT balance as of a date, in whole Rupiah.

    ``total == employer_part + employee_part + development``. ``development_by_year`` holds
    every completed year from the first contribution year on (0 for pending years);
    ``pending_years`` are completed years without a configured rate, ascending.
    """

    employer_part: int
    employee_part: int
    development: int
    total: int
    last_period: str | None
    pending_years: tuple[int, ...]
    development_by_year: Mapping[int, int]


@lru_cache(maxsize=4096)
def _year_and_weight(period: str) -> tuple[int, int]:
    """``"YYYY-MM"`` as ``(year, 12 - month)``; raises :class:`ValueError` when malformed."""
    match = _PERIOD.fullmatch(period)
    if match is None:
        raise ValueError(f"malformed period: {period!r}")
    return int(match[1]), 12 - int(match[2])


@dataclass(slots=True)
class _YearSums:
    """A year's contributions: their sum and ``sum(c * (12 - m))`` (twelfths, integers)."""

    amount: int = 0
    weighted_twelfths: int = 0


def _last_completed_year(as_of: date) -> int:
    """The newest year whose 31 December is on or before ``as_of``."""
    return as_of.year if (as_of.month, as_of.day) == (12, 31) else as_of.year - 1


def _development(rate_percent: Decimal, opening: int, sums: _YearSums) -> int:
    """``round_half_up(r * (opening + weighted / 12))`` with ``r = rate_percent / 100``."""
    numerator, denominator = rate_percent.as_integer_ratio()
    base_twelfths = 12 * opening + sums.weighted_twelfths
    return _round_ratio(numerator * base_twelfths, denominator * 1200)


def compute_balance(
    contributions: Iterable[Posted], rates: Mapping[int, Decimal], as_of: date
) -> BalanceFigures:
    """The JHT balance on ``as_of`` from posted contributions and yearly rates (percent).

    Contributions count when ``paid_on <= as_of``. Rates are assumed non-negative. One pass
    over the contributions, then one over the years from the first contribution year to the
    last completed one.
    """
    employer = employee = 0
    last_period: str | None = None
    years: dict[int, _YearSums] = {}
    for c in contributions:
        if c.paid_on > as_of:
            continue
        year, weight = _year_and_weight(c.period)
        employer += c.employer_part
        employee += c.employee_part
        amount = c.employer_part + c.employee_part
        sums = years.get(year) or years.setdefault(year, _YearSums())
        sums.amount += amount
        sums.weighted_twelfths += amount * weight
        if last_period is None or c.period > last_period:
            last_period = c.period
    by_year, pending = _develop(years, rates, _last_completed_year(as_of))
    development = sum(by_year.values())
    return BalanceFigures(
        employer_part=employer,
        employee_part=employee,
        development=development,
        total=employer + employee + development,
        last_period=last_period,
        pending_years=pending,
        development_by_year=MappingProxyType(by_year),
    )


def _develop(
    years: Mapping[int, _YearSums], rates: Mapping[int, Decimal], last_completed: int
) -> tuple[dict[int, int], tuple[int, ...]]:
    """Development per completed year (compounding) and the years pending a rate."""
    by_year: dict[int, int] = {}
    pending: list[int] = []
    if not years:
        return by_year, ()
    opening = 0
    empty = _YearSums()
    for year in range(min(years), last_completed + 1):
        sums = years.get(year, empty)
        rate = rates.get(year)
        if rate is None:
            development = 0
            if opening > 0 or sums.amount > 0:
                pending.append(year)
        else:
            development = _development(rate, opening, sums)
        by_year[year] = development
        opening += sums.amount + development
    return by_year, tuple(pending)

"""Seed data of the reference balance service: the published development rates, and demo
members, employers and contributions for the embedded default database.

The demo NIKs follow the real layout ``PP KK CC DDMMYY SSSS`` (40 added to the day for women), so
registration can be tried end to end without real personal data. The phone numbers and
addresses are fictitious (``example.com``). The contributions are generated deterministically:
a wage rises by a fixed percentage each January (rounded half up to thousands), and each month
is paid on the 10th of the next month. Siti's employer did not pay 2026-09, so "did my employer
pay this month?" has a gap to show; Dewi has an older, second KPJ under the same NIK.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

from balance.rules import jht_parts, round_half_up
from storage.models import Contribution, Employer, Member, MemberStatus, Segment

DEFAULT_RATES: Mapping[int, Decimal] = MappingProxyType({
    2016: Decimal("7.19"),
    2017: Decimal("7.82"),
    2018: Decimal("6.26"),
    2019: Decimal("6.06"),
    2020: Decimal("5.63"),  # one source says 5.59 (DOMAIN.md): override with an import if needed
})
"""The published yearly JHT development rates in percent (DOMAIN.md); later years come from an
import (``--rates``)."""

DEMO_RATES: Mapping[int, Decimal] = MappingProxyType({
    # DEMO VALUES, NOT OFFICIAL FIGURES: DOMAIN.md has no confirmed rate after 2020. They are
    # seeded only with the demo members (the embedded default), so that the demo balance shows
    # the realistic case: every year configured but the last completed one (2025), which the
    # balance then names as not included. Production imports the real rates (``--rates``).
    2021: Decimal("5.50"),
    2022: Decimal("5.50"),
    2023: Decimal("5.75"),
    2024: Decimal("6.00"),
})
"""Made-up development rates for 2021-2024, for the demo database only (never official)."""

DEMO_EMPLOYERS: tuple[Employer, ...] = (
    Employer(npp="12345678", name="PT Maju Bersama"),
    Employer(npp="23456789", name="PT Sinar Terang"),
    Employer(npp="34567890", name="CV Karya Mandiri"),
    Employer(npp="45678901", name="PT Lama Jaya"),
)

DEMO_MEMBERS: tuple[Member, ...] = (
    Member(kpj="12345678901", nik="3171014501900001", name="Siti Rahayu",
           birth_date=date(1990, 1, 5), phone="+6281234567890", email="siti@example.com",
           segment=Segment.PU, status=MemberStatus.ACTIVE, employer_npp="12345678"),
    Member(kpj="23456789012", nik="3273021708850003", name="Budi Santoso",
           birth_date=date(1985, 8, 17), phone="+6285612345678", email="budi@example.com",
           segment=Segment.PU, status=MemberStatus.ACTIVE, employer_npp="23456789"),
    Member(kpj="34567890123", nik="3578031212920002", name="Agus Wijaya",
           birth_date=date(1992, 12, 12), phone="+6281398765432", email="",
           segment=Segment.BPU, status=MemberStatus.ACTIVE, employer_npp=None),
    Member(kpj="45678901234", nik="5171046303880004", name="Dewi Lestari",
           birth_date=date(1988, 3, 23), phone="+6287711223344", email="dewi@example.com",
           segment=Segment.PU, status=MemberStatus.INACTIVE, employer_npp="34567890"),
    Member(kpj="56789012345", nik="5171046303880004", name="Dewi Lestari",
           birth_date=date(1988, 3, 23), phone="+6287711223344", email="dewi@example.com",
           segment=Segment.PU, status=MemberStatus.INACTIVE, employer_npp="45678901"),
)
"""Five memberships of four people: two women (NIK day + 40), an own-account worker without
employer, and Dewi, inactive, with two KPJ (the older one from her first employer)."""


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _monthly(kpj: str, segment: Segment, first: tuple[int, int], last: tuple[int, int],
             wage: int, *, yearly_raise_percent: int = 0, raise_from: int = 0,
             missing: frozenset[str] = frozenset()) -> list[Contribution]:
    """One contribution per month from ``first`` to ``last`` (``(year, month)``, inclusive),
    paid on the 10th of the next month; from January of ``raise_from`` on, the wage rises by
    ``yearly_raise_percent`` each January, rounded half up to thousands of Rupiah."""
    rows: list[Contribution] = []
    year, month = first
    while (year, month) <= last:
        if month == 1 and yearly_raise_percent and year >= raise_from and (year, month) != first:
            raised = Fraction(wage * (100 + yearly_raise_percent), 100 * 1000)
            wage = round_half_up(raised) * 1000
        period = f"{year:04d}-{month:02d}"
        if period not in missing:
            employer_part, employee_part = jht_parts(wage, segment)
            paid_year, paid_month = _next_month(year, month)
            rows.append(Contribution(kpj=kpj, period=period, wage=wage,
                                     employer_part=employer_part, employee_part=employee_part,
                                     paid_on=date(paid_year, paid_month, 10)))
        year, month = _next_month(year, month)
    return rows


DEMO_CONTRIBUTIONS: tuple[Contribution, ...] = (
    *_monthly("12345678901", Segment.PU, (2016, 1), (2026, 10), 4_000_000,
              yearly_raise_percent=6, raise_from=2018, missing=frozenset({"2026-09"})),
    *_monthly("23456789012", Segment.PU, (2012, 3), (2026, 10), 7_500_000,
              yearly_raise_percent=5, raise_from=2013),
    *_monthly("34567890123", Segment.BPU, (2020, 1), (2026, 10), 3_000_000),
    *_monthly("45678901234", Segment.PU, (2014, 6), (2019, 12), 5_200_000),
    *_monthly("56789012345", Segment.PU, (2010, 1), (2014, 5), 3_100_000),
)
"""The demo members' monthly JHT contributions, oldest first per member."""

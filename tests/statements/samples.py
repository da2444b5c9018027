"""Statement data for tests and the benchmark, from the demo member Siti Rahayu (whose employer
did not pay 2026-09)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from balance.demo import DEMO_CONTRIBUTIONS
from statements.data import StatementData, StatementMonth

ISSUED_AT = datetime(2026, 11, 20, 3, 4, 5, tzinfo=UTC)
KEY = b"k" * 32
VERIFY_URL = "https://saldo.example.com/verify"


def _periods(first: str, last: str) -> list[str]:
    year, month = map(int, first.split("-"))
    out: list[str] = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def siti(first: str = "2025-11", last: str = "2026-10", *, name: str = "Siti Rahayu",
         development: int = 1_234_567) -> StatementData:
    """Siti's statement from ``first`` to ``last`` (``"YYYY-MM"``), 2026-09 unpaid."""
    posted = {c.period: c for c in DEMO_CONTRIBUTIONS if c.kpj == "12345678901"}
    months = tuple(
        StatementMonth(period=p, wage=posted[p].wage, employer_part=posted[p].employer_part,
                       employee_part=posted[p].employee_part, paid_on=posted[p].paid_on)
        if p in posted else
        StatementMonth(period=p, wage=0, employer_part=0, employee_part=0, paid_on=None)
        for p in _periods(first, last)
    )
    every = [c for c in posted.values() if c.period <= last]
    employer = sum(c.employer_part for c in every)
    employee = sum(c.employee_part for c in every)
    return StatementData(
        name=name, nik_masked="317101********01", kpj="12345678901", segment="PU",
        employer="PT Maju Bersama", period_label_from=first, period_label_to=last,
        months=months, balance_as_of=date(2026, 11, 20), employer_total=employer,
        employee_total=employee, development=development,
        balance_total=employer + employee + development)


def ten_years() -> StatementData:
    """120 months: 2016-11 to 2026-10."""
    return siti("2016-11", "2026-10")

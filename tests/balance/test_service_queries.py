"""The reference balance service's queries on SQLite and PostgreSQL, on rows inserted here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from balance.service import ReferenceBalanceService
from flows.ports import (
    BalanceServiceUnavailable,
    Contribution,
    Employer,
    JhtBalance,
    MemberSummary,
    PensionMonths,
)
from storage import models
from storage.db import create_engine

# Siti Contoh (PU) has two KPJs: ``OLD`` from 2016 and ``NEW`` from 2020, ``NEW`` being the
# smaller number, so "oldest first" cannot come from sorting the numbers.
NIK = "3171014101800001"
OLD, NEW = "11111111111", "11111111110"
BPU = "22222222222"  # own-account worker, no employer
EMPTY = "33333333333"  # PU without any contribution yet
UNKNOWN = "99999999999"
ACME = Employer(npp="11112222", name="PT Contoh Abadi")
SECOND = Employer(npp="33334444", name="PT Kedua Jaya")
ALL_NIKS = (NIK, "3273020101850002", "3578030101900003")

# (period, wage, employer_part, employee_part, paid_on) of ``OLD``: parts are 3.7% and 2%.
OLD_ROWS = (
    ("2016-11", 5_000_000, 185_000, 100_000, date(2016, 12, 10)),
    ("2016-12", 5_000_000, 185_000, 100_000, date(2017, 1, 10)),
    ("2017-06", 6_000_000, 222_000, 120_000, date(2017, 7, 10)),
    ("2018-03", 5_000_000, 185_000, 100_000, date(2018, 4, 10)),
    ("2019-01", 5_000_000, 185_000, 100_000, date(2019, 2, 10)),
    ("2019-05", 5_000_000, 185_000, 100_000, date(2019, 7, 10)),  # paid after 2019-06-30
)
RATES = {2016: Decimal("7.19"), 2017: Decimal("7.82"), 2018: Decimal("6.26")}


def _new_rows() -> Iterator[tuple[str, int, int, int, date]]:
    """30 months of ``NEW``: 2020-01 to 2022-06, 4,000,000 a month."""
    for index in range(30):
        year, month = 2020 + index // 12, index % 12 + 1
        paid = date(year + month // 12, month % 12 + 1, 10)
        yield f"{year}-{month:02d}", 4_000_000, 148_000, 80_000, paid


def _member(kpj: str, nik: str, segment: str, npp: str | None) -> dict[str, Any]:
    return {"kpj": kpj, "nik": nik, "name": "Siti Contoh", "birth_date": date(1980, 1, 1),
            "phone": "+6281200000001", "email": "siti@example.com", "segment": segment,
            "status": "active", "employer_npp": npp}


async def insert_sample(engine: AsyncEngine, rates: dict[int, Decimal] = RATES) -> None:
    """The members, employers and contributions above; the rates replace any seeded ones."""
    rows = [(OLD, *row) for row in OLD_ROWS] + [(NEW, *row) for row in _new_rows()]
    rows += [(BPU, f"2020-0{month}", 3_000_000, 0, 60_000, date(2020, month, 20))
             for month in (1, 2, 3)]
    keys = ("kpj", "period", "wage", "employer_part", "employee_part", "paid_on")
    async with engine.begin() as conn:
        await conn.execute(sa.insert(models.Employer), [
            {"npp": e.npp, "name": e.name} for e in (ACME, SECOND)])
        await conn.execute(sa.insert(models.Member), [
            _member(OLD, NIK, "PU", ACME.npp), _member(NEW, NIK, "PU", SECOND.npp),
            _member(BPU, ALL_NIKS[1], "BPU", None), _member(EMPTY, ALL_NIKS[2], "PU", ACME.npp)])
        await conn.execute(sa.insert(models.Contribution), [dict(zip(keys, row, strict=True))
                                                             for row in rows])
        await conn.execute(sa.delete(models.DevelopmentRate))
        if rates:
            await conn.execute(sa.insert(models.DevelopmentRate), [
                {"year": year, "rate_percent": rate} for year, rate in rates.items()])


@pytest.fixture
async def engine(engine: AsyncEngine) -> AsyncEngine:
    """The migrated engine holding the sample rows."""
    await insert_sample(engine)
    return engine


@contextmanager
def counting_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements executed on ``engine`` inside the block."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_imported_member_balance_equals_the_hand_computation(engine: AsyncEngine) -> None:
    # Contribution c = employer + employee part; weight (12 - m) / 12 for period month m.
    # 2016: opening 0; 2016-11: 285,000 * 1/12 = 23,750; 2016-12: weight 0.
    #       development = round_half_up(0.0719 * 23,750 = 1,707.625) = 1,708
    # 2017: opening = 285,000 * 2 + 1,708 = 571,708; 2017-06: 342,000 * 6/12 = 171,000
    #       development = round_half_up(0.0782 * 742,708 = 58,079.7656) = 58,080
    # 2018: opening = 571,708 + 342,000 + 58,080 = 971,788; 2018-03: 285,000 * 9/12 = 213,750
    #       development = round_half_up(0.0626 * 1,185,538 = 74,214.6788) = 74,215
    # 2019 is running on 2019-06-30: no development. 2019-01 (paid 2019-02-10) counts;
    # 2019-05 was paid on 2019-07-10, after the as-of date, so it does not.
    # employer = 185,000 * 4 + 222,000 = 962,000; employee = 100,000 * 4 + 120,000 = 520,000
    # development = 1,708 + 58,080 + 74,215 = 134,003; total = 1,616,003
    service = ReferenceBalanceService(engine)
    with counting_statements(engine) as statements:
        balance = await service.jht_balance(OLD, date(2019, 6, 30))
    assert balance == JhtBalance(kpj=OLD, as_of=date(2019, 6, 30), employer_part=962_000,
                                 employee_part=520_000, development=134_003, total=1_616_003,
                                 last_period="2019-01", pending_years=())
    assert len(statements) <= 2


async def test_years_without_a_rate_are_pending_and_credit_nothing(engine: AsyncEngine) -> None:
    await insert_rates_only(engine, {2016: Decimal("7.19")})
    balance = await ReferenceBalanceService(engine).jht_balance(OLD, date(2019, 6, 30))
    assert balance is not None
    assert balance.pending_years == (2017, 2018)
    assert balance.development == 1_708  # 2016 only
    assert balance.total == 962_000 + 520_000 + 1_708


async def insert_rates_only(engine: AsyncEngine, rates: dict[int, Decimal]) -> None:
    """Replace the development rates."""
    async with engine.begin() as conn:
        await conn.execute(sa.delete(models.DevelopmentRate))
        await conn.execute(sa.insert(models.DevelopmentRate), [
            {"year": year, "rate_percent": rate} for year, rate in rates.items()])


async def test_balance_before_any_payment_and_without_contributions(engine: AsyncEngine) -> None:
    service = ReferenceBalanceService(engine)
    early = await service.jht_balance(OLD, date(2016, 12, 1))
    assert early == JhtBalance(kpj=OLD, as_of=date(2016, 12, 1), employer_part=0,
                               employee_part=0, development=0, total=0, last_period=None,
                               pending_years=())
    empty = await service.jht_balance(EMPTY, date(2024, 1, 1))
    assert empty is not None and (empty.total, empty.last_period) == (0, None)


async def test_member_summary_lists_every_kpj_of_the_nik_oldest_first(
        engine: AsyncEngine) -> None:
    service = ReferenceBalanceService(engine)
    with counting_statements(engine) as statements:
        summary = await service.member_summary(NEW)
    assert summary == MemberSummary(kpj=NEW, name="Siti Contoh", status="active", segment="PU",
                                    employer=SECOND, kpjs=(OLD, NEW))
    assert len(statements) <= 2
    own_account = await service.member_summary(BPU)
    assert own_account is not None
    assert (own_account.employer, own_account.kpjs, own_account.segment) == (None, (BPU,), "BPU")


async def test_contributions_are_paged_newest_first(engine: AsyncEngine) -> None:
    service = ReferenceBalanceService(engine)
    with counting_statements(engine) as statements:
        first = await service.contributions(NEW)
    assert len(statements) <= 2
    assert first is not None
    assert (first.page, first.page_size, first.pages, first.total) == (1, 12, 3, 30)
    assert first.years == (2022, 2021, 2020)
    assert [item.period for item in first.items] == [f"2022-{m:02d}" for m in range(6, 0, -1)] + [
        f"2021-{m:02d}" for m in range(12, 6, -1)]
    assert first.items[0] == Contribution(period="2022-06", wage=4_000_000, employer_part=148_000,
                                          employee_part=80_000, paid_on=date(2022, 7, 10),
                                          employer=SECOND)
    last = await service.contributions(NEW, page=3)
    assert last is not None
    assert [item.period for item in last.items] == [f"2020-{m:02d}" for m in range(6, 0, -1)]
    beyond = await service.contributions(NEW, page=4)
    assert beyond is not None and beyond.items == () and beyond.pages == 3


async def test_contributions_filtered_by_year(engine: AsyncEngine) -> None:
    service = ReferenceBalanceService(engine)
    page = await service.contributions(NEW, year=2021, page=2, page_size=5)
    assert page is not None
    assert (page.year, page.pages, page.total, page.years) == (2021, 3, 12, (2022, 2021, 2020))
    assert [item.period for item in page.items] == [f"2021-{m:02d}" for m in range(7, 2, -1)]
    old = await service.contributions(OLD, year=2016)
    assert old is not None
    assert [item.period for item in old.items] == ["2016-12", "2016-11"]
    assert old.years == (2019, 2018, 2017, 2016)
    none = await service.contributions(OLD, year=2015)
    assert none is not None and (none.total, none.pages, none.items) == (0, 0, ())
    own_account = await service.contributions(BPU)
    assert own_account is not None and {item.employer for item in own_account.items} == {None}
    empty = await service.contributions(EMPTY)
    assert empty is not None and (empty.total, empty.pages, empty.years) == (0, 0, ())


async def test_contribution_periods_are_the_whole_record_oldest_first_in_one_query(
        engine: AsyncEngine) -> None:
    service = ReferenceBalanceService(engine, immediate=False)  # every query on ``engine``
    with counting_statements(engine) as statements:
        periods = await service.contribution_periods(OLD)
    assert len(statements) == 1
    assert periods == tuple(row[0] for row in OLD_ROWS)
    new = await service.contribution_periods(NEW)
    assert new is not None and len(new) == 30 and (new[0], new[-1]) == ("2020-01", "2022-06")
    assert await service.contribution_periods(EMPTY) == ()
    assert await service.contribution_periods(UNKNOWN) is None


async def test_contributions_refuse_out_of_range_paging(engine: AsyncEngine) -> None:
    service = ReferenceBalanceService(engine)
    for page, page_size in ((0, 12), (1, 0), (1, 101)):
        with pytest.raises(ValueError, match="out of range"):
            await service.contributions(OLD, page=page, page_size=page_size)


async def test_pension_months(engine: AsyncEngine) -> None:
    service = ReferenceBalanceService(engine)
    assert await service.pension_months(NEW) == PensionMonths(
        kpj=NEW, months=30, first_period="2020-01", last_period="2022-06")
    assert await service.pension_months(OLD) == PensionMonths(
        kpj=OLD, months=6, first_period="2016-11", last_period="2019-05")
    assert await service.pension_months(BPU) == PensionMonths(
        kpj=BPU, months=0, first_period=None, last_period=None)
    assert await service.pension_months(EMPTY) == PensionMonths(
        kpj=EMPTY, months=0, first_period=None, last_period=None)


async def test_unknown_kpj_is_none_everywhere(engine: AsyncEngine) -> None:
    service = ReferenceBalanceService(engine)
    assert await service.member_summary(UNKNOWN) is None
    assert await service.jht_balance(UNKNOWN, date(2024, 1, 1)) is None
    assert await service.contributions(UNKNOWN) is None
    assert await service.pension_months(UNKNOWN) is None
    assert await service.contribution_periods(UNKNOWN) is None
    await service.ping()


async def test_database_down_is_balance_service_unavailable(
        unreachable_engine: AsyncEngine) -> None:
    service = ReferenceBalanceService(unreachable_engine)
    for call in (service.member_summary(OLD), service.jht_balance(OLD, date(2024, 1, 1)),
                 service.contributions(OLD, year=2020), service.pension_months(OLD),
                 service.contribution_periods(OLD), service.ping()):
        with pytest.raises(BalanceServiceUnavailable) as raised:
            await call
        assert OLD not in str(raised.value)


async def test_missing_tables_are_balance_service_unavailable(tmp_path: Any) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/unmigrated.db")
    try:
        with pytest.raises(BalanceServiceUnavailable):
            await ReferenceBalanceService(engine).jht_balance(OLD, date(2024, 1, 1))
    finally:
        await engine.dispose()

"""The reference balance service's identity check and demo members, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from balance.demo import (
    DEFAULT_RATES,
    DEMO_CONTRIBUTIONS,
    DEMO_EMPLOYERS,
    DEMO_MEMBERS,
    DEMO_RATES,
)
from balance.rules import jht_parts
from balance.service import ReferenceBalanceService, seed_default_rates, seed_demo_members
from flows.ports import BalanceServiceUnavailable, IdentityMatch

WOMEN = {"Siti Rahayu", "Dewi Lestari"}
SITI, BUDI = DEMO_MEMBERS[0], DEMO_MEMBERS[1]


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text(f"SELECT COUNT(*) FROM {table}")) or 0)


async def test_seeding_is_idempotent(engine: AsyncEngine) -> None:
    assert await seed_demo_members(engine) == 5
    counts = {table: await _count(engine, table)
              for table in ("employer", "member", "contribution", "development_rate")}
    assert counts == {"employer": 4, "member": 5, "contribution": len(DEMO_CONTRIBUTIONS),
                      "development_rate": len(DEFAULT_RATES) + len(DEMO_RATES)}
    assert await seed_demo_members(engine) == 0
    assert await seed_default_rates(engine) == 0
    assert {table: await _count(engine, table) for table in counts} == counts


async def test_seeding_keeps_configured_rates(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text("INSERT INTO development_rate (year, rate_percent) "
                                   "VALUES (2020, 5.59)"))
    assert await seed_default_rates(engine) == len(DEFAULT_RATES) - 1
    async with engine.connect() as conn:
        rates = dict((await conn.execute(sa.text(
            "SELECT year, rate_percent FROM development_rate"))).all())
    assert Decimal(str(rates[2020])) == Decimal("5.59")
    assert Decimal(str(rates[2016])) == Decimal("7.19")


async def test_demo_rates_come_only_with_the_demo_and_leave_the_last_year_unconfigured(
        engine: AsyncEngine) -> None:
    assert await seed_default_rates(engine) == len(DEFAULT_RATES)
    assert await _count(engine, "development_rate") == len(DEFAULT_RATES)  # no demo values
    await seed_demo_members(engine)
    assert not set(DEMO_RATES) & set(DEFAULT_RATES)
    service = ReferenceBalanceService(engine)
    siti = await service.jht_balance("12345678901", date(2026, 12, 3))
    assert siti is not None and siti.pending_years == (2025,)
    dewi = await service.jht_balance("45678901234", date(2026, 12, 3))
    assert dewi is not None and dewi.pending_years == (2014, 2015, 2025)


async def test_seeding_adds_contributions_to_members_seeded_before_them(
        engine: AsyncEngine) -> None:
    await seed_demo_members(engine)
    async with engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM contribution"))
    assert await seed_demo_members(engine) == 0
    assert await _count(engine, "contribution") == len(DEMO_CONTRIBUTIONS)


def test_demo_contributions() -> None:
    by_kpj: dict[str, list[str]] = {}
    segments = {member.kpj: member.segment for member in DEMO_MEMBERS}
    for c in DEMO_CONTRIBUTIONS:
        by_kpj.setdefault(c.kpj, []).append(c.period)
        assert (c.employer_part, c.employee_part) == jht_parts(c.wage, segments[c.kpj])
        year, month = int(c.period[:4]), int(c.period[5:])
        assert c.paid_on == (date(year + 1, 1, 10) if month == 12 else date(year, month + 1, 10))
        assert c.wage % 1000 == 0
    siti = by_kpj["12345678901"]
    assert (siti[0], siti[-1], len(siti)) == ("2016-01", "2026-10", 129)
    assert "2026-09" not in siti and "2026-08" in siti
    assert (by_kpj["23456789012"][0], by_kpj["23456789012"][-1]) == ("2012-03", "2026-10")
    assert (by_kpj["34567890123"][0], by_kpj["34567890123"][-1]) == ("2020-01", "2026-10")
    assert (by_kpj["45678901234"][0], by_kpj["45678901234"][-1]) == ("2014-06", "2019-12")
    assert (by_kpj["56789012345"][0], by_kpj["56789012345"][-1]) == ("2010-01", "2014-05")
    wages = {c.period: c.wage for c in DEMO_CONTRIBUTIONS if c.kpj == "12345678901"}
    assert (wages["2017-12"], wages["2018-01"], wages["2019-01"]) == (4_000_000, 4_240_000,
                                                                     4_494_000)
    budi = {c.period: c.wage for c in DEMO_CONTRIBUTIONS if c.kpj == "23456789012"}
    assert (budi["2012-12"], budi["2013-01"], budi["2014-01"]) == (7_500_000, 7_875_000,
                                                                   8_269_000)
    assert {c.employer_part for c in DEMO_CONTRIBUTIONS if c.kpj == "34567890123"} == {0}
    assert {m.employer_npp for m in DEMO_MEMBERS} - {None} == {e.npp for e in DEMO_EMPLOYERS}


async def test_the_right_triple_matches_every_demo_member(engine: AsyncEngine) -> None:
    await seed_demo_members(engine)
    service = ReferenceBalanceService(engine)
    for member in DEMO_MEMBERS:
        match = await service.verify_identity(member.nik, member.kpj, member.birth_date)
        assert match == IdentityMatch(kpj=member.kpj, name=member.name, phone=member.phone,
                                      email=member.email)


async def test_any_single_wrong_field_gives_none(engine: AsyncEngine) -> None:
    await seed_demo_members(engine)
    service = ReferenceBalanceService(engine)
    wrong = [
        (BUDI.nik, SITI.kpj, SITI.birth_date),
        (SITI.nik[:-1] + "9", SITI.kpj, SITI.birth_date),
        ("３１７１０１４５０１９００００１", SITI.kpj, SITI.birth_date),
        (SITI.nik, BUDI.kpj, SITI.birth_date),
        (SITI.nik, "99999999999", SITI.birth_date),
        (SITI.nik, SITI.kpj, SITI.birth_date + timedelta(days=1)),
        (SITI.nik, SITI.kpj, date(2090, 1, 5)),  # the NIK's DDMMYY, another century
    ]
    for nik, kpj, birth_date in wrong:
        assert await service.verify_identity(nik, kpj, birth_date) is None


def test_demo_niks_encode_their_birth_dates() -> None:
    assert len(DEMO_MEMBERS) == 5
    assert len({member.nik for member in DEMO_MEMBERS}) == 4  # Dewi has two KPJ
    for member in DEMO_MEMBERS:
        assert member.nik.isdigit() and len(member.nik) == 16
        assert member.kpj.isdigit() and len(member.kpj) == 11
        day, month, year = int(member.nik[6:8]), int(member.nik[8:10]), int(member.nik[10:12])
        assert (day > 40) == (member.name in WOMEN)
        born = member.birth_date
        assert (day - 40 if day > 40 else day, month, year) == (born.day, born.month,
                                                                born.year % 100)


async def test_unreachable_database_is_balance_service_unavailable(
        unreachable_engine: AsyncEngine) -> None:
    with pytest.raises(BalanceServiceUnavailable):
        await ReferenceBalanceService(unreachable_engine).verify_identity(SITI.nik, SITI.kpj,
                                                                          SITI.birth_date)
    with pytest.raises(BalanceServiceUnavailable) as raised:
        await seed_demo_members(unreachable_engine)
    assert SITI.nik not in str(raised.value)

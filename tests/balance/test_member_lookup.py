"""The reference balance service's identity check and demo members, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from balance.demo import DEMO_MEMBERS
from balance.service import ReferenceBalanceService, seed_demo_members
from flows.ports import BalanceServiceUnavailable, IdentityMatch
from storage.db import create_engine, migrate

WOMEN = {"Siti Rahayu", "Dewi Lestari"}
SITI, BUDI = DEMO_MEMBERS[0], DEMO_MEMBERS[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db')}/bot.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated engine, disposed after the test."""
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


async def test_seeding_is_idempotent(engine: AsyncEngine) -> None:
    assert await seed_demo_members(engine) == 4
    assert await seed_demo_members(engine) == 0


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
    assert len(DEMO_MEMBERS) == 4
    for member in DEMO_MEMBERS:
        assert member.nik.isdigit() and len(member.nik) == 16
        assert member.kpj.isdigit() and len(member.kpj) == 11
        day, month, year = int(member.nik[6:8]), int(member.nik[8:10]), int(member.nik[10:12])
        assert (day > 40) == (member.name in WOMEN)
        born = member.birth_date
        assert (day - 40 if day > 40 else day, month, year) == (born.day, born.month,
                                                                born.year % 100)


async def test_unreachable_database_is_balance_service_unavailable() -> None:
    engine = create_engine("postgresql://postgres@127.0.0.1:1/x")
    try:
        with pytest.raises(BalanceServiceUnavailable):
            await ReferenceBalanceService(engine).verify_identity(SITI.nik, SITI.kpj,
                                                                  SITI.birth_date)
        with pytest.raises(BalanceServiceUnavailable) as raised:
            await seed_demo_members(engine)
        assert SITI.nik not in str(raised.value)
    finally:
        await engine.dispose()

"""The in-process cache in front of a balance service: what it keeps, for how long, and what it
never keeps."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from balance.cache import CachedBalanceService
from balance.service import ReferenceBalanceService, seed_demo_members
from flows.ports import (
    BalanceServiceUnavailable,
    ContributionPage,
    IdentityMatch,
    JhtBalance,
    MemberSummary,
    PensionMonths,
)
from storage.db import create_engine, migrate
from tests.balance.test_client import FakeClock

SITI_KPJ = "12345678901"
SITI_NIK = "3171014501900001"
AS_OF = date(2026, 11, 20)


class Counting:
    """The reference service, counting calls; can be switched off like a failed database."""

    def __init__(self, inner: ReferenceBalanceService) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.down = False

    def _count(self, name: str) -> None:
        self.calls[name] += 1
        if self.down:
            raise BalanceServiceUnavailable(name)

    async def verify_identity(self, nik: str, kpj: str, birth_date: date) -> IdentityMatch | None:
        self._count("verify_identity")
        return await self.inner.verify_identity(nik, kpj, birth_date)

    async def member_summary(self, kpj: str) -> MemberSummary | None:
        self._count("member_summary")
        return await self.inner.member_summary(kpj)

    async def jht_balance(self, kpj: str, as_of: date) -> JhtBalance | None:
        self._count("jht_balance")
        return await self.inner.jht_balance(kpj, as_of)

    async def contributions(self, kpj: str, *, year: int | None = None, page: int = 1,
                            page_size: int = 12) -> ContributionPage | None:
        self._count("contributions")
        return await self.inner.contributions(kpj, year=year, page=page, page_size=page_size)

    async def contribution_periods(self, kpj: str) -> tuple[str, ...] | None:
        self._count("contribution_periods")
        return await self.inner.contribution_periods(kpj)

    async def pension_months(self, kpj: str) -> PensionMonths | None:
        self._count("pension_months")
        return await self.inner.pension_months(kpj)


@pytest.fixture
async def counting(tmp_path: Path) -> AsyncIterator[Counting]:
    database = create_engine(f"sqlite:///{tmp_path / 'cache.db'}")
    await migrate(database)
    await seed_demo_members(database)
    yield Counting(ReferenceBalanceService(database))
    await database.dispose()


async def test_answers_are_the_services_and_asked_once_within_the_ttl(
        counting: Counting) -> None:
    clock = FakeClock()
    cache = CachedBalanceService(counting, ttl=60, clock=clock)
    direct = await counting.inner.jht_balance(SITI_KPJ, AS_OF)
    for _ in range(3):
        assert await cache.jht_balance(SITI_KPJ, AS_OF) == direct
        assert await cache.member_summary(SITI_KPJ) == await counting.inner.member_summary(
            SITI_KPJ)
        assert await cache.pension_months(SITI_KPJ) is not None
        page = await cache.contributions(SITI_KPJ, year=2025, page=1, page_size=6)
        assert page is not None and page.year == 2025
        periods = await cache.contribution_periods(SITI_KPJ)
        assert periods == await counting.inner.contribution_periods(SITI_KPJ)
    assert counting.calls == Counter(jht_balance=1, member_summary=1, pension_months=1,
                                     contributions=1, contribution_periods=1)
    assert (cache.hits, cache.misses) == (10, 5)


async def test_every_argument_names_its_own_answer(counting: Counting) -> None:
    cache = CachedBalanceService(counting, ttl=60, clock=FakeClock())
    await cache.jht_balance(SITI_KPJ, AS_OF)
    await cache.jht_balance(SITI_KPJ, date(2026, 11, 21))  # another day
    await cache.contributions(SITI_KPJ, page=1)
    await cache.contributions(SITI_KPJ, page=2)
    await cache.contributions(SITI_KPJ, year=2024, page=1)
    assert counting.calls == Counter(jht_balance=2, contributions=3)


async def test_an_answer_is_asked_again_after_the_ttl(counting: Counting) -> None:
    clock = FakeClock()
    cache = CachedBalanceService(counting, ttl=60, clock=clock)
    await cache.member_summary(SITI_KPJ)
    clock.now += 59.9
    await cache.member_summary(SITI_KPJ)
    clock.now += 0.2
    await cache.member_summary(SITI_KPJ)
    assert counting.calls["member_summary"] == 2


async def test_unknown_kpjs_are_kept_too(counting: Counting) -> None:
    cache = CachedBalanceService(counting, ttl=60, clock=FakeClock())
    assert await cache.member_summary("99999999999") is None
    assert await cache.member_summary("99999999999") is None
    assert counting.calls["member_summary"] == 1


async def test_identity_checks_are_never_cached(counting: Counting) -> None:
    cache = CachedBalanceService(counting, ttl=60, clock=FakeClock())
    for _ in range(2):
        match = await cache.verify_identity(SITI_NIK, SITI_KPJ, date(1990, 1, 5))
        assert match is not None and match.kpj == SITI_KPJ
    assert counting.calls["verify_identity"] == 2


async def test_failures_are_not_kept(counting: Counting) -> None:
    cache = CachedBalanceService(counting, ttl=60, clock=FakeClock())
    counting.down = True
    with pytest.raises(BalanceServiceUnavailable):
        await cache.jht_balance(SITI_KPJ, AS_OF)
    counting.down = False
    assert await cache.jht_balance(SITI_KPJ, AS_OF) is not None
    assert counting.calls["jht_balance"] == 2


async def test_the_least_recently_used_answer_goes_first(counting: Counting) -> None:
    cache = CachedBalanceService(counting, ttl=60, size=2, clock=FakeClock())
    await cache.member_summary("11111111111")
    await cache.member_summary("22222222222")
    await cache.member_summary("11111111111")  # used again: now the newest
    await cache.member_summary("33333333333")  # pushes out 2222...
    assert len(cache) == 2
    await cache.member_summary("11111111111")
    await cache.member_summary("22222222222")
    assert counting.calls["member_summary"] == 4


@pytest.mark.parametrize(("ttl", "size"), [(0, 10), (-1, 10), (60, 0)])
def test_settings_out_of_range_are_refused(ttl: float, size: int) -> None:
    with pytest.raises(ValueError, match="ttl"):
        CachedBalanceService(Counting.__new__(Counting), ttl=ttl, size=size)

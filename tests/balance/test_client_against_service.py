"""The HTTP client against the real reference service on loopback: for every demo KPJ and every
method, the client's answer equals the in-process :class:`ReferenceBalanceService`'s answer."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from balance.client import HttpBalanceService
from balance.demo import DEMO_MEMBERS
from flows.ports import BalanceServiceUnavailable
from tests.balance.conftest import TOKEN, Both

DEMO_KPJS = ("12345678901", "23456789012", "34567890123", "45678901234", "56789012345")
UNKNOWN = "99999999999"
AS_OF_DATES = (date(2016, 12, 31), date(2020, 6, 30), date(2021, 1, 1), date(2024, 12, 31),
               date.today(), date.today() + timedelta(days=400))


def test_the_demo_kpjs_are_the_seeded_ones() -> None:
    assert {member.kpj for member in DEMO_MEMBERS} == set(DEMO_KPJS)


@pytest.mark.parametrize("kpj", [*DEMO_KPJS, UNKNOWN])
async def test_summary_balance_and_pension_match(both: Both, kpj: str) -> None:
    summary = await both.remote.member_summary(kpj)
    assert summary == await both.local.member_summary(kpj)
    assert (summary is None) == (kpj == UNKNOWN)
    for as_of in AS_OF_DATES:
        assert await both.remote.jht_balance(kpj, as_of) == await both.local.jht_balance(
            kpj, as_of)
    assert await both.remote.pension_months(kpj) == await both.local.pension_months(kpj)
    periods = await both.remote.contribution_periods(kpj)
    assert periods == await both.local.contribution_periods(kpj)
    assert (periods is None) == (kpj == UNKNOWN)


@pytest.mark.parametrize("kpj", [*DEMO_KPJS, UNKNOWN])
async def test_every_contribution_page_matches(both: Both, kpj: str) -> None:
    first = await both.remote.contributions(kpj)
    assert first == await both.local.contributions(kpj)
    if first is None:
        assert kpj == UNKNOWN
        return
    for year in (None, *first.years, 1999):
        for page_size in (5, 12, 100):
            local = await both.local.contributions(kpj, year=year, page_size=page_size)
            assert local is not None
            for page in range(1, local.pages + 2):  # and one past the last page
                assert await both.remote.contributions(
                    kpj, year=year, page=page, page_size=page_size) == await (
                    both.local.contributions(kpj, year=year, page=page, page_size=page_size))


async def test_identity_checks_match(both: Both) -> None:
    for member in DEMO_MEMBERS:
        right = await both.remote.verify_identity(member.nik, member.kpj, member.birth_date)
        assert right is not None
        assert right == await both.local.verify_identity(member.nik, member.kpj,
                                                         member.birth_date)
        wrong_day = member.birth_date + timedelta(days=1)
        assert await both.remote.verify_identity(member.nik, member.kpj, wrong_day) is None
        assert await both.local.verify_identity(member.nik, member.kpj, wrong_day) is None
    siti, budi = DEMO_MEMBERS[0], DEMO_MEMBERS[1]
    assert await both.remote.verify_identity(budi.nik, siti.kpj, siti.birth_date) is None
    assert await both.remote.verify_identity(siti.nik, UNKNOWN, siti.birth_date) is None


async def test_a_wrong_token_is_unavailable(both: Both) -> None:
    async with HttpBalanceService(both.url, "not-" + TOKEN, retries=0) as client:
        with pytest.raises(BalanceServiceUnavailable, match="401"):
            await client.member_summary(DEMO_KPJS[0])

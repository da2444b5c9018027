"""The reference service's change feed (``alerts.ports.ContributionFeed``) on SQLite and
PostgreSQL: what the importer and the demo seed record, paging with the cursor, the missing
contributions of a month, the development rates, and the cache passing them through."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.ports import ChangesPage, MissingMembership, MissingPage, PostedContribution
from balance.cache import CachedBalanceService
from balance.demo import DEFAULT_RATES, DEMO_CONTRIBUTIONS, DEMO_RATES
from balance.importer import import_csv
from balance.rules import jht_parts
from balance.service import ReferenceBalanceService, seed_demo_members
from flows.ports import BalanceServiceUnavailable
from storage import models
from tests.balance.test_importer import CONTRIBUTIONS, files
from tests.balance.test_service_queries import insert_sample

PERIOD = "2026-09"


async def whole_feed(service: ReferenceBalanceService, since: str = "",
                     limit: int = 10_000) -> tuple[list[PostedContribution], str]:
    """Every change after ``since``, page by page, and the final cursor."""
    items: list[PostedContribution] = []
    while True:
        page = await service.contribution_changes(since, limit)
        items.extend(page.items)
        since = page.cursor
        if not page.more:
            return items, since


def keys(items: list[PostedContribution]) -> list[tuple[str, str]]:
    return [(item.kpj, item.period) for item in items]


async def change_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(
            sa.select(sa.func.count()).select_from(models.ContributionChange))).scalar_one())


# ------------------------------------------------------------------------ what is recorded


async def test_the_importer_records_each_contribution_in_write_order(
        engine: AsyncEngine, tmp_path: Path) -> None:
    await import_csv(engine, **files(tmp_path))
    service = ReferenceBalanceService(engine)
    items, cursor = await whole_feed(service)
    expected = [tuple(line.split(",")[:2]) for line in CONTRIBUTIONS.splitlines()[1:]]
    assert keys(items) == expected
    first = items[0]
    assert first == PostedContribution(
        kpj="11111111111", period="2019-07", segment="PU",
        employer_part=jht_parts(1_000_000, "PU")[0],
        employee_part=jht_parts(1_000_000, "PU")[1], paid_on=date(2019, 7, 28))
    assert {item.segment for item in items if item.kpj == "22222222222"} == {"BPU"}
    assert cursor == str(len(expected))


async def test_a_second_import_of_the_same_file_records_nothing(
        engine: AsyncEngine, tmp_path: Path) -> None:
    paths = files(tmp_path)
    await import_csv(engine, **paths)
    service = ReferenceBalanceService(engine)
    _, cursor = await whole_feed(service)
    await import_csv(engine, **paths)
    assert await change_count(engine) == 11
    assert await service.contribution_changes(cursor) == ChangesPage((), cursor, False)


async def test_a_changed_wage_records_one_change(engine: AsyncEngine, tmp_path: Path) -> None:
    await import_csv(engine, **files(tmp_path))
    service = ReferenceBalanceService(engine)
    _, cursor = await whole_feed(service)
    (tmp_path / "changed").mkdir()
    await import_csv(engine, **files(tmp_path / "changed",
                                     contributions=CONTRIBUTIONS.replace("3000000", "3500000")))
    page = await service.contribution_changes(cursor)
    assert page.items == (PostedContribution(
        kpj="22222222222", period="2020-01", segment="BPU", employer_part=0,
        employee_part=70_000, paid_on=date(2020, 2, 15)),)
    assert page.cursor == str(int(cursor) + 1) and not page.more


async def test_the_demo_seed_gives_a_feed_and_a_second_seed_adds_nothing(
        engine: AsyncEngine) -> None:
    await seed_demo_members(engine)
    service = ReferenceBalanceService(engine)
    items, cursor = await whole_feed(service, limit=100)
    assert keys(items) == [(row.kpj, row.period) for row in DEMO_CONTRIBUTIONS]
    assert cursor == str(len(DEMO_CONTRIBUTIONS))
    assert await seed_demo_members(engine) == 0
    assert await change_count(engine) == len(DEMO_CONTRIBUTIONS)
    assert (await service.contribution_changes(cursor)).items == ()


async def test_the_seed_records_only_the_contributions_it_inserts(engine: AsyncEngine) -> None:
    await seed_demo_members(engine)
    siti_october = ("12345678901", "2026-10")
    async with engine.begin() as conn:
        await conn.execute(sa.delete(models.ContributionChange))
        await conn.execute(sa.text("DELETE FROM contribution WHERE kpj = :kpj AND "
                                   "period = :period"),
                           {"kpj": siti_october[0], "period": siti_october[1]})
    await seed_demo_members(engine)
    items, _ = await whole_feed(ReferenceBalanceService(engine))
    assert keys(items) == [siti_october]


# ------------------------------------------------------------------------------ paging


async def test_pages_follow_the_cursor_and_more(engine: AsyncEngine, tmp_path: Path) -> None:
    await import_csv(engine, **files(tmp_path))
    service = ReferenceBalanceService(engine)
    everything, _ = await whole_feed(service)
    first = await service.contribution_changes("", 4)
    assert (len(first.items), first.cursor, first.more) == (4, "4", True)
    second = await service.contribution_changes(first.cursor, 4)
    third = await service.contribution_changes(second.cursor, 4)
    assert (second.cursor, second.more, third.cursor, third.more) == ("8", True, "11", False)
    assert [*first.items, *second.items, *third.items] == everything
    # A page that ends exactly at the last change is full: ``more``, then an empty page.
    exact = await service.contribution_changes("7", 4)
    assert (exact.cursor, exact.more) == ("11", True)
    assert await service.contribution_changes("11", 4) == ChangesPage((), "11", False)


async def test_a_cursor_at_the_end_returns_itself(engine: AsyncEngine) -> None:
    service = ReferenceBalanceService(engine)
    assert await service.contribution_changes() == ChangesPage((), "", False)
    assert await service.contribution_changes("0") == ChangesPage((), "0", False)
    assert await service.contribution_changes("999") == ChangesPage((), "999", False)


async def test_a_change_whose_contribution_is_gone_is_skipped_but_advances_the_cursor(
        engine: AsyncEngine, tmp_path: Path) -> None:
    await import_csv(engine, **files(tmp_path))
    async with engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM contribution WHERE kpj = '33333333333'"))
    service = ReferenceBalanceService(engine)
    page = await service.contribution_changes("9", 2)
    assert keys(list(page.items)) == [("22222222222", "2020-01")]
    assert (page.cursor, page.more) == ("11", True)


async def test_bad_arguments_are_value_errors(engine: AsyncEngine) -> None:
    service = ReferenceBalanceService(engine)
    for since in ("x", "-1", "1.5", " 1", "1" * 19):
        with pytest.raises(ValueError):
            await service.contribution_changes(since)
    for limit in (0, -1, 10_001):
        with pytest.raises(ValueError):
            await service.contribution_changes("", limit)
        with pytest.raises(ValueError):
            await service.missing_contributions(PERIOD, limit=limit)
    for period in ("2026-13", "2026-9", "202609", "", "2026-00"):
        with pytest.raises(ValueError):
            await service.missing_contributions(period)
    for after in ("1234567890", "1234567890a"):
        with pytest.raises(ValueError):
            await service.missing_contributions(PERIOD, after=after)


# ------------------------------------------------------------------- missing contributions

# (kpj, segment, status, periods)
MISSING_CASES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("10000000001", "PU", "active", ("2026-07", "2026-08")),  # missing
    ("10000000002", "PU", "active", ("2026-08", "2026-09")),  # paid
    ("10000000003", "BPU", "active", ("2025-01",)),  # missing, long gap
    ("10000000004", "PMI", "active", ("2026-08",)),  # missing
    ("10000000005", "PU", "inactive", ("2026-08",)),  # inactive: not listed
    ("10000000006", "PU", "active", ("2026-10",)),  # nothing before the month: not listed
    ("10000000007", "PU", "active", ()),  # never contributed: not listed
    ("10000000008", "BPU", "active", ("2026-09",)),  # paid
    ("10000000009", "PU", "active", ("2026-01", "2026-10")),  # missing, paid after
)
MISSING = [MissingMembership("10000000001", "PU"), MissingMembership("10000000003", "BPU"),
           MissingMembership("10000000004", "PMI"), MissingMembership("10000000009", "PU")]


async def insert_missing_cases(engine: AsyncEngine) -> None:
    members = [{"kpj": kpj, "nik": f"31710141018{index:05d}", "name": "Anggota",
                "birth_date": date(1980, 1, 1), "phone": "+6281200000001", "email": "",
                "segment": segment, "status": status, "employer_npp": None}
               for index, (kpj, segment, status, _) in enumerate(MISSING_CASES)]
    contributions = [{"kpj": kpj, "period": period, "wage": 3_000_000, "employer_part": 0,
                      "employee_part": 60_000, "paid_on": date(2026, 11, 1)}
                     for kpj, _, _, periods in MISSING_CASES for period in periods]
    async with engine.begin() as conn:
        await conn.execute(sa.insert(models.Member), members)
        await conn.execute(sa.insert(models.Contribution), contributions)


async def test_missing_lists_active_memberships_with_an_earlier_contribution(
        engine: AsyncEngine) -> None:
    await insert_missing_cases(engine)
    service = ReferenceBalanceService(engine)
    assert await service.missing_contributions(PERIOD) == MissingPage(tuple(MISSING), None)
    earlier = await service.missing_contributions("2026-08")
    assert [item.kpj for item in earlier.items] == ["10000000003", "10000000009"]


async def test_missing_pages_by_kpj(engine: AsyncEngine) -> None:
    await insert_missing_cases(engine)
    service = ReferenceBalanceService(engine)
    first = await service.missing_contributions(PERIOD, limit=2)
    assert first == MissingPage(tuple(MISSING[:2]), "10000000003")
    second = await service.missing_contributions(PERIOD, after=first.after or "", limit=2)
    assert second == MissingPage(tuple(MISSING[2:]), "10000000009")
    assert await service.missing_contributions(PERIOD, after="10000000009",
                                               limit=2) == MissingPage((), None)
    middle = await service.missing_contributions(PERIOD, after="10000000002", limit=10)
    assert middle == MissingPage(tuple(MISSING[1:]), None)


async def test_the_demo_has_sitis_missing_september(engine: AsyncEngine) -> None:
    await seed_demo_members(engine)
    page = await ReferenceBalanceService(engine).missing_contributions(PERIOD)
    assert page == MissingPage((MissingMembership("12345678901", "PU"),), None)


# --------------------------------------------------------------------------------- rates


async def test_development_rates_are_every_configured_year(engine: AsyncEngine) -> None:
    service = ReferenceBalanceService(engine)
    assert await service.development_rates() == {}
    await seed_demo_members(engine)
    assert await service.development_rates() == {**DEFAULT_RATES, **DEMO_RATES}
    await insert_sample(engine)  # replaces the rates with its own three
    assert await service.development_rates() == {2016: Decimal("7.19"), 2017: Decimal("7.82"),
                                                 2018: Decimal("6.26")}


async def test_a_failing_database_is_unavailable(unreachable_engine: AsyncEngine) -> None:
    service = ReferenceBalanceService(unreachable_engine, immediate=False)
    with pytest.raises(BalanceServiceUnavailable, match="contribution changes"):
        await service.contribution_changes()
    with pytest.raises(BalanceServiceUnavailable, match="missing contributions"):
        await service.missing_contributions(PERIOD)
    with pytest.raises(BalanceServiceUnavailable, match="development rates"):
        await service.development_rates()


# --------------------------------------------------------------------------------- cache


async def test_the_cache_passes_the_feed_through_uncached(engine: AsyncEngine,
                                                          tmp_path: Path) -> None:
    service = ReferenceBalanceService(engine)
    cached = CachedBalanceService(service)
    assert await cached.contribution_changes() == ChangesPage((), "", False)
    await import_csv(engine, **files(tmp_path))
    assert await cached.contribution_changes("", 3) == await service.contribution_changes("", 3)
    assert (await cached.contribution_changes()).cursor == "11"
    assert await cached.missing_contributions("2020-04") == await (
        service.missing_contributions("2020-04"))
    assert await cached.development_rates() == await service.development_rates()
    assert len(cached) == 0 and cached.hits == cached.misses == 0


async def test_the_cache_refuses_a_feed_its_service_does_not_offer() -> None:
    class NoFeed:
        pass

    cached = CachedBalanceService(NoFeed())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="NoFeed"):
        await cached.contribution_changes()

"""The planning pass over a fake feed, directory and cursors, onto the in-process queue."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from datetime import date
from decimal import Decimal

import pytest

from alerts.planner import AlertPolicy, Planner, missing_periods, rate_text, read_ahead
from alerts.ports import MissingMembership
from alerts.queue_memory import MemoryAlertQueue
from alerts.queues import ChannelQueues
from app.metrics import Metrics
from domain.alerts import AlertJob, AlertKind
from domain.gaps import Period
from tests.alerts.fakes import FakeCursors, FakeDirectory, FakeFeed, at

TODAY = date(2026, 12, 3)
NOW = at("2026-12-03T03:00:00")


class World:
    """A planner with its fakes and a queue."""

    def __init__(self, policy: AlertPolicy | None = None) -> None:
        self.feed = FakeFeed()
        self.directory = FakeDirectory()
        self.cursors = FakeCursors()
        self.queue = MemoryAlertQueue(b"test-secret")
        self.metrics = Metrics()
        self.planner = Planner(feed=self.feed, directory=self.directory, cursors=self.cursors,
                               queue=self.queue, policy=policy, metrics=self.metrics)

    async def jobs(self) -> list[AlertJob]:
        """Every job on the queue, in order (handed out to read them)."""
        return [d.job for d in await self.queue.receive("reader", 10_000, 0)]


@pytest.fixture
def world() -> World:
    return World()


async def test_posted_one_job_per_chat_and_contribution(world: World) -> None:
    world.directory.add("telegram", "1", ["11"])
    world.directory.add("whatsapp", "62811", ["11", "22"])
    world.directory.add("telegram", "3", ["33"], kinds=["missing"])  # not for posted
    world.feed.post("11", "2026-10", date(2026, 11, 10))
    world.feed.post("22", "2026-10", date(2026, 11, 12), segment="BPU", employer=0,
                    employee=36_800)
    world.feed.post("33", "2026-10", date(2026, 11, 12))
    world.feed.post("44", "2026-10", date(2026, 11, 12))  # nobody subscribed

    report = await world.planner.plan(TODAY, NOW)

    assert report.new == {("posted", "telegram"): 1, ("posted", "whatsapp"): 2}
    assert report.total == 3
    assert report.already == 0
    jobs = await world.jobs()
    assert AlertJob("telegram", "1", AlertKind.POSTED, "2026-10", "11", "PU", 250_046,
                    135_160) in jobs
    assert AlertJob("whatsapp", "62811", AlertKind.POSTED, "2026-10", "22", "BPU", 0,
                    36_800) in jobs
    assert world.cursors.values["posted"] == "4"
    assert world.metrics.value("bot_alerts_total", kind="posted", channel="whatsapp",
                               outcome="planned") == 2
    assert report.lines() == ["posted telegram: planned 1", "posted whatsapp: planned 2",
                              "already planned before: 0"]


async def test_jobs_go_to_their_channels_queue() -> None:
    queues = ChannelQueues(lambda channel: MemoryAlertQueue(b"test-secret"))
    world = World()
    planner = Planner(feed=world.feed, directory=world.directory, cursors=world.cursors,
                      queue=queues)
    world.directory.add("telegram", "1", ["11"])
    world.directory.add("whatsapp", "62811", ["11"])
    world.feed.post("11", "2026-10", date(2026, 11, 10))

    report = await planner.plan(TODAY, NOW)

    assert report.new == {("posted", "telegram"): 1, ("posted", "whatsapp"): 1}
    assert await queues.of("telegram").depth() == 1
    assert await queues.of("whatsapp").depth() == 1


async def test_only_fresh_contributions_are_announced(world: World) -> None:
    world.directory.add("telegram", "1", ["11"])
    world.feed.post("11", "2025-01", date(2025, 2, 10))  # a first feed's old history
    world.feed.post("11", "2026-09", date(2026, 10, 18))  # 46 days ago: stale
    world.feed.post("11", "2026-10", date(2026, 10, 19))  # 45 days ago: fresh

    await world.planner.plan(TODAY, NOW)

    assert [job.period for job in await world.jobs()] == ["2026-10"]
    assert world.cursors.values["posted"] == "3"  # the stale ones are passed, not replayed


async def test_the_feed_is_read_page_by_page_from_the_cursor() -> None:
    world = World(AlertPolicy(page=2))
    world.directory.add("telegram", "1", ["11", "22", "33"])
    for kpj in ("11", "22", "33"):
        world.feed.post(kpj, "2026-11", date(2026, 12, 1))

    report = await world.planner.plan(TODAY, NOW)
    assert report.new[("posted", "telegram")] == 3
    assert world.feed.changes_calls == 2
    assert world.cursors.values["posted"] == "3"

    world.feed.post("11", "2026-10", date(2026, 11, 30))
    report = await world.planner.plan(TODAY, NOW)
    assert report.new == {("posted", "telegram"): 1}  # only what came after the cursor
    assert len(await world.jobs()) == 4


async def test_a_replayed_page_plans_nothing_twice(world: World) -> None:
    world.directory.add("telegram", "1", ["11"])
    world.feed.post("11", "2026-11", date(2026, 12, 1))
    await world.planner.plan(TODAY, NOW)

    del world.cursors.values["posted"]  # a crash between enqueue and cursor
    report = await world.planner.plan(TODAY, NOW)

    assert report.new == {}
    assert report.already == 1
    assert len(await world.jobs()) == 1
    assert report.lines()[0] == "nothing new: planned 0"


async def test_a_dry_run_writes_nothing(world: World) -> None:
    world.directory.add("telegram", "1", ["11"])
    world.feed.post("11", "2026-11", date(2026, 12, 1))
    world.feed.missing["2026-10"] = [MissingMembership("11", "PU")]
    world.feed.rates[2025] = Decimal("7.19")

    report = await world.planner.plan(TODAY, NOW, dry_run=True)

    assert report.new == {("posted", "telegram"): 1, ("missing", "telegram"): 1,
                          ("development", "telegram"): 1}
    assert {job.kind for job in report.jobs} == set(AlertKind)
    assert report.lines()[0].endswith("would plan 1")
    assert await world.queue.depth() == 0
    assert world.cursors.values == {}
    assert world.metrics.value("bot_alerts_total", kind="posted", channel="telegram",
                               outcome="planned") == 0

    report = await world.planner.plan(TODAY, NOW)  # the real pass still plans all of it
    assert sum(report.new.values()) == 3


def test_missing_months_window_and_grace() -> None:
    policy = AlertPolicy(grace_days=5, missing_months=3)
    assert [str(p) for p in missing_periods(TODAY, policy)] == ["2026-10", "2026-09",
                                                                "2026-08"]
    # October is due on 15 November: with 5 days of grace it is missing from the 21st on.
    assert missing_periods(date(2026, 11, 20), policy)[0] == Period(2026, 9)
    assert missing_periods(date(2026, 11, 21), policy)[0] == Period(2026, 10)
    assert missing_periods(date(2026, 11, 16), AlertPolicy(grace_days=0))[0] == Period(2026, 10)
    assert len(missing_periods(TODAY, AlertPolicy(missing_months=1))) == 1


async def test_missing_jobs_carry_the_segment_once_per_identity(world: World) -> None:
    world.directory.add("telegram", "siti", ["11"])
    world.directory.add("telegram", "budi", ["22"])
    world.directory.add("telegram", "ani", ["33"], kinds=["posted"])
    world.feed.missing["2026-09"] = [MissingMembership("11", "PU"),
                                     MissingMembership("22", "BPU"),
                                     MissingMembership("33", "PU")]
    world.feed.missing["2026-07"] = [MissingMembership("11", "PU")]  # outside the window

    report = await world.planner.plan(TODAY, NOW)

    assert world.feed.missing_asked == ["2026-10", "2026-09", "2026-08"]
    assert report.new == {("missing", "telegram"): 2}
    jobs = await world.jobs()
    assert AlertJob("telegram", "siti", AlertKind.MISSING, "2026-09", "11", "PU") in jobs
    assert AlertJob("telegram", "budi", AlertKind.MISSING, "2026-09", "22", "BPU") in jobs

    report = await world.planner.plan(date(2026, 12, 4), NOW)  # still missing the next day
    assert report.new == {}
    assert report.already == 2


async def test_missing_memberships_are_paged() -> None:
    world = World(AlertPolicy(page=2))
    kpjs = [f"{n:02d}" for n in range(5)]
    world.directory.add("telegram", "1", kpjs)
    world.feed.missing["2026-10"] = [MissingMembership(kpj, "PU") for kpj in kpjs]

    report = await world.planner.plan(TODAY, NOW)

    assert report.new == {("missing", "telegram"): 5}


async def test_development_once_a_year() -> None:
    world = World(AlertPolicy(page=2))
    world.directory.add("telegram", "1", ["11"])
    world.directory.add("telegram", "2", ["22"])
    world.directory.add("whatsapp", "3", ["33"])
    world.directory.add("whatsapp", "4", ["44"], kinds=["posted"])
    world.feed.rates = {2024: Decimal("6.08"), 2025: Decimal("7.19")}

    report = await world.planner.plan(TODAY, NOW)

    assert report.new == {("development", "telegram"): 2, ("development", "whatsapp"): 1}
    jobs = await world.jobs()
    assert {(job.period, job.rate) for job in jobs} == {("2025", "7.19")}
    assert world.cursors.values["development"] == "2025"

    report = await world.planner.plan(date(2026, 12, 4), NOW)
    assert report.new == {}
    assert report.already == 0  # not even asked: the cursor says the year is done


async def test_development_waits_for_last_years_rate(world: World) -> None:
    world.directory.add("telegram", "1", ["11"])
    world.feed.rates = {2024: Decimal("6.08")}

    report = await world.planner.plan(TODAY, NOW)

    assert report.new == {}
    assert "development" not in world.cursors.values


def test_rate_text() -> None:
    assert rate_text(Decimal("7.19")) == "7.19"
    assert rate_text(Decimal("7.50")) == "7.5"
    assert rate_text(Decimal("7")) == "7"


async def test_read_ahead_makes_the_next_item_while_the_current_one_is_handled() -> None:
    made: list[int] = []

    async def pages() -> AsyncGenerator[int, None]:
        for number in range(3):
            made.append(number)
            yield number

    seen: list[tuple[int, list[int]]] = []
    async for page in read_ahead(pages()):
        await asyncio.sleep(0)  # the handling of a page awaits (an enqueue)
        seen.append((page, list(made)))
    assert seen == [(0, [0, 1]), (1, [0, 1, 2]), (2, [0, 1, 2])]  # one ahead, never more


async def test_read_ahead_closes_its_source_when_the_caller_stops() -> None:
    closed = asyncio.Event()

    async def pages() -> AsyncGenerator[int, None]:
        try:
            for number in range(100):
                yield number
        finally:
            closed.set()

    async with contextlib.aclosing(read_ahead(pages())) as ahead:
        async for page in ahead:
            if page == 1:
                break
    assert closed.is_set()

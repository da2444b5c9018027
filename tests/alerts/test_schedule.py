"""The daily plan: once a day at its time, one process of many, catch-up, retry after a
failure."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time

import pytest

from alerts.planner import Planner, PlanReport
from alerts.quiet import JAKARTA
from alerts.schedule import BACKOFF, DailyPlan, planned_key
from storage.sessions import MemorySessionStore
from tests.alerts.fakes import FakeClock


class CountingPlanner(Planner):
    """Records the days it planned; fails while ``failures`` is positive."""

    def __init__(self) -> None:  # no ports: plan is replaced
        self.days: list[date] = []
        self.failures = 0

    async def plan(self, today: date, now: datetime, *, dry_run: bool = False) -> PlanReport:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the balance service is down")
        self.days.append(today)
        return PlanReport()


def wib(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in Asia/Jakarta."""
    return datetime(year, month, day, hour, minute, tzinfo=JAKARTA)


def schedule(planner: Planner, kv: MemorySessionStore, clock: FakeClock) -> DailyPlan:
    return DailyPlan(planner, at=time(10, 0), kv=kv, clock=clock, sleep=clock.sleep)


async def test_plans_once_a_day_across_two_processes() -> None:
    kv, clock = MemorySessionStore(), FakeClock(wib(2026, 12, 3, 8, 0))
    planners = [CountingPlanner(), CountingPlanner()]
    plans = [schedule(planner, kv, clock) for planner in planners]

    # Two days, one tick of each process every minute or less.
    while clock.now < wib(2026, 12, 5, 9, 0):
        waits = [await plan.tick() for plan in plans]
        assert all(0 < wait <= 60 for wait in waits)
        clock.advance(min(waits))

    days = sorted(planners[0].days + planners[1].days)
    assert days == [date(2026, 12, 3), date(2026, 12, 4)]
    assert await kv.get(planned_key(date(2026, 12, 4))) is not None


async def test_nothing_before_the_time() -> None:
    kv, clock, planner = MemorySessionStore(), FakeClock(wib(2026, 12, 3, 9, 59)), \
        CountingPlanner()
    wait = await schedule(planner, kv, clock).tick()
    assert planner.days == []
    assert wait == 60


async def test_a_late_start_catches_up_at_once() -> None:
    kv, clock, planner = MemorySessionStore(), FakeClock(wib(2026, 12, 3, 15, 0)), \
        CountingPlanner()
    await schedule(planner, kv, clock).tick()
    assert planner.days == [date(2026, 12, 3)]


async def test_a_late_start_does_not_plan_a_day_planned_elsewhere() -> None:
    kv, clock, planner = MemorySessionStore(), FakeClock(wib(2026, 12, 3, 15, 0)), \
        CountingPlanner()
    await kv.put(planned_key(date(2026, 12, 3)), "2026-12-03T03:00:00+00:00", 3600)
    await schedule(planner, kv, clock).tick()
    assert planner.days == []


async def test_a_day_in_progress_elsewhere_is_looked_at_again() -> None:
    kv, clock, planner = MemorySessionStore(), FakeClock(wib(2026, 12, 3, 10, 0)), \
        CountingPlanner()
    await kv.put(planned_key(date(2026, 12, 3)), "planning", 60)  # its process then died
    plan = schedule(planner, kv, clock)
    assert await plan.tick() == BACKOFF
    assert planner.days == []
    await kv.delete(planned_key(date(2026, 12, 3)))  # the lease expired
    await plan.tick()
    assert planner.days == [date(2026, 12, 3)]


async def test_a_failure_is_logged_and_retried_after_a_backoff(
        caplog: pytest.LogCaptureFixture) -> None:
    kv, clock, planner = MemorySessionStore(), FakeClock(wib(2026, 12, 3, 10, 0)), \
        CountingPlanner()
    planner.failures = 1
    plan = schedule(planner, kv, clock)

    assert await plan.tick() == BACKOFF
    assert "ConnectionError" in caplog.text
    assert await kv.get(planned_key(date(2026, 12, 3))) is None  # the lease given back

    await plan.tick()
    assert planner.days == [date(2026, 12, 3)]


async def test_run_ticks_until_cancelled() -> None:
    kv, clock, planner = MemorySessionStore(), FakeClock(wib(2026, 12, 3, 9, 0)), \
        CountingPlanner()
    task = asyncio.create_task(schedule(planner, kv, clock).run())
    while clock.now < wib(2026, 12, 4, 11, 0):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert planner.days == [date(2026, 12, 3), date(2026, 12, 4)]

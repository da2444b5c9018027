"""The planning pass: the balance service's change feed turned into alert jobs on the queue.

One pass (daily, :mod:`alerts.schedule`; or ``run_bot.py notify``) plans the three kinds:

* posted: the feed's contributions since the stored cursor, paid within ``fresh_days`` (a
  replayed or first feed never announces old months), one job per subscribed chat and
  contribution; the cursor is stored after each page is enqueued (a crash in between replays
  the page, and the queue's marks drop the repeats);
* missing: the latest ``missing_months`` months whose due date plus ``grace_days`` is past,
  one job per subscribed chat of each active membership without that month's contribution;
  the marks make it once per identity, however many days the month stays missing;
* development: last year's rate, once a year, to every chat subscribed to it.

Everything streams page by page, and the reads overlap the writes: while a page's jobs are
enqueued, the next page of the feed is read and the page after the enqueued one has its chats
looked up (:func:`read_ahead`: at most one page ahead at each step). The pass holds at most
three pages (except a dry run's list, which the CLI prints).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol, TypeVar

from alerts.ports import (
    ChangesPage,
    ContributionFeed,
    CursorStore,
    PostedContribution,
    Recipient,
    SubscriberDirectory,
)
from app.metrics import Metrics
from domain.alerts import AlertJob, AlertKind
from domain.gaps import Period, due_date

__all__ = ["AlertPolicy", "JobSink", "PlanReport", "Planner", "missing_periods", "rate_text",
           "read_ahead"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

POSTED_CURSOR = AlertKind.POSTED.value
DEVELOPMENT_CURSOR = AlertKind.DEVELOPMENT.value


class JobSink(Protocol):
    """What the planner writes to: an :class:`~alerts.ports.AlertQueue`, or
    :class:`~alerts.queues.ChannelQueues` that files each job under its channel's queue."""

    async def enqueue(self, jobs: Sequence[AlertJob]) -> int:
        """Append the jobs never planned; how many were appended."""
        ...

    async def unplanned(self, jobs: Sequence[AlertJob]) -> list[AlertJob]:
        """The jobs :meth:`enqueue` would append (nothing is written)."""
        ...


@dataclass(frozen=True)
class AlertPolicy:
    """What a pass plans: the days after a due date before a month counts as missing, how
    old a posted contribution may be and still be announced, how many past months are
    checked for missing contributions, and the page size of every read."""

    grace_days: int = 5
    fresh_days: int = 45
    missing_months: int = 3
    page: int = 5000


@dataclass
class PlanReport:
    """What a pass planned: new jobs by (kind, channel), how many identities were planned
    before (dropped by the marks), and in a dry run the jobs themselves."""

    new: Counter[tuple[str, str]] = field(default_factory=Counter)
    already: int = 0
    jobs: list[AlertJob] = field(default_factory=list)
    dry_run: bool = False

    @property
    def total(self) -> int:
        """New jobs of every kind and channel."""
        return sum(self.new.values())

    def lines(self) -> list[str]:
        """The counts as the CLI prints them, one line per kind and channel."""
        verb = "would plan" if self.dry_run else "planned"
        lines = [f"{kind} {channel}: {verb} {count}"
                 for (kind, channel), count in sorted(self.new.items())]
        if not lines:
            lines.append(f"nothing new: {verb} 0")
        lines.append(f"already planned before: {self.already}")
        return lines


def missing_periods(today: date, policy: AlertPolicy) -> list[Period]:
    """The months checked for missing contributions on ``today``: the latest
    ``policy.missing_months`` whose due date plus the grace is before ``today``, newest
    first."""
    grace = timedelta(days=policy.grace_days)
    month = Period.of(today).shifted(-1)
    while due_date(month) + grace >= today:
        month = month.shifted(-1)
    return [month.shifted(-back) for back in range(policy.missing_months)]


def rate_text(rate: Decimal) -> str:
    """A development rate as the job carries it: ``Decimal("7.19")`` -> ``"7.19"``."""
    return format(rate.normalize(), "f")


async def read_ahead(items: AsyncGenerator[_T, None]) -> AsyncGenerator[_T, None]:
    """``items`` in order, the next one being made (in a task) while the caller handles the
    current one: at most one ahead. When the caller stops early, the one being made is
    cancelled and ``items`` closed."""

    async def following() -> _T:
        return await anext(items)

    upcoming: asyncio.Task[_T] | None = asyncio.create_task(following())
    try:
        while upcoming is not None:
            try:
                item = await upcoming
            except StopAsyncIteration:
                upcoming = None
                return
            upcoming = asyncio.create_task(following())
            yield item
    finally:
        if upcoming is not None:
            upcoming.cancel()
            with contextlib.suppress(BaseException):
                await upcoming
        await items.aclose()


@dataclass(frozen=True, slots=True)
class _Planned:
    """One page's jobs, and (posted) the feed's cursor after the page and whether it moved."""

    jobs: list[AlertJob]
    cursor: str = ""
    moved: bool = False


class Planner:
    """Plans alert jobs from the feed and the subscribed chats onto the queue."""

    def __init__(self, *, feed: ContributionFeed, directory: SubscriberDirectory,
                 cursors: CursorStore, queue: JobSink, policy: AlertPolicy | None = None,
                 metrics: Metrics | None = None) -> None:
        self._feed = feed
        self._directory = directory
        self._cursors = cursors
        self._queue = queue
        self._policy = policy or AlertPolicy()
        self._metrics = metrics

    async def plan(self, today: date, now: datetime, *, dry_run: bool = False) -> PlanReport:
        """Plan every kind for ``today`` (the date in Asia/Jakarta); ``now`` stamps the
        cursors. A dry run writes nothing (neither jobs nor cursors) and lists the jobs."""
        report = PlanReport(dry_run=dry_run)
        await self._posted(today, now, report)
        await self._missing(today, report)
        await self._development(today, now, report)
        return report

    async def _posted(self, today: date, now: datetime, report: PlanReport) -> None:
        oldest = today - timedelta(days=self._policy.fresh_days)
        since = await self._cursors.cursor(POSTED_CURSOR) or ""
        changes = read_ahead(self._changes(since))
        async with contextlib.aclosing(read_ahead(self._posted_planned(changes, oldest))) as pages:
            async for planned in pages:
                await self._put(planned.jobs, report)
                if planned.moved and not report.dry_run:  # only once its jobs are enqueued
                    await self._cursors.set_cursor(POSTED_CURSOR, planned.cursor, now)

    async def _changes(self, since: str) -> AsyncGenerator[tuple[ChangesPage, bool], None]:
        """The feed's pages from ``since``, each with whether its cursor moved."""
        while True:
            page = await self._feed.contribution_changes(since, self._policy.page)
            moved = page.cursor != since
            yield page, moved
            if not page.more or not moved:
                return
            since = page.cursor

    async def _posted_planned(self, pages: AsyncGenerator[tuple[ChangesPage, bool], None],
                              oldest: date) -> AsyncGenerator[_Planned, None]:
        """Each page's posted jobs: its fresh contributions for the chats subscribed."""
        async with contextlib.aclosing(pages):
            async for page, moved in pages:
                fresh: defaultdict[str, list[PostedContribution]] = defaultdict(list)
                for item in page.items:
                    if item.paid_on >= oldest:
                        fresh[item.kpj].append(item)
                jobs: list[AlertJob] = []
                if fresh:
                    recipients = await self._directory.subscribed(AlertKind.POSTED,
                                                                  list(fresh))
                    jobs = _posted_jobs(recipients, fresh)
                yield _Planned(jobs, page.cursor, moved)

    async def _missing(self, today: date, report: PlanReport) -> None:
        async with contextlib.aclosing(read_ahead(self._missing_planned(today))) as pages:
            async for planned in pages:
                await self._put(planned.jobs, report)

    async def _missing_planned(self, today: date) -> AsyncGenerator[_Planned, None]:
        """Each page's missing jobs, month by month."""
        for month in missing_periods(today, self._policy):
            period, after = str(month), ""
            while True:
                page = await self._feed.missing_contributions(period, after=after,
                                                              limit=self._policy.page)
                segments = {item.kpj: item.segment for item in page.items}
                if segments:
                    recipients = await self._directory.subscribed(AlertKind.MISSING,
                                                                  list(segments))
                    yield _Planned([AlertJob(r.channel, r.chat_id, AlertKind.MISSING, period,
                                             r.kpj, segments[r.kpj]) for r in recipients])
                if page.after is None or page.after == after:
                    break
                after = page.after

    async def _development(self, today: date, now: datetime, report: PlanReport) -> None:
        year = today.year - 1
        rates = await self._feed.development_rates()
        if year not in rates or await self._cursors.cursor(DEVELOPMENT_CURSOR) == str(year):
            return
        planned_pages = self._development_planned(str(year), rate_text(rates[year]))
        async with contextlib.aclosing(read_ahead(planned_pages)) as pages:
            async for planned in pages:
                await self._put(planned.jobs, report)
        if not report.dry_run:
            await self._cursors.set_cursor(DEVELOPMENT_CURSOR, str(year), now)

    async def _development_planned(self, year: str, rate: str) -> AsyncGenerator[_Planned, None]:
        """Each page of subscribed chats' development jobs."""
        after: Recipient | None = None
        while True:
            recipients = await self._directory.every_subscribed(AlertKind.DEVELOPMENT, after,
                                                                self._policy.page)
            yield _Planned([AlertJob(r.channel, r.chat_id, AlertKind.DEVELOPMENT, year,
                                     r.kpj, rate=rate) for r in recipients])
            if len(recipients) < self._policy.page:
                return
            after = recipients[-1]

    async def _put(self, jobs: Sequence[AlertJob], report: PlanReport) -> None:
        """Enqueue (or, in a dry run, list) one page of jobs, counted by kind and channel."""
        by_channel: defaultdict[tuple[str, str], list[AlertJob]] = defaultdict(list)
        for job in jobs:
            by_channel[job.kind.value, job.channel].append(job)
        for (kind, channel), group in by_channel.items():
            if report.dry_run:
                unplanned = await self._queue.unplanned(group)
                report.jobs.extend(unplanned)
                new = len(unplanned)
            else:
                new = await self._queue.enqueue(group)
            report.already += len(group) - new
            if not new:
                continue
            report.new[kind, channel] += new
            if self._metrics is not None and not report.dry_run:
                self._metrics.alerts.labels(kind, channel, "planned").inc(new)


def _posted_jobs(recipients: Iterable[Recipient],
                 fresh: dict[str, list[PostedContribution]]) -> list[AlertJob]:
    return [AlertJob(r.channel, r.chat_id, AlertKind.POSTED, item.period, r.kpj, item.segment,
                     item.employer_part, item.employee_part)
            for r in recipients for item in fresh.get(r.kpj, ())]

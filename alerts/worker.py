"""An alert worker: takes jobs from the queue and sends them to the members' chats.

Every ``serve`` process runs one or more workers on the shared queue. A worker holds every
job during quiet hours; reclaims the deliveries of a worker that died or hung (pending longer
than ``claim_after``); checks just before sending that the chat is still subscribed to the
kind and still linked to the membership (else skipped: not sent) and that the member has not
blocked the bot (else recorded as blocked, without spending a send); paces sends per platform
across processes; and finishes results in small groups as they come, so that a killed worker
leaves as few sent-but-unmarked alerts as possible.

At most ``concurrency`` sends are in flight; the alerts of one chat go one after another, in
queue order. A send that raises is retried (by a reclaim) until ``max_attempts``, then failed.
No chat id, KPJ or amount is ever logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from alerts.ports import AlertQueue, ChatState, Delivery, Pacer, Result, SubscriberDirectory
from alerts.quiet import QuietHours
from app.metrics import Metrics
from domain.alerts import AlertJob
from flows.ports import MemberOutbox, UnreachableChats
from flows.types import Reply, SessionKey

__all__ = ["AlertWorker", "DrainReport", "QueueGauges"]

log = logging.getLogger(__name__)

FINISH_GROUP = 32  # results finished together at most
FINISH_WAIT = 0.02  # seconds a result waits for others before it is finished alone
GAUGE_EVERY = 5.0  # seconds between refreshes of the queue gauges
QUIET_CHUNK = 60.0  # longest sleep during quiet hours (the clock is checked again after it)
RETRY_AFTER = 1.0  # seconds before the loop tries again after the store failed
DRAIN_BLOCK = 0.05  # how long drain waits for new jobs before it stops


class QueueGauges(Protocol):
    """What the queue gauges show: an :class:`~alerts.ports.AlertQueue`, or
    :class:`~alerts.queues.ChannelQueues` for every channel's together."""

    async def depth(self) -> int:
        """Jobs enqueued and not finished."""
        ...

    async def oldest_age(self, now: float) -> float:
        """Seconds since the oldest unfinished job was enqueued."""
        ...


@dataclass
class DrainReport:
    """What :meth:`AlertWorker.drain` did: results by :class:`Result`, and ``held``, the jobs
    left on the queue because of quiet hours."""

    counts: Counter[Result] = field(default_factory=Counter)
    held: int = 0

    @property
    def sent(self) -> int:
        """Alerts delivered."""
        return self.counts[Result.SENT]

    @property
    def skipped(self) -> int:
        """Alerts dropped: unsubscribed, unlinked or erased since planning."""
        return self.counts[Result.SKIPPED]

    @property
    def blocked(self) -> int:
        """Alerts whose chat could not be reached (blocked the bot)."""
        return self.counts[Result.BLOCKED]

    @property
    def failed(self) -> int:
        """Alerts given up after the allowed attempts."""
        return self.counts[Result.FAILED]


class _Finisher:
    """Collects results and finishes them on the queue in groups of at most ``FINISH_GROUP``
    or after ``FINISH_WAIT`` seconds, whichever comes first."""

    def __init__(self, queue: AlertQueue, metrics: Metrics | None) -> None:
        self._queue = queue
        self._metrics = metrics
        self._pending: list[tuple[Delivery, Result]] = []
        self._timer: asyncio.Task[None] | None = None

    async def add(self, delivery: Delivery, result: Result) -> None:
        """Queue one result; finish the group when it is full."""
        self._pending.append((delivery, result))
        if len(self._pending) >= FINISH_GROUP:
            await self.flush()
        elif self._timer is None:
            self._timer = asyncio.create_task(self._later())

    async def _later(self) -> None:
        await asyncio.sleep(FINISH_WAIT)
        self._timer = None
        try:
            await self.flush()
        except Exception as exc:  # kept pending: the next flush tries again
            log.warning("could not finish alert results: %s", type(exc).__name__)

    async def flush(self) -> None:
        """Finish every pending result now; on failure they stay pending and it raises."""
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        outcomes, self._pending = self._pending, []
        if not outcomes:
            return
        try:
            await self._queue.finish(outcomes)
        except BaseException:
            self._pending[:0] = outcomes
            raise
        if self._metrics is not None:
            for delivery, result in outcomes:
                job = delivery.job
                self._metrics.alerts.labels(job.kind.value, job.channel, result.value).inc()


class AlertWorker:
    """Sends the queue's alert jobs; see the module's docstring. ``gauges`` is what the
    queue gauges show (default: this worker's queue; with one queue per channel, pass
    :class:`~alerts.queues.ChannelQueues` so that the workers of two channels agree).
    ``still_true`` says, just before sending, whether the alert still holds (a month planned
    as missing may have been paid since, say during quiet hours): when it does not, the alert
    is skipped; when it raises (the balance service is down), it is tried again later.
    ``unreachable`` names, once per batch, the chats known not to take messages (a member
    who blocked the bot): their alerts are recorded as blocked and not sent; when it raises,
    the batch is sent as if none were (a refused send records the block all the same)."""

    def __init__(self, *, queue: AlertQueue, directory: SubscriberDirectory,
                 outbox: MemberOutbox, render: Callable[[AlertJob, str], list[Reply]],
                 consumer: str, clock: Callable[[], datetime] | None = None,
                 quiet: QuietHours | None = None, pacer: Pacer | None = None,
                 metrics: Metrics | None = None, batch: int = 100, concurrency: int = 64,
                 claim_after: float = 120.0, max_attempts: int = 5,
                 gauges: QueueGauges | None = None,
                 still_true: Callable[[AlertJob], Awaitable[bool]] | None = None,
                 unreachable: UnreachableChats | None = None) -> None:
        self._queue = queue
        self._gauges = queue if gauges is None else gauges
        self._directory = directory
        self._outbox = outbox
        self._render = render
        self._consumer = consumer
        self._clock = clock or (lambda: datetime.now(UTC))
        self._quiet = quiet
        self._pacer = pacer
        self._metrics = metrics
        self._batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._claim_after = claim_after
        self._max_attempts = max_attempts
        self._finisher = _Finisher(queue, metrics)
        self._still_true = still_true
        self._unreachable = unreachable

    async def run(self) -> None:
        """Send alerts until cancelled; a store failure is logged and retried."""
        reclaim_at = gauges_at = 0.0
        try:
            while True:
                try:
                    if (mono := time.monotonic()) >= gauges_at:
                        gauges_at = mono + GAUGE_EVERY
                        await self._refresh_gauges()
                    if (until := self._quiet_until()) is not None:
                        seconds = (until - self._clock()).total_seconds()
                        await asyncio.sleep(min(QUIET_CHUNK, max(seconds, 0.0)))
                        continue
                    if time.monotonic() >= reclaim_at:
                        reclaim_at = time.monotonic() + self._claim_after / 2
                        await self._reclaim_all(None)
                    deliveries = await self._queue.receive(self._consumer, self._batch, 1.0)
                    if deliveries:
                        await self._process(deliveries, None)
                except Exception as exc:
                    log.warning("alert worker: %s; retrying", type(exc).__name__)
                    await asyncio.sleep(RETRY_AFTER)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._finisher.flush())

    async def drain(self) -> DrainReport:
        """Send until nothing is left to receive or to reclaim now (or quiet hours begin:
        the jobs left are ``held``)."""
        report = DrainReport()
        while True:
            if self._quiet_until() is not None:
                report.held = await self._queue.depth()
                break
            deliveries = await self._queue.reclaim(self._consumer, self._claim_after,
                                                   self._batch)
            if not deliveries:
                deliveries = await self._queue.receive(self._consumer, self._batch,
                                                       DRAIN_BLOCK)
            if not deliveries:
                break
            await self._process(deliveries, report)
        await self._refresh_gauges()
        return report

    def _quiet_until(self) -> datetime | None:
        return None if self._quiet is None else self._quiet.until(self._clock())

    async def _reclaim_all(self, report: DrainReport | None) -> None:
        while deliveries := await self._queue.reclaim(self._consumer, self._claim_after,
                                                      self._batch):
            await self._process(deliveries, report)
            if len(deliveries) < self._batch:
                return

    async def _refresh_gauges(self) -> None:
        if self._metrics is None:
            return
        self._metrics.alert_queue_depth.set(await self._gauges.depth())
        self._metrics.alert_oldest_pending.set(
            await self._gauges.oldest_age(time.time()))  # the queue stamps jobs in real time

    async def _process(self, deliveries: Sequence[Delivery], report: DrainReport | None) -> None:
        """One batch: begin, read the chats' states once, send each chat's alerts in order
        (chats concurrently), finish the results as they come."""
        allowed = await self._queue.begin(self._consumer, deliveries)
        if not allowed:
            return
        by_chat: dict[SessionKey, list[Delivery]] = {}
        for delivery in allowed:
            by_chat.setdefault(delivery.job.key, []).append(delivery)
        states = await self._directory.states(list(by_chat))
        gone = await self._blocked(list(by_chat))
        try:
            async with asyncio.TaskGroup() as group:
                for key, chat_deliveries in by_chat.items():
                    group.create_task(self._chat(chat_deliveries, states.get(key),
                                                 key in gone, report))
        finally:
            await self._finisher.flush()

    async def _blocked(self, keys: list[SessionKey]) -> set[SessionKey]:
        """The chats of the batch known not to take messages; none when that is unknown."""
        if self._unreachable is None:
            return set()
        try:
            return await self._unreachable.unreachable(keys)
        except Exception as exc:
            log.warning("could not read which chats blocked the bot: %s", type(exc).__name__)
            return set()

    async def _chat(self, deliveries: list[Delivery], state: ChatState | None, blocked: bool,
                    report: DrainReport | None) -> None:
        """One chat's alerts of the batch, one after another; after a send that raised the
        rest are left for a later reclaim, so that they keep their order; after a send the
        platform refused (blocked), the rest are blocked too, not tried."""
        for delivery in deliveries:
            result = await self._one(delivery, state, blocked)
            if result is None:
                return
            blocked = blocked or result is Result.BLOCKED
            if report is not None:
                report.counts[result] += 1
            await self._finisher.add(delivery, result)

    async def _one(self, delivery: Delivery, state: ChatState | None,
                   blocked: bool) -> Result | None:
        """Send one alert; ``None`` when it raised and may be tried again."""
        job = delivery.job
        if state is None or job.kind.value not in state.kinds or job.kpj not in state.kpjs:
            return Result.SKIPPED
        if blocked:
            return Result.BLOCKED
        async with self._slots:
            try:
                if self._still_true is not None and not await self._still_true(job):
                    return Result.SKIPPED
                if self._pacer is not None:
                    await self._pacer.acquire(job.channel)
                replies = self._render(job, state.locale)
                sent = await self._outbox.deliver(job.key, replies)
            except Exception as exc:
                log.warning("a %s %s alert failed (attempt %d): %s", job.channel,
                            job.kind.value, delivery.attempts, type(exc).__name__)
                return Result.FAILED if delivery.attempts >= self._max_attempts else None
        return Result.SENT if sent else Result.BLOCKED

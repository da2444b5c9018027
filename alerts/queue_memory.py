"""The alert queue in this process (:class:`MemoryAlertQueue`): the embedded default and the
unit tests' queue, with :class:`alerts.queue_redis.RedisAlertQueue`'s behaviour.

Jobs, their pending hand-outs and the marks live in dicts; a job handed out and not finished
can be reclaimed after ``idle`` seconds on the monotonic clock, as a worker task may hang.
The marks are named as in Redis (:mod:`alerts.marks`) and kept for the life of the process.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from alerts.marks import DONE, PLANNED, SENDING, SENT_COUNTER, chat_tag, mark_field
from alerts.ports import Delivery, Result
from domain.alerts import AlertJob
from flows.types import SessionKey

__all__ = ["MemoryAlertQueue"]


@dataclass(slots=True)
class _Entry:
    job: AlertJob
    planned_at: float
    consumer: str = ""  # who it was last handed to
    handed_at: float = 0.0  # monotonic seconds of the last hand-out
    attempts: int = 0


class MemoryAlertQueue:
    """:class:`alerts.ports.AlertQueue` and :class:`flows.ports.AlertMarks` in this process.
    ``secret`` names the marks, as :class:`~alerts.queue_redis.RedisAlertQueue` does."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._entries: dict[str, _Entry] = {}  # by id, oldest first
        self._fresh: deque[str] = deque()  # ids never handed out, oldest first
        self._pending: dict[str, _Entry] = {}  # handed out and not finished
        self._marks: dict[str, dict[str, str]] = {}  # chat tag -> field -> mark
        self._last = (0, 0)  # the last id's milliseconds and sequence
        self._arrived = asyncio.Condition()

    def _mark(self, job: AlertJob) -> tuple[str, str]:
        return chat_tag(self._secret, job.key), mark_field(self._secret, job)

    def _next_id(self) -> str:
        ms, seq = int(time.time() * 1000), 0
        if ms <= self._last[0]:
            ms, seq = self._last[0], self._last[1] + 1
        self._last = (ms, seq)
        return f"{ms}-{seq}"

    async def enqueue(self, jobs: Sequence[AlertJob]) -> int:
        """See :meth:`RedisAlertQueue.enqueue`."""
        added = 0
        for job in jobs:
            tag, field = self._mark(job)
            marks = self._marks.setdefault(tag, {})
            if field in marks:
                continue
            job.encode()  # refuses a job Redis could not carry either
            marks[field] = PLANNED
            entry_id = self._next_id()
            self._entries[entry_id] = _Entry(job, int(entry_id.partition("-")[0]) / 1000)
            self._fresh.append(entry_id)
            added += 1
        if added:
            async with self._arrived:
                self._arrived.notify_all()
        return added

    async def unplanned(self, jobs: Sequence[AlertJob]) -> list[AlertJob]:
        """See :meth:`RedisAlertQueue.unplanned`."""
        fresh: list[AlertJob] = []
        seen: set[tuple[str, str]] = set()
        for job in jobs:
            tag, field = mark = self._mark(job)
            if field not in self._marks.get(tag, {}) and mark not in seen:
                seen.add(mark)
                fresh.append(job)
        return fresh

    async def receive(self, consumer: str, count: int, block: float) -> list[Delivery]:
        """See :meth:`RedisAlertQueue.receive`."""
        if not self._fresh and block > 0:
            async with self._arrived:
                try:
                    await asyncio.wait_for(self._arrived.wait_for(lambda: bool(self._fresh)),
                                           block)
                except TimeoutError:
                    return []
        handed: list[Delivery] = []
        while self._fresh and len(handed) < max(1, count):
            entry_id = self._fresh.popleft()
            if (entry := self._entries.get(entry_id)) is not None:
                handed.append(self._hand(entry_id, entry, consumer))
        return handed

    def _hand(self, entry_id: str, entry: _Entry, consumer: str) -> Delivery:
        entry.consumer, entry.handed_at = consumer, time.monotonic()
        entry.attempts += 1
        self._pending[entry_id] = entry
        return Delivery(entry_id, entry.job, entry.attempts, entry.planned_at)

    async def reclaim(self, consumer: str, idle: float, count: int) -> list[Delivery]:
        """See :meth:`RedisAlertQueue.reclaim`."""
        cutoff = time.monotonic() - max(0.0, idle)
        stale = sorted(((entry_id, entry) for entry_id, entry in self._pending.items()
                        if entry.handed_at <= cutoff), key=lambda item: _order(item[0]))
        return [self._hand(entry_id, entry, consumer)
                for entry_id, entry in stale[:max(1, count)]]

    async def begin(self, consumer: str, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """See :meth:`RedisAlertQueue.begin`."""
        allowed: list[Delivery] = []
        for delivery in deliveries:
            tag, field = self._mark(delivery.job)
            marks = self._marks.get(tag, {})
            mark = marks.get(field)
            if mark is not None and mark.startswith(DONE):
                self._remove(delivery.id)
                continue
            if mark is not None:
                marks[field] = SENDING + consumer
            allowed.append(delivery)
        return allowed

    async def finish(self, outcomes: Sequence[tuple[Delivery, Result]]) -> None:
        """See :meth:`RedisAlertQueue.finish`."""
        for delivery, result in outcomes:
            tag, field = self._mark(delivery.job)
            marks = self._marks.get(tag, {})
            mark = marks.get(field)
            if mark is not None and not mark.startswith(DONE):
                marks[field] = DONE + Result(result).value
                if result == Result.SENT:
                    marks[SENT_COUNTER] = str(int(marks.get(SENT_COUNTER, "0")) + 1)
            self._remove(delivery.id)

    def _remove(self, entry_id: str) -> None:
        self._entries.pop(entry_id, None)
        self._pending.pop(entry_id, None)

    async def depth(self) -> int:
        """See :meth:`RedisAlertQueue.depth`."""
        return len(self._entries)

    async def oldest_age(self, now: float) -> float:
        """See :meth:`RedisAlertQueue.oldest_age`."""
        first = next(iter(self._entries.values()), None)
        return 0.0 if first is None else max(0.0, now - first.planned_at)

    async def sent_count(self, key: SessionKey) -> int:
        """See :meth:`RedisAlertQueue.sent_count`."""
        return int(self._marks.get(chat_tag(self._secret, key), {}).get(SENT_COUNTER, "0"))

    async def forget(self, key: SessionKey) -> int:
        """See :meth:`RedisAlertQueue.forget`."""
        marks = self._marks.pop(chat_tag(self._secret, key), {})
        for entry_id in [entry_id for entry_id, entry in self._entries.items()
                         if (entry.job.channel, entry.job.chat_id) == (key.channel,
                                                                        key.chat_id)]:
            self._remove(entry_id)
        return len(marks) - (SENT_COUNTER in marks)


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)

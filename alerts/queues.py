"""One alert queue per channel, seen as one by the planner and the flows.

A process sends only on the channels it serves (a Telegram-only ``serve`` beside a
WhatsApp-only one), so each channel's jobs wait on a queue of their own and a worker reads its
channel's queue only: a job is never handed to a process that cannot send it. The planner
enqueues through :class:`ChannelQueues`, which files each job under its chat's channel; the
flows read and erase a chat's marks through it, on the chat's channel.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from alerts.ports import AlertQueue
from domain.alerts import AlertJob
from flows.types import SessionKey

__all__ = ["ChannelQueues"]


class ChannelQueues:
    """The queues of every channel, made on first use by ``make(channel)``."""

    def __init__(self, make: Callable[[str], AlertQueue],
                 channels: Sequence[str] = ("telegram", "whatsapp", "console")) -> None:
        self._make = make
        self._queues: dict[str, AlertQueue] = {}
        for channel in channels:
            self.of(channel)

    def of(self, channel: str) -> AlertQueue:
        """``channel``'s queue (what that channel's workers read)."""
        queue = self._queues.get(channel)
        if queue is None:
            queue = self._queues[channel] = self._make(channel)
        return queue

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels with a queue."""
        return tuple(self._queues)

    async def enqueue(self, jobs: Sequence[AlertJob]) -> int:
        """Each job on its channel's queue (:meth:`AlertQueue.enqueue`); how many were new."""
        appended = 0
        for channel, group in _by_channel(jobs).items():
            appended += await self.of(channel).enqueue(group)
        return appended

    async def unplanned(self, jobs: Sequence[AlertJob]) -> list[AlertJob]:
        """The jobs never planned (:meth:`AlertQueue.unplanned`), per channel."""
        found: list[AlertJob] = []
        for channel, group in _by_channel(jobs).items():
            found.extend(await self.of(channel).unplanned(group))
        return found

    async def depth(self) -> int:
        """Jobs waiting on every channel."""
        return sum([await queue.depth() for queue in self._queues.values()])

    async def oldest_age(self, now: float) -> float:
        """The oldest job's age over every channel."""
        return max([await queue.oldest_age(now) for queue in self._queues.values()],
                   default=0.0)

    async def sent_count(self, key: SessionKey) -> int:
        """Alerts sent to the chat (its marks live with its channel's queue)."""
        return await self.of(key.channel).sent_count(key)

    async def forget(self, key: SessionKey) -> int:
        """Erase the chat's marks (``/hapusdata``)."""
        return await self.of(key.channel).forget(key)


def _by_channel(jobs: Sequence[AlertJob]) -> dict[str, list[AlertJob]]:
    groups: dict[str, list[AlertJob]] = defaultdict(list)
    for job in jobs:
        groups[job.channel].append(job)
    return groups

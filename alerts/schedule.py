"""The daily planning pass inside ``serve``: once a day at ``ALERTS_PLAN_AT`` (Asia/Jakarta).

Every ``serve`` process runs a :class:`DailyPlan`; one of them plans each day. The day's key
(``alerts:planned:<date>``) is first taken as a lease with ``put_if_absent`` (so only one
process plans), then, once the pass succeeded, kept for 36 hours as done. A pass that fails
(the balance service or a store down) gives the lease back and is tried again after a
backoff; a process that died mid-pass leaves the lease to expire, and another process plans.
A process starting after the day's time, with the day not planned yet, plans at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from alerts.planner import Planner
from alerts.quiet import JAKARTA
from flows.ports import KeyValueStore

__all__ = ["DONE_TTL", "LEASE_TTL", "DailyPlan", "planned_key"]

log = logging.getLogger(__name__)

DONE_TTL = 36 * 3600.0  # a planned day's key outlives the day in every time zone
LEASE_TTL = 3600.0  # a pass in progress; expires when its process died
BACKOFF = 300.0  # seconds before a failed pass is tried again
WAIT_CHUNK = 60.0  # longest sleep (the clock is read again after it)
_LEASE = "planning"


def planned_key(day: date) -> str:
    """The key that says ``day``'s pass is done (or in progress)."""
    return f"alerts:planned:{day.isoformat()}"


class DailyPlan:
    """Runs ``planner`` once a day at ``at`` (local to ``tz``), one process of many."""

    def __init__(self, planner: Planner, *, at: time, kv: KeyValueStore,
                 clock: Callable[[], datetime], tz: ZoneInfo = JAKARTA,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 backoff: float = BACKOFF) -> None:
        self._planner = planner
        self._at = at
        self._kv = kv
        self._clock = clock
        self._tz = tz
        self._sleep = sleep
        self._backoff = backoff
        self._settled: date | None = None  # the last day planned (here or elsewhere)

    async def run(self) -> None:
        """Plan every day until cancelled."""
        while True:
            await self._sleep(await self.tick())

    async def tick(self) -> float:
        """Plan today when its time has come and it is not planned yet; returns the seconds
        to wait before the next tick."""
        now = self._clock()
        local = now.astimezone(self._tz)
        today = local.date()
        if local.time().replace(tzinfo=None) >= self._at and self._settled != today:
            try:
                if await self._plan(today, now):
                    self._settled = today
                else:  # another process holds today's lease: look again later
                    return self._backoff
            except Exception as exc:
                log.warning("the daily alert plan failed: %s; retrying in %.0f s",
                            type(exc).__name__, self._backoff)
                return self._backoff
        return min(WAIT_CHUNK, self._until_next(local))

    async def _plan(self, today: date, now: datetime) -> bool:
        """Plan ``today`` unless another process did or does; true when the day is done."""
        key = planned_key(today)
        if not await self._kv.put_if_absent(key, _LEASE, LEASE_TTL):
            value = await self._kv.get(key)  # done, in progress, or a lease just expired
            return value is not None and value != _LEASE
        try:
            report = await self._planner.plan(today, now)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._kv.delete(key)
            raise
        await self._kv.put(key, now.isoformat(), DONE_TTL)
        log.info("daily alert plan: %s", "; ".join(report.lines()))
        return True

    def _until_next(self, local: datetime) -> float:
        """Seconds from ``local`` to the next planning time (today's or tomorrow's)."""
        moment = datetime.combine(local.date(), self._at, tzinfo=self._tz)
        if moment <= local:
            moment += timedelta(days=1)
        return max((moment - local).total_seconds(), 0.0)

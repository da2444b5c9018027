"""Outbound pacing for the WhatsApp Cloud API: a per-number rate, per-recipient order, backoff.

Meta lets one business number send about 80 messages per second (up to 1,000 when upgraded)
and answers error 130429 beyond it; one recipient may get only a burst of messages and then
about one every six seconds (error 131056, the "pair rate limit"). Neither error says how long
to wait, so the wait doubles with each error in a row. Nothing is dropped: a message is sent,
or its error is raised after ``max_retries`` retries.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from channels.pacing import SlidingWindow

__all__ = ["Limit", "OutboundLimiter"]

T = TypeVar("T")
_MAX_PAUSES = 1024  # idle backoffs kept before the expired ones are swept


class Limit(StrEnum):
    """Which limit an error says was hit."""

    NUMBER = "number"  # 130429: the whole business number sends too fast
    RECIPIENT = "recipient"  # 131056: too many messages to one member


@dataclass
class _Lane:
    """One recipient: a FIFO lock, so waiting messages keep their order, and its backoff."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    paused_until: float = -math.inf
    strikes: int = 0


class OutboundLimiter:
    """Paces calls of one business number.

    * Per number: at most ``rate`` call starts in any one-second window (a used slot comes back
      exactly one window later), so bursts never exceed what Meta counts.
    * Per recipient: calls start strictly in the order :meth:`send` was called; other
      recipients are not held up, except by a number-wide backoff.
    * ``classify(exc)`` names the limit an error hit (``None``: not a rate limit, raised at
      once). A number limit pauses every recipient ``number_delay`` seconds, a recipient limit
      only that recipient ``recipient_delay`` seconds; each further error in a row doubles
      the pause, up to ``max_delay``; a success resets it.
    """

    def __init__(self, *, rate: float = 80.0,
                 classify: Callable[[BaseException], Limit | None],
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 number_delay: float = 1.0, recipient_delay: float = 6.0,
                 max_delay: float = 60.0, max_retries: int = 10) -> None:
        if rate <= 0 or max_retries < 0:
            raise ValueError("rate must be positive and max_retries not negative")
        self._number_window = SlidingWindow(rate, clock=clock, sleep=sleep)
        self._classify = classify
        self._clock = clock
        self._sleep = sleep
        self._delays = {Limit.NUMBER: number_delay, Limit.RECIPIENT: recipient_delay}
        self._max_delay = max_delay
        self._max_retries = max_retries
        self._number = _Lane()  # the whole number's backoff
        self._lanes: dict[str, _Lane] = {}
        self._pauses: dict[str, tuple[float, int]] = {}  # idle recipients still backing off

    @property
    def tracked_recipients(self) -> int:
        """Recipients with messages waiting or being sent."""
        return len(self._lanes)

    async def send(self, recipient: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call()`` for ``recipient`` when the limits allow, retrying on rate limits.

        ``call`` is invoked again for each retry, so it must build a fresh request each time.
        """
        lane = self._lanes.get(recipient)
        if lane is None:
            lane = self._lanes[recipient] = _Lane()
            lane.paused_until, lane.strikes = self._pauses.pop(recipient, (-math.inf, 0))
        lane.users += 1
        try:
            async with lane.lock:
                return await self._deliver(lane, call)
        finally:
            lane.users -= 1
            if not lane.users:
                self._retire(recipient, lane)

    def _retire(self, recipient: str, lane: _Lane) -> None:
        """Forget an idle recipient, keeping its backoff while it lasts."""
        del self._lanes[recipient]
        now = self._clock()
        if lane.paused_until > now:
            self._pauses[recipient] = (lane.paused_until, lane.strikes)
        if len(self._pauses) > _MAX_PAUSES:
            self._pauses = {r: p for r, p in self._pauses.items() if p[0] > now}

    async def _deliver(self, lane: _Lane, call: Callable[[], Awaitable[T]]) -> T:
        retries = 0
        while True:
            await self._wait_until(lane.paused_until)
            await self._number_window.acquire(lambda: self._number.paused_until)
            try:
                result = await call()
            except Exception as exc:
                limit = self._classify(exc)
                if limit is None or retries >= self._max_retries:
                    raise
                retries += 1
                self._back_off(self._number if limit is Limit.NUMBER else lane, limit)
                continue
            lane.strikes = 0
            self._number.strikes = 0
            return result

    def _back_off(self, lane: _Lane, limit: Limit) -> None:
        delay = min(self._max_delay, self._delays[limit] * 2 ** lane.strikes)
        lane.strikes += 1
        lane.paused_until = max(lane.paused_until, self._clock() + delay)

    async def _wait_until(self, deadline: float) -> None:
        while (now := self._clock()) < deadline:
            await self._sleep(deadline - now)

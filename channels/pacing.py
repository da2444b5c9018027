"""Pacing of a channel's outbound calls that any platform shares: a sliding window of starts.

A platform's own limiter (``channels.telegram.throttle.SendThrottle``,
``channels.whatsapp.limiter.OutboundLimiter``) adds its per-chat order and its retries around
:class:`SlidingWindow`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

__all__ = ["SlidingWindow"]


class SlidingWindow:
    """At most ``rate`` starts in any window of ``burst / rate`` seconds: a used slot comes back
    exactly one window after it was taken. Waiters are served first come, first served, and
    nobody starts before ``paused()`` (a 429's pause, which may grow while waiting)."""

    def __init__(self, rate: float, *, clock: Callable[[], float],
                 sleep: Callable[[float], Awaitable[None]]) -> None:
        self._burst = max(1, int(rate))
        self._window = self._burst / rate
        self._clock = clock
        self._sleep = sleep
        self._used: deque[float] = deque()  # start times of the calls still holding a slot
        self._lock = asyncio.Lock()

    def recent(self) -> int:
        """Calls started within the last window (the last second at most)."""
        now = self._clock()
        while self._used and self._used[0] + self._window <= now:
            self._used.popleft()
        return len(self._used)

    async def acquire(self, paused: Callable[[], float]) -> None:
        """Wait for a slot and take it."""
        async with self._lock:
            while True:
                now = self._clock()
                while self._used and self._used[0] + self._window <= now:
                    self._used.popleft()
                ready_at = paused()
                if len(self._used) >= self._burst:
                    ready_at = max(ready_at, self._used[0] + self._window)
                if ready_at <= now:
                    self._used.append(now)
                    return
                await self._sleep(ready_at - now)

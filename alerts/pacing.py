"""Platform pacing of alert sends (:class:`alerts.ports.Pacer`): across every process through
Redis (:class:`RedisPacer`), or within this one (:class:`MemoryPacer`).

A rate is sends per second on a channel (:data:`alerts.ports.RATE_DEFAULTS`); 0, or a channel
without a rate, is not paced (the benchmark measures the workers so). A rate under one counts as
one a second.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager

import redis.asyncio
from redis.exceptions import RedisError

from channels.pacing import SlidingWindow
from flows.ports import StoreUnavailable

__all__ = ["MemoryPacer", "RedisPacer"]

# KEYS: the channel's counter for this second; ARGV: the rate, milliseconds to the next second.
# 0 when the send fits; else how long to wait before trying again (the next second's counter).
_TAKE = """local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], 2000) end
if n <= tonumber(ARGV[1]) then return 0 end
return tonumber(ARGV[2])"""


@contextmanager
def _unavailable() -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"the alert pacing failed: {type(exc).__name__}") from exc


def _per_second(rates: Mapping[str, float], channel: str) -> int:
    """Sends a second allowed on ``channel``; 0: not paced."""
    rate = rates.get(channel, 0.0)
    return max(1, math.floor(rate)) if rate > 0 else 0


class RedisPacer:
    """At most ``rates[channel]`` sends a second across every process sharing the Redis: each
    send counts in ``{prefix}alerts:pace:<channel>:<epoch second>``; a send over the rate
    waits for the next second (by ``clock``) and tries again. Costs one round trip a send.
    The processes' clocks should agree (NTP): a process ahead counts in another second.
    Raises :class:`StoreUnavailable` when Redis fails."""

    def __init__(self, client: redis.asyncio.Redis, *, prefix: str = "bpjs:",
                 rates: Mapping[str, float],
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._prefix = f"{prefix}alerts:pace:"
        self._rates = dict(rates)
        self._clock = clock
        self._sleep = sleep
        self._take = client.register_script(_TAKE)

    async def acquire(self, channel: str) -> None:
        """Wait until one more send on ``channel`` fits under its rate, and count it."""
        limit = _per_second(self._rates, channel)
        if not limit:
            return
        while True:
            now = self._clock()
            second = math.floor(now)
            to_next = max(1, math.ceil((second + 1 - now) * 1000))
            with _unavailable():
                wait_ms = int(await self._take([f"{self._prefix}{channel}:{second}"],
                                               [limit, to_next]))
            if not wait_ms:
                return
            await self._sleep(wait_ms / 1000)


class MemoryPacer:
    """At most ``rates[channel]`` sends a second in this process (a sliding window of a
    second per channel, :class:`channels.pacing.SlidingWindow`)."""

    def __init__(self, rates: Mapping[str, float], *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._windows = {channel: SlidingWindow(limit, clock=clock, sleep=sleep)
                         for channel in rates if (limit := _per_second(rates, channel))}

    async def acquire(self, channel: str) -> None:
        """Wait until one more send on ``channel`` fits under its rate, and take it."""
        window = self._windows.get(channel)
        if window is not None:
            await window.acquire(_never_paused)


def _never_paused() -> float:
    return 0.0

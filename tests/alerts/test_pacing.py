"""Alert pacing (:mod:`alerts.pacing`): one budget per channel and second shared by every
process on one Redis, or within one process; no pacing at a rate of 0 or on a channel without
a rate.

Redis tests use their own key prefix and delete their keys afterwards (run them alone with
``TEST_REDIS_URL=redis://127.0.0.1:6379/11``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from redis.exceptions import RedisError

from alerts.pacing import MemoryPacer, RedisPacer
from flows.ports import StoreUnavailable
from tests.conftest import delete_prefixed


class FakeTime:
    """A clock that only moves when slept on; records each sleep."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
async def client(redis_url: str, unique_prefix: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A client like production's (strings, not bytes)."""
    made = redis.asyncio.from_url(redis_url, decode_responses=True)
    yield made
    await made.aclose()
    await delete_prefixed(redis_url, unique_prefix)


def pacers(client: redis.asyncio.Redis, prefix: str, fake: FakeTime,
           rate: float = 3) -> tuple[RedisPacer, RedisPacer]:
    """Two processes' pacers on one Redis and one (fake) clock."""
    return (RedisPacer(client, prefix=prefix, rates={"telegram": rate}, clock=fake.clock,
                       sleep=fake.sleep),
            RedisPacer(client, prefix=prefix, rates={"telegram": rate}, clock=fake.clock,
                       sleep=fake.sleep))


async def test_two_redis_pacers_share_one_budget(client: redis.asyncio.Redis,
                                                 unique_prefix: str) -> None:
    fake = FakeTime(1_000_000.25)
    first, second = pacers(client, unique_prefix, fake)
    await first.acquire("telegram")
    await second.acquire("telegram")
    await first.acquire("telegram")
    assert fake.sleeps == []  # three sends fit in this second
    await second.acquire("telegram")  # the fourth waits for the next second
    assert fake.sleeps == [pytest.approx(0.75)]
    assert fake.now == pytest.approx(1_000_001.0)
    await first.acquire("telegram")
    await first.acquire("telegram")
    await second.acquire("telegram")  # the next second's budget is spent too
    assert len(fake.sleeps) == 2 and fake.now == pytest.approx(1_000_002.0)


async def test_each_channel_has_its_own_budget(client: redis.asyncio.Redis,
                                               unique_prefix: str) -> None:
    fake = FakeTime(2_000_000.5)
    pacer = RedisPacer(client, prefix=unique_prefix, rates={"telegram": 1, "whatsapp": 1},
                       clock=fake.clock, sleep=fake.sleep)
    await pacer.acquire("telegram")
    await pacer.acquire("whatsapp")
    assert fake.sleeps == []
    await pacer.acquire("whatsapp")
    assert fake.sleeps == [pytest.approx(0.5)]


async def test_concurrent_sends_of_two_processes_stay_under_the_rate_each_second(
        client: redis.asyncio.Redis, unique_prefix: str) -> None:
    rate, sends = 10, 15
    both = [RedisPacer(client, prefix=unique_prefix, rates={"telegram": rate})
            for _ in range(2)]
    started: list[float] = []

    async def send(pacer: RedisPacer) -> None:
        await pacer.acquire("telegram")
        started.append(time.time())

    begun = time.monotonic()
    await asyncio.gather(*(send(both[n % 2]) for n in range(sends)))
    per_second = Counter(math.floor(at) for at in started)
    assert len(started) == sends and max(per_second.values()) <= rate
    assert time.monotonic() - begun < 1.5


async def test_no_pacing_at_rate_0_or_on_a_channel_without_a_rate() -> None:
    client = redis.asyncio.from_url("redis://127.0.0.1:1/0")  # never asked
    fake = FakeTime(3_000_000.0)
    try:
        pacer = RedisPacer(client, rates={"telegram": 0}, clock=fake.clock, sleep=fake.sleep)
        for _ in range(100):
            await pacer.acquire("telegram")
            await pacer.acquire("console")
    finally:
        await client.aclose()
    assert fake.sleeps == []


async def test_unreachable_redis_raises_store_unavailable() -> None:
    client = redis.asyncio.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await RedisPacer(client, rates={"telegram": 30}).acquire("telegram")
    finally:
        await client.aclose()
    assert isinstance(caught.value.__cause__, RedisError | OSError)


async def test_memory_pacer_keeps_to_the_rate_of_each_channel() -> None:
    fake = FakeTime(50.0)
    pacer = MemoryPacer({"telegram": 2, "whatsapp": 0}, clock=fake.clock, sleep=fake.sleep)
    for _ in range(100):
        await pacer.acquire("whatsapp")
        await pacer.acquire("console")
    await pacer.acquire("telegram")
    await pacer.acquire("telegram")
    assert fake.sleeps == []
    await pacer.acquire("telegram")
    assert fake.sleeps == [pytest.approx(1.0)]

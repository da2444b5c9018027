"""The alert worker on the in-process queue (and once on Redis): sends, skips, blocks, retries,
quiet hours, per-chat order and exactly-once with two workers."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta

import pytest

from alerts.ports import AlertQueue, Result
from alerts.queue_memory import MemoryAlertQueue
from alerts.queues import ChannelQueues
from alerts.quiet import JAKARTA, QuietHours
from alerts.worker import AlertWorker
from app.metrics import Metrics
from domain.alerts import AlertJob, AlertKind
from flows.ports import StoreUnavailable
from flows.types import Reply, SessionKey
from tests.alerts.fakes import FakeClock, FakeDirectory, FakeOutbox, render
from tests.conftest import delete_prefixed

DAY = datetime(2026, 12, 3, 10, 0, tzinfo=JAKARTA)
NIGHT = QuietHours.parse("21:00-07:00")


def posted(chat: str, period: str = "2026-10", kpj: str = "11",
           channel: str = "telegram") -> AlertJob:
    """A posted-contribution job."""
    return AlertJob(channel, chat, AlertKind.POSTED, period, kpj, "PU", 250_046, 135_160)


class World:
    """A queue, a directory, an outbox and a worker factory."""

    def __init__(self, queue: AlertQueue | None = None) -> None:
        self.queue = queue or MemoryAlertQueue(b"test-secret")
        self.directory = FakeDirectory()
        self.outbox = FakeOutbox()
        self.metrics = Metrics()
        self.clock = FakeClock(DAY)

    def worker(self, consumer: str = "w1", **options: object) -> AlertWorker:
        """A worker on this world's ports."""
        settings: dict[str, object] = {"clock": self.clock, "metrics": self.metrics,
                                       "quiet": NIGHT}
        settings.update(options)
        return AlertWorker(queue=self.queue, directory=self.directory, outbox=self.outbox,
                           render=render, consumer=consumer, **settings)  # type: ignore[arg-type]

    def sent_texts(self, chat: str) -> list[str]:
        """What the outbox sent to the Telegram chat, in order."""
        return [text for key, text in self.outbox.sent if key == SessionKey("telegram", chat)]

    def count(self, outcome: str, kind: str = "posted", channel: str = "telegram") -> float:
        """The alerts counter."""
        return self.metrics.value("bot_alerts_total", kind=kind, channel=channel,
                                  outcome=outcome)


@pytest.fixture
def world() -> World:
    return World()


async def test_sends_and_counts(world: World) -> None:
    world.directory.add("telegram", "1", ["11"], locale="en")
    world.directory.add("whatsapp", "62811", ["22"])
    await world.queue.enqueue([posted("1"), posted("62811", kpj="22", channel="whatsapp")])

    report = await world.worker().drain()

    assert report.sent == 2
    assert report.held == 0
    assert world.sent_texts("1") == ["posted 2026-10 11"]
    assert await world.queue.depth() == 0
    assert await world.queue.sent_count(SessionKey("telegram", "1")) == 1
    assert world.count("sent") == 1
    assert world.count("sent", channel="whatsapp") == 1
    assert world.metrics.value("bot_alert_queue_depth") == 0


async def test_the_gauges_show_every_channel_when_told() -> None:
    queues = ChannelQueues(lambda channel: MemoryAlertQueue(b"test-secret"))
    world = World(queues.of("telegram"))
    await queues.enqueue([posted("1"), posted("62811", channel="whatsapp")])

    await world.worker(gauges=queues).drain()  # the telegram chat is not subscribed

    assert world.metrics.value("bot_alert_queue_depth") == 1  # whatsapp's job still waits
    assert world.metrics.value("bot_alert_oldest_pending_seconds") >= 0


async def test_unsubscribed_unlinked_or_erased_between_plan_and_send_is_skipped(
        world: World) -> None:
    world.directory.add("telegram", "unsub", ["11"])
    world.directory.add("telegram", "unlinked", ["11"])
    world.directory.add("telegram", "erased", ["11"])
    world.directory.add("telegram", "kept", ["11"])
    await world.queue.enqueue([posted(chat) for chat in ("unsub", "unlinked", "erased",
                                                         "kept")])
    world.directory.chats[SessionKey("telegram", "unsub")].kinds.discard("posted")
    world.directory.chats[SessionKey("telegram", "unlinked")].kpjs.clear()
    del world.directory.chats[SessionKey("telegram", "erased")]

    report = await world.worker().drain()

    assert report.counts == {Result.SKIPPED: 3, Result.SENT: 1}
    assert [key.chat_id for key, _ in world.outbox.sent] == ["kept"]
    assert world.count("skipped") == 3
    assert await world.queue.depth() == 0


async def test_an_alert_no_longer_true_is_skipped_and_a_failing_check_retried(
        world: World) -> None:
    world.directory.add("telegram", "paid", ["11"])
    world.directory.add("telegram", "still", ["22"])
    missing = [AlertJob("telegram", "paid", AlertKind.MISSING, "2026-09", "11"),
               AlertJob("telegram", "still", AlertKind.MISSING, "2026-09", "22")]
    await world.queue.enqueue(missing)
    down = [True]

    async def still_true(job: AlertJob) -> bool:  # "paid" paid September since planning
        if down[0]:
            raise ConnectionError("the balance service is down")
        return job.chat_id != "paid"

    worker = world.worker(still_true=still_true, claim_after=0.05)
    assert (await worker.drain()).counts == {}  # nothing sent while it cannot be checked
    down[0] = False
    await asyncio.sleep(0.06)
    report = await worker.drain()

    assert report.counts == {Result.SKIPPED: 1, Result.SENT: 1}
    assert [key.chat_id for key, _ in world.outbox.sent] == ["still"]


async def test_blocked_chat_is_recorded_not_retried(world: World) -> None:
    key = world.directory.add("telegram", "1", ["11"])
    world.outbox.blocked.add(key)
    await world.queue.enqueue([posted("1")])

    report = await world.worker(claim_after=0.0).drain()

    assert report.counts == {Result.BLOCKED: 1}
    assert world.count("blocked") == 1
    assert await world.queue.depth() == 0


class _Known:
    """The chats an outbox knows blocked the bot; ``down`` makes the lookup fail."""

    def __init__(self, *keys: SessionKey, down: bool = False) -> None:
        self.keys, self.down, self.asked = set(keys), down, 0

    async def unreachable(self, keys: Sequence[SessionKey]) -> set[SessionKey]:
        self.asked += 1
        if self.down:
            raise StoreUnavailable("the store is down")
        return self.keys & set(keys)


class _CountingPacer:
    def __init__(self) -> None:
        self.sends: Counter[str] = Counter()

    async def acquire(self, channel: str) -> None:
        self.sends[channel] += 1


async def test_a_chat_known_to_have_blocked_the_bot_costs_no_send(world: World) -> None:
    gone = world.directory.add("telegram", "1", ["11"])
    world.directory.add("telegram", "2", ["22"])
    world.directory.add("telegram", "3", ["33"], kinds=["development"])
    await world.queue.enqueue([posted("1"), posted("1", period="2026-09"), posted("2", kpj="22"),
                               posted("3", kpj="33")])
    known, pacer = _Known(gone, SessionKey("telegram", "3")), _CountingPacer()

    report = await world.worker(unreachable=known, pacer=pacer).drain()

    # blocked: recorded, never sent nor paced; unsubscribed wins over blocked (skipped)
    assert report.counts == {Result.BLOCKED: 2, Result.SENT: 1, Result.SKIPPED: 1}
    assert [key.chat_id for key, _ in world.outbox.sent] == ["2"]
    assert pacer.sends == {"telegram": 1}
    assert known.asked == 1  # once per batch
    assert world.count("blocked") == 2
    assert await world.queue.depth() == 0


async def test_a_send_refused_as_blocked_stops_the_chats_other_alerts(world: World) -> None:
    key = world.directory.add("telegram", "1", ["11"])
    world.outbox.blocked.add(key)
    await world.queue.enqueue([posted("1", period=f"2026-0{month}") for month in (7, 8, 9)])
    calls = 0
    deliver = world.outbox.deliver

    async def counting(key: SessionKey, replies: list[Reply]) -> bool:
        nonlocal calls
        calls += 1
        return await deliver(key, replies)

    world.outbox.deliver = counting  # type: ignore[method-assign]
    report = await world.worker().drain()

    assert report.counts == {Result.BLOCKED: 3}
    assert calls == 1


async def test_when_blocked_chats_cannot_be_read_the_alerts_are_sent(world: World) -> None:
    world.directory.add("telegram", "1", ["11"])
    await world.queue.enqueue([posted("1")])
    report = await world.worker(unreachable=_Known(down=True)).drain()
    assert report.counts == {Result.SENT: 1}


async def test_a_failed_send_is_retried_by_a_reclaim(world: World) -> None:
    world.directory.add("telegram", "1", ["11"])
    await world.queue.enqueue([posted("1")])
    world.outbox.failures = 1
    worker = world.worker(claim_after=0.05)

    first = await worker.drain()
    assert first.counts == {}  # left pending: not yet stale
    assert await world.queue.depth() == 1

    await asyncio.sleep(0.06)
    second = await worker.drain()
    assert second.sent == 1
    assert world.sent_texts("1") == ["posted 2026-10 11"]


async def test_failed_after_the_allowed_attempts(world: World,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    world.directory.add("telegram", "62811234567", ["12345678901"])
    await world.queue.enqueue([posted("62811234567", kpj="12345678901")])
    world.outbox.failures = 10

    report = await world.worker(claim_after=0.0, max_attempts=3).drain()

    assert report.counts == {Result.FAILED: 1}
    assert world.outbox.failures == 7  # three attempts
    assert world.count("failed") == 1
    assert await world.queue.depth() == 0
    assert "ConnectionError" in caplog.text
    assert "62811234567" not in caplog.text and "12345678901" not in caplog.text


async def test_quiet_hours_hold_then_send(world: World) -> None:
    world.directory.add("telegram", "1", ["11"])
    await world.queue.enqueue([posted("1"), posted("1", "2026-11")])
    world.clock.now = datetime(2026, 12, 3, 21, 30, tzinfo=JAKARTA)
    worker = world.worker()

    held = await worker.drain()
    assert held.held == 2
    assert held.counts == {}
    assert world.outbox.sent == []

    world.clock.now = datetime(2026, 12, 4, 7, 0, tzinfo=JAKARTA)
    report = await worker.drain()
    assert report.sent == 2
    assert world.sent_texts("1") == ["posted 2026-10 11", "posted 2026-11 11"]


async def test_run_sleeps_through_quiet_hours_then_sends(world: World) -> None:
    world.directory.add("telegram", "1", ["11"])
    await world.queue.enqueue([posted("1")])
    start, base = time.monotonic(), datetime(2026, 12, 4, 6, 59, 59, 700_000, tzinfo=JAKARTA)

    def clock() -> datetime:  # 0.3 s before the end of quiet hours, running in real time
        return base + timedelta(seconds=time.monotonic() - start)

    task = asyncio.create_task(world.worker(clock=clock).run())
    try:
        await asyncio.sleep(0.15)
        assert world.outbox.sent == []  # still quiet
        async with asyncio.timeout(3):
            while not world.outbox.sent:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert clock() >= datetime(2026, 12, 4, 7, 0, tzinfo=JAKARTA)
    assert await world.queue.depth() == 0  # finished, even though the task was cancelled


async def test_one_chat_at_a_time_in_order_chats_concurrently(world: World) -> None:
    chats = [str(n) for n in range(8)]
    for chat in chats:
        world.directory.add("telegram", chat, ["11"])
    periods = ["2026-08", "2026-09", "2026-10"]
    await world.queue.enqueue([posted(chat, period) for period in periods for chat in chats])
    world.outbox.delay = 0.01

    report = await world.worker(batch=10, concurrency=4).drain()

    assert report.sent == 24
    assert not world.outbox.overlapped
    assert 1 < world.outbox.peak <= 4
    for chat in chats:
        assert world.sent_texts(chat) == [f"posted {p} 11" for p in periods]


async def test_the_alerts_of_a_chat_after_a_failure_wait_their_turn(world: World) -> None:
    world.directory.add("telegram", "1", ["11"])
    await world.queue.enqueue([posted("1", "2026-09"), posted("1", "2026-10")])
    world.outbox.failures = 1

    report = await world.worker(claim_after=0.0).drain()

    assert report.sent == 2
    assert world.sent_texts("1") == ["posted 2026-09 11", "posted 2026-10 11"]


async def exactly_once_with_two_workers(world: World, make: Callable[[str], AlertWorker],
                                        chats: int = 60) -> None:
    """Two workers drain one queue at once; every alert is sent once."""
    jobs = []
    for n in range(chats):
        world.directory.add("telegram", str(n), ["11", "22"])
        jobs += [posted(str(n), kpj="11"), posted(str(n), kpj="22"),
                 posted(str(n), "2026-11", kpj="11")]
    assert await world.queue.enqueue(jobs) == len(jobs)
    world.outbox.delay = 0.001

    reports = await asyncio.gather(make("w1").drain(), make("w2").drain())

    assert sum(r.sent for r in reports) == len(jobs)
    assert all(r.sent for r in reports)  # both took part
    sent = Counter(world.outbox.sent)
    assert len(sent) == len(jobs)
    assert set(sent.values()) == {1}
    assert await world.queue.depth() == 0


async def test_exactly_once_with_two_workers(world: World) -> None:
    await exactly_once_with_two_workers(world, lambda name: world.worker(name, batch=16))


async def test_a_finished_job_handed_out_again_is_not_sent_again(world: World) -> None:
    world.directory.add("telegram", "1", ["11"])
    await world.queue.enqueue([posted("1")])
    [delivery] = await world.queue.receive("dead", 10, 0)  # a worker took it ...
    await world.worker("w1", claim_after=0.0).drain()  # ... another reclaimed and sent it
    assert await world.queue.begin("dead", [delivery]) == []  # the first one wakes up
    assert len(world.outbox.sent) == 1


@pytest.fixture
async def redis_queue(redis_url: str, unique_prefix: str) -> AsyncIterator[AlertQueue]:
    import redis.asyncio

    from alerts.queue_redis import RedisAlertQueue

    client = redis.asyncio.from_url(redis_url)
    try:
        yield RedisAlertQueue(client, secret=b"test-secret", prefix=unique_prefix,
                              channel="telegram")
    finally:
        await client.aclose()
        await delete_prefixed(redis_url, unique_prefix)


async def test_on_redis_exactly_once_with_two_workers(redis_queue: AlertQueue) -> None:
    world = World(redis_queue)
    await exactly_once_with_two_workers(world, lambda name: world.worker(name, batch=16))


async def test_on_redis_a_dead_workers_jobs_are_reclaimed(redis_queue: AlertQueue) -> None:
    world = World(redis_queue)
    for n in range(5):
        world.directory.add("telegram", str(n), ["11"])
    await world.queue.enqueue([posted(str(n)) for n in range(5)])
    taken = await world.queue.receive("dead", 3, 0)  # then the worker died
    assert len(taken) == 3
    worker = world.worker("w1", claim_after=0.1)

    first = await worker.drain()
    assert first.sent == 2  # the dead worker's are not stale yet
    await asyncio.sleep(0.15)
    second = await worker.drain()

    assert second.sent == 3
    assert Counter(world.outbox.sent).most_common(1)[0][1] == 1
    assert len(world.outbox.sent) == 5
    assert await world.queue.depth() == 0

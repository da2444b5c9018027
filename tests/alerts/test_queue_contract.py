"""One contract for every alert queue (:mod:`alerts.queue_memory`, :mod:`alerts.queue_redis`,
:mod:`alerts.queue_sql` on SQLite and PostgreSQL): each job identity (chat, kind, period, KPJ)
planned once, handed to one consumer, reclaimed from a dead one with its true delivery count,
finished once.

Redis tests share the server with others: each test uses its own key prefix and deletes only
its own keys afterwards (run them alone with ``TEST_REDIS_URL=redis://127.0.0.1:6379/11``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio
import sqlalchemy as sa
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.ports import Delivery, Result
from alerts.queue_memory import MemoryAlertQueue
from alerts.queue_redis import BATCH, GROUP, RedisAlertQueue
from alerts.queue_sql import SqlAlertQueue
from domain.alerts import AlertJob, AlertKind
from flows.ports import StoreUnavailable
from flows.types import SessionKey
from storage.db import create_engine, migrate
from storage.models import AlertMark, QueuedAlert
from tests.conftest import delete_prefixed

Queue = MemoryAlertQueue | RedisAlertQueue | SqlAlertQueue
SECRET = b"test-secret-of-the-alert-marks"
CHAT, OTHER = "6281234567890", "100200300"
KPJ, KPJ2 = "11223344556", "99887766554"
IDLE = 0.05  # seconds before an unfinished delivery may be reclaimed in these tests


def job(chat: str = CHAT, *, kind: AlertKind = AlertKind.POSTED, period: str = "2026-10",
        kpj: str = KPJ, channel: str = "whatsapp", employer: int = 250046) -> AlertJob:
    """A posted-contribution alert (its identity: channel, chat, kind, period, KPJ)."""
    return AlertJob(channel, chat, kind, period, kpj, "PU", employer, 135160)


def months(count: int, chat: str = CHAT) -> list[AlertJob]:
    """``count`` jobs of distinct identities (one chat per job beyond the first month)."""
    return [job(f"{chat}{n}") for n in range(count)]


@pytest.fixture
async def client(redis_url: str, unique_prefix: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A client like production's (``redis_store_from_url``: strings, not bytes)."""
    made = redis.asyncio.from_url(redis_url, decode_responses=True)
    yield made
    await made.aclose()
    await delete_prefixed(redis_url, unique_prefix)


@pytest.fixture
def redis_queue(client: redis.asyncio.Redis, unique_prefix: str) -> RedisAlertQueue:
    """The Redis queue under the test's prefix."""
    return RedisAlertQueue(client, secret=SECRET, prefix=unique_prefix)


async def migrated_queue(url: str) -> AsyncIterator[SqlAlertQueue]:
    """A SQL queue on a freshly migrated database at ``url``, its engine disposed after."""
    engine = create_engine(url)
    try:
        await migrate(engine)
        yield SqlAlertQueue(engine, secret=SECRET, channel="whatsapp")
    finally:
        await engine.dispose()


@pytest.fixture
async def sqlite_queue(tmp_path: Path) -> AsyncIterator[SqlAlertQueue]:
    """The SQL queue on a SQLite file (the embedded default)."""
    async for made in migrated_queue(f"sqlite:///{tmp_path}/bot.db"):
        yield made


@pytest.fixture
async def postgresql_queue(postgres_url: str) -> AsyncIterator[SqlAlertQueue]:
    """The SQL queue on a new PostgreSQL database."""
    async for made in migrated_queue(postgres_url):
        yield made


@pytest.fixture(params=["memory", "redis", "sqlite", "postgresql"])
def queue(request: pytest.FixtureRequest) -> Queue:
    """Every contract test runs once per backend (SQL on both databases)."""
    if request.param == "memory":
        return MemoryAlertQueue(SECRET)
    made: RedisAlertQueue | SqlAlertQueue = request.getfixturevalue(f"{request.param}_queue")
    return made


async def deliver(queue: Queue, consumer: str, count: int = 100) -> list[Delivery]:
    """Receive without waiting, then begin: what ``consumer`` may send."""
    return await queue.begin(consumer, await queue.receive(consumer, count, 0))


async def reclaimed(queue: Queue, consumer: str, count: int = 100) -> list[Delivery]:
    """What ``consumer`` reclaims once the other consumers' deliveries have been idle."""
    await asyncio.sleep(IDLE * 2)
    return await queue.reclaim(consumer, IDLE, count)


# --- planning ------------------------------------------------------------------------------


async def test_enqueue_appends_each_identity_once_across_calls_and_within_a_batch(
        queue: Queue) -> None:
    same_identity = job(employer=1)  # other amounts, same identity: not a second alert
    assert await queue.enqueue([job(), same_identity, job(kpj=KPJ2)]) == 2
    assert await queue.enqueue([job(), job(period="2026-11"),
                                job(kind=AlertKind.MISSING)]) == 2
    assert await queue.enqueue([job(channel="telegram")]) == 1  # another chat
    assert await queue.depth() == 5


async def test_enqueue_dedupes_across_its_batches(queue: Queue) -> None:
    jobs = months(BATCH * 2 + 100)
    assert await queue.enqueue([*jobs, *jobs[:150]]) == len(jobs)
    assert await queue.enqueue(jobs[-50:]) == 0
    assert await queue.depth() == len(jobs)


async def test_unplanned_lists_what_enqueue_would_append_and_writes_nothing(
        queue: Queue) -> None:
    await queue.enqueue([job()])
    fresh = [job(kpj=KPJ2), job(period="2026-11")]
    assert await queue.unplanned([job(), *fresh, job(kpj=KPJ2, employer=1)]) == fresh
    assert await queue.unplanned([]) == []
    assert await queue.depth() == 1
    assert await queue.enqueue(fresh) == 2


# --- handing out ---------------------------------------------------------------------------


async def test_two_consumers_receive_disjoint_jobs(queue: Queue) -> None:
    jobs = months(10)
    before = time.time()
    await queue.enqueue(jobs)
    first = await queue.receive("w1", 4, 0)
    second = await queue.receive("w2", 100, 0)
    assert len(first) == 4 and len(second) == 6
    assert {d.id for d in first}.isdisjoint({d.id for d in second})
    assert sorted([d.job for d in first + second], key=str) == sorted(jobs, key=str)
    assert {d.attempts for d in first + second} == {1}
    assert all(before - 0.01 <= d.planned_at <= time.time() + 0.01 for d in first + second)
    assert await queue.receive("w3", 100, 0) == []  # nothing is handed out twice
    assert await queue.depth() == 10  # received is not finished


async def test_receive_waits_up_to_block_and_wakes_when_a_job_arrives(queue: Queue) -> None:
    started = time.monotonic()
    assert await queue.receive("w1", 10, 0.15) == []
    assert time.monotonic() - started >= 0.1

    async def enqueue_later() -> None:
        await asyncio.sleep(0.1)
        await queue.enqueue([job()])

    started = time.monotonic()
    waiting = asyncio.create_task(queue.receive("w1", 10, 1.5))
    await enqueue_later()
    got = await waiting
    assert [d.job for d in got] == [job()]
    assert time.monotonic() - started < 1.0


async def test_an_unfinished_delivery_is_reclaimed_by_another_consumer_with_attempts_2(
        queue: Queue) -> None:
    await queue.enqueue([job(), job(kpj=KPJ2)])
    taken = await deliver(queue, "dead", 1)
    assert await queue.reclaim("w2", 5.0, 10) == []  # not idle long enough yet
    again = await reclaimed(queue, "w2")
    assert [(d.id, d.job, d.attempts) for d in again] == [(taken[0].id, taken[0].job, 2)]
    assert again[0].planned_at == taken[0].planned_at
    assert await queue.reclaim("w3", IDLE, 10) == []  # the claim made it busy again
    assert await queue.begin("w2", again) == again
    third = await reclaimed(queue, "w3")  # w2 hung as well
    assert [d.attempts for d in third] == [3]
    await queue.finish([(third[0], Result.SENT)])
    assert await queue.reclaim("w2", 0, 10) == []
    assert await queue.depth() == 1  # the job nobody received yet


async def test_begin_drops_a_finished_identity(queue: Queue) -> None:
    await queue.enqueue([job()])
    slow = await deliver(queue, "slow")
    again = await reclaimed(queue, "w2")
    await queue.finish([(slow[0], Result.SENT)])  # the slow worker did finish after all
    assert await queue.begin("w2", again) == []
    assert await queue.depth() == 0
    assert await queue.sent_count(job().key) == 1


async def test_finish_removes_the_job_and_counts_sent_once_when_two_workers_finish_it(
        queue: Queue) -> None:
    await queue.enqueue([job(), job(kpj=KPJ2), job(period="2026-11")])
    slow = await deliver(queue, "slow")
    assert len(slow) == 3
    again = await queue.begin("w2", await reclaimed(queue, "w2"))
    assert len(again) == 3  # not finished yet: both may send (the slow one hung)
    await queue.finish([(again[0], Result.SENT), (again[1], Result.SENT),
                        (again[2], Result.BLOCKED)])
    await queue.finish([(slow[0], Result.SENT), (slow[1], Result.FAILED),
                        (slow[2], Result.SENT)])  # late: changes nothing
    assert await queue.depth() == 0
    assert await queue.sent_count(job().key) == 2
    assert await queue.oldest_age(time.time()) == 0.0
    assert await queue.enqueue([job()]) == 0  # still planned: never again


async def test_forget_erases_the_chats_marks_and_count(queue: Queue) -> None:
    other = job(OTHER)
    await queue.enqueue([job(), job(kpj=KPJ2), other])
    first, second, third = await deliver(queue, "w1")
    await queue.finish([(first, Result.SENT), (third, Result.SENT)])
    assert await queue.sent_count(job().key) == 1
    assert await queue.forget(job().key) == 2
    assert (await queue.sent_count(job().key), await queue.forget(job().key)) == (0, 0)
    assert await queue.sent_count(other.key) == 1  # another chat keeps its own
    # The chat's queued job still comes (the worker finds the subscription gone) and leaves
    # no mark behind.
    assert await queue.begin("w1", [second]) == [second]
    await queue.finish([(second, Result.SKIPPED)])
    assert await queue.forget(job().key) == 0
    assert await queue.depth() == 0


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def embedded_queue(request: pytest.FixtureRequest) -> Queue:
    """The queues that erase a chat's queued jobs with its marks."""
    if request.param == "memory":
        return MemoryAlertQueue(SECRET)
    made: SqlAlertQueue = request.getfixturevalue(f"{request.param}_queue")
    return made


async def test_forget_deletes_the_chats_queued_jobs_on_the_embedded_backends(
        embedded_queue: Queue) -> None:
    """The in-process and SQL queues delete an erased chat's queued jobs at once (they hold
    its chat id and KPJ); a chat id that reads as a LIKE pattern erases no other chat's."""
    queue = embedded_queue
    await queue.enqueue([job("12_4"), job("12_4", kpj=KPJ2), job("1234"), job("12%"),
                         job("12_4", channel="telegram")])
    assert await queue.forget(job("12_4").key) == 2  # two planned marks
    left = await queue.receive("w1", 100, 0)
    assert sorted((d.job.channel, d.job.chat_id) for d in left) == [
        ("telegram", "12_4"), ("whatsapp", "12%"), ("whatsapp", "1234")]  # other chats kept
    assert await queue.depth() == 3


async def test_oldest_age_is_the_first_unfinished_jobs_age(queue: Queue) -> None:
    assert await queue.oldest_age(time.time()) == 0.0
    await queue.enqueue([job()])
    await asyncio.sleep(0.02)
    await queue.enqueue([job(kpj=KPJ2)])
    now = time.time()
    age = await queue.oldest_age(now + 10)
    assert 10.02 <= age <= 10.5
    assert await queue.oldest_age(0.0) == 0.0  # never negative
    first, second = await deliver(queue, "w1")
    await queue.finish([(first, Result.SENT)])
    assert await queue.oldest_age(now + 10) < age
    await queue.finish([(second, Result.SENT)])
    assert await queue.oldest_age(now + 10) == 0.0


# --- Redis only ----------------------------------------------------------------------------


async def test_a_malformed_stream_entry_is_acked_deleted_and_logged_without_its_text(
        redis_queue: RedisAlertQueue, client: redis.asyncio.Redis,
        caplog: pytest.LogCaptureFixture) -> None:
    await redis_queue.enqueue([job()])
    await client.xadd(redis_queue.stream, {"j": f"whatsapp|{CHAT}|posted|garbage"})
    await client.xadd(redis_queue.stream, {"other": "field"})
    await redis_queue.enqueue([job(kpj=KPJ2)])
    with caplog.at_level(logging.WARNING):
        got = await redis_queue.receive("w1", 10, 0)
    assert [d.job for d in got] == [job(), job(kpj=KPJ2)]
    assert await redis_queue.depth() == 2
    assert (await client.xpending(redis_queue.stream, GROUP))["pending"] == 2
    assert len(caplog.records) == 2
    assert all(CHAT not in r.getMessage() and "garbage" not in r.getMessage()
               for r in caplog.records)


async def test_a_reclaimed_malformed_entry_is_dropped_too(
        redis_queue: RedisAlertQueue, client: redis.asyncio.Redis) -> None:
    await redis_queue.receive("w1", 1, 0)  # creates the group
    await client.xadd(redis_queue.stream, {"j": "not a job"})
    await client.xreadgroup(GROUP, "dead", {redis_queue.stream: ">"})
    assert await reclaimed(redis_queue, "w2") == []
    assert await redis_queue.depth() == 0
    assert (await client.xpending(redis_queue.stream, GROUP))["pending"] == 0


async def test_the_group_is_made_again_when_the_stream_was_lost(
        redis_queue: RedisAlertQueue, client: redis.asyncio.Redis) -> None:
    assert await redis_queue.receive("w1", 1, 0) == []
    await client.delete(redis_queue.stream)  # a Redis restarted without persistence
    await redis_queue.enqueue([job()])
    assert [d.job for d in await redis_queue.receive("w1", 1, 0)] == [job()]
    await client.delete(redis_queue.stream)
    assert await redis_queue.reclaim("w2", 0, 10) == []  # the script made it again too
    assert await client.xinfo_groups(redis_queue.stream)


async def test_jobs_enqueued_before_the_first_worker_are_delivered(
        redis_queue: RedisAlertQueue, client: redis.asyncio.Redis, unique_prefix: str) -> None:
    await redis_queue.enqueue([job()])  # the planner ran first: no group yet
    worker = RedisAlertQueue(client, secret=SECRET, prefix=unique_prefix)
    assert [d.job for d in await worker.receive("w1", 10, 0)] == [job()]


async def test_marks_name_neither_chat_nor_kpj_and_expire(
        client: redis.asyncio.Redis, unique_prefix: str) -> None:
    queue = RedisAlertQueue(client, secret=SECRET, prefix=unique_prefix, mark_ttl=3600)
    await queue.enqueue([job()])
    await queue.finish([(d, Result.SENT) for d in await deliver(queue, "w1")])
    [marks] = [key async for key in client.scan_iter(match=f"{unique_prefix}alerts:marks:*")]
    assert marks == queue.marks_key(job().key)
    fields = {str(f): str(m) for f, m in (await client.hgetall(marks)).items()}
    assert len(fields) == 2 and fields["#sent"] == "1"
    [(field, mark)] = [(f, m) for f, m in fields.items() if f != "#sent"]
    assert field.startswith("posted:2026-10:") and mark == "d:sent"
    assert not any(secret in text for text in (marks, field) for secret in (CHAT, KPJ))
    assert 3500_000 < await client.pttl(marks) <= 3600_000


async def test_begin_marks_the_sending_consumer(
        redis_queue: RedisAlertQueue, client: redis.asyncio.Redis) -> None:
    await redis_queue.enqueue([job()])
    await deliver(redis_queue, "w7")
    fields = await client.hgetall(redis_queue.marks_key(job().key))
    assert list(fields.values()) == ["s:w7"]


async def test_redis_memory_per_queued_job(
        redis_queue: RedisAlertQueue, client: redis.asyncio.Redis) -> None:
    """Prints (run with ``-s``) what 10,000 queued jobs cost: the stream, and the marks (one
    hash per chat, one chat per job here as in a month's plan)."""
    count = 10_000
    jobs = [AlertJob("telegram", str(7_000_000_000 + n), AlertKind.POSTED, "2026-10",
                     str(11_000_000_000 + n), "PU", 250046, 135160) for n in range(count)]
    assert await redis_queue.enqueue(jobs) == count
    stream = int(await client.memory_usage(redis_queue.stream, samples=0) or 0)
    async with client.pipeline(transaction=False) as pipe:
        for item in jobs:
            pipe.memory_usage(redis_queue.marks_key(item.key), samples=0)
        marks = sum(int(size or 0) for size in await pipe.execute())
    print(f"\nRedis memory per queued alert job ({count:,} jobs): stream {stream / count:.1f} "
          f"bytes, marks {marks / count:.1f} bytes (a hash per chat), "
          f"payload {len(jobs[0].encode())} characters")
    assert await redis_queue.depth() == count


async def test_the_client_may_return_bytes(redis_url: str, unique_prefix: str) -> None:
    raw = redis.asyncio.from_url(redis_url)
    try:
        queue = RedisAlertQueue(raw, secret=SECRET, prefix=unique_prefix)
        await queue.enqueue([job()])
        [delivery] = await deliver(queue, "w1")
        assert delivery.job == job()
        await queue.finish([(delivery, Result.SENT)])
        assert await queue.sent_count(job().key) == 1
        assert await queue.oldest_age(time.time()) == 0.0
    finally:
        await raw.aclose()
        await delete_prefixed(redis_url, unique_prefix)


UNREACHABLE: dict[str, Callable[[RedisAlertQueue], Awaitable[object]]] = {
    "enqueue": lambda queue: queue.enqueue([job()]),
    "unplanned": lambda queue: queue.unplanned([job()]),
    "receive": lambda queue: queue.receive("w1", 10, 0.1),
    "reclaim": lambda queue: queue.reclaim("w1", 1.0, 10),
    "begin": lambda queue: queue.begin("w1", [Delivery("1-0", job(), 1)]),
    "finish": lambda queue: queue.finish([(Delivery("1-0", job(), 1), Result.SENT)]),
    "depth": lambda queue: queue.depth(),
    "oldest_age": lambda queue: queue.oldest_age(time.time()),
    "sent_count": lambda queue: queue.sent_count(SessionKey("telegram", OTHER)),
    "forget": lambda queue: queue.forget(SessionKey("telegram", OTHER)),
}


@pytest.mark.parametrize("operation", UNREACHABLE)
async def test_unreachable_redis_raises_store_unavailable(operation: str) -> None:
    client = redis.asyncio.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await UNREACHABLE[operation](RedisAlertQueue(client, secret=SECRET))
    finally:
        await client.aclose()
    assert isinstance(caught.value.__cause__, RedisError | OSError)


# --- SQL only (SQLite and PostgreSQL: the ``engine`` fixture runs on both) -----------------


@pytest.fixture
def sql_queue(engine: AsyncEngine) -> SqlAlertQueue:
    """The SQL queue of the WhatsApp channel on a migrated database."""
    return SqlAlertQueue(engine, secret=SECRET, channel="whatsapp")


async def test_sql_marks_unwritten_for_their_ttl_are_deleted_by_the_next_plan(
        engine: AsyncEngine) -> None:
    old = SqlAlertQueue(engine, secret=SECRET, channel="whatsapp", mark_ttl=0.3)
    await old.enqueue([job()])
    await old.finish([(d, Result.SENT) for d in await deliver(old, "w1")])
    await asyncio.sleep(0.4)
    assert await old.enqueue([job(period="2026-12")]) == 1  # expired at most once an hour
    async with engine.connect() as conn:
        assert len((await conn.execute(sa.select(AlertMark.field))).all()) == 3
    await asyncio.sleep(0.4)
    later = SqlAlertQueue(engine, secret=SECRET, channel="whatsapp", mark_ttl=0.3)
    await later.enqueue([job(period="2026-11")])  # the next day's plan: the old ones expire
    async with engine.connect() as conn:
        fields = sorted(field for (field,) in await conn.execute(sa.select(AlertMark.field)))
    assert len(fields) == 1 and fields[0].startswith("posted:2026-11:")
    assert await old.sent_count(job().key) == 0
    # expired, the identity could be planned again (the planner never asks that late)
    assert await old.unplanned([job()]) == [job()]


async def test_sql_marks_written_within_their_ttl_are_kept(engine: AsyncEngine) -> None:
    queue = SqlAlertQueue(engine, secret=SECRET, channel="whatsapp", mark_ttl=3600)
    await queue.enqueue([job()])
    await queue.finish([(d, Result.SENT) for d in await deliver(queue, "w1")])
    again = SqlAlertQueue(engine, secret=SECRET, channel="whatsapp", mark_ttl=3600)
    assert await again.enqueue([job(), job(period="2026-11")]) == 1
    assert await again.sent_count(job().key) == 1
    with pytest.raises(ValueError, match="mark_ttl"):
        SqlAlertQueue(engine, secret=SECRET, mark_ttl=0)


async def test_a_new_queue_on_the_same_database_knows_what_was_sent_and_what_waits(
        engine: AsyncEngine, sql_queue: SqlAlertQueue) -> None:
    await sql_queue.enqueue([job(), job(kpj=KPJ2), job(period="2026-11")])
    sent, hung = await deliver(sql_queue, "w1", 2)
    await sql_queue.finish([(sent, Result.SENT)])
    restarted = SqlAlertQueue(engine, secret=SECRET, channel="whatsapp")  # a new process
    assert await restarted.sent_count(job().key) == 1
    assert await restarted.depth() == 2
    assert await restarted.enqueue([job(), job(kpj=KPJ2), job(period="2026-11")]) == 0
    assert await restarted.unplanned([job(), job(period="2026-12")]) == [job(period="2026-12")]
    [waiting] = await deliver(restarted, "w2")
    assert (waiting.job, waiting.attempts) == (job(period="2026-11"), 1)
    [again] = await reclaimed(restarted, "w2", 1)  # the oldest: the old process's, unfinished
    assert (again.id, again.job, again.attempts) == (hung.id, hung.job, 2)
    await restarted.finish([(again, Result.SENT), (waiting, Result.BLOCKED)])
    assert await restarted.sent_count(job().key) == 2
    assert await restarted.depth() == 0


async def test_a_channels_queue_holds_only_its_jobs_and_shares_the_marks(
        engine: AsyncEngine, sql_queue: SqlAlertQueue) -> None:
    telegram = SqlAlertQueue(engine, secret=SECRET, channel="telegram")
    await sql_queue.enqueue([job()])
    assert (await telegram.depth(), await telegram.oldest_age(time.time())) == (0, 0.0)
    assert await telegram.receive("t1", 10, 0) == []
    assert await telegram.reclaim("t1", 0, 10) == []
    assert await telegram.enqueue([job()]) == 0  # the identity is planned, whatever queue
    await sql_queue.finish([(d, Result.SENT) for d in await deliver(sql_queue, "w1")])
    assert await telegram.sent_count(job().key) == 1


async def test_ids_are_never_reused_so_a_late_finish_removes_no_other_job(
        sql_queue: SqlAlertQueue) -> None:
    await sql_queue.enqueue([job()])
    [first] = await deliver(sql_queue, "w1")
    await sql_queue.finish([(first, Result.SENT)])  # the last row is gone
    await sql_queue.enqueue([job(kpj=KPJ2)])
    [second] = await sql_queue.receive("w1", 10, 0)
    assert int(second.id) > int(first.id)
    await sql_queue.finish([(first, Result.SENT)])  # a slow worker's late finish
    assert await sql_queue.depth() == 1


async def test_concurrent_receivers_on_their_own_queue_objects_take_disjoint_jobs(
        engine: AsyncEngine, sql_queue: SqlAlertQueue) -> None:
    jobs = months(120)
    assert await sql_queue.enqueue(jobs) == 120
    receivers = [SqlAlertQueue(engine, secret=SECRET, channel="whatsapp") for _ in range(4)]

    async def drain(queue: SqlAlertQueue, name: str) -> list[Delivery]:
        taken: list[Delivery] = []
        while got := await queue.receive(name, 7, 0):
            taken += got
        return taken

    results = await asyncio.gather(*(drain(q, f"w{n}") for n, q in enumerate(receivers)))
    ids = [d.id for taken in results for d in taken]
    assert len(ids) == len(set(ids)) == 120
    assert sorted((d.job for taken in results for d in taken), key=str) == sorted(jobs, key=str)


async def test_a_malformed_row_is_deleted_and_logged_without_its_text(
        engine: AsyncEngine, sql_queue: SqlAlertQueue,
        caplog: pytest.LogCaptureFixture) -> None:
    await sql_queue.enqueue([job()])
    async with engine.begin() as conn:
        await conn.execute(sa.insert(QueuedAlert.__table__),  # type: ignore[attr-defined]
                           [{"channel": "whatsapp", "payload": f"whatsapp|{CHAT}|garbage",
                             "enqueued_at": time.time(), "attempts": 0}])
    await sql_queue.enqueue([job(kpj=KPJ2)])
    with caplog.at_level(logging.WARNING):
        got = await sql_queue.receive("w1", 10, 0)
    assert [d.job for d in got] == [job(), job(kpj=KPJ2)]
    assert await sql_queue.depth() == 2
    assert len(caplog.records) == 1
    assert CHAT not in caplog.records[0].getMessage()


async def test_sql_marks_name_neither_chat_nor_kpj(
        engine: AsyncEngine, sql_queue: SqlAlertQueue) -> None:
    await sql_queue.enqueue([job()])
    [delivery] = await deliver(sql_queue, "w7")
    async with engine.connect() as conn:
        marks = (await conn.execute(sa.select(AlertMark))).all()
    assert [(m.field.startswith("posted:2026-10:"), m.value) for m in marks] == [(True, "s:w7")]
    await sql_queue.finish([(delivery, Result.SENT)])
    async with engine.connect() as conn:
        marks = (await conn.execute(sa.select(AlertMark).order_by(AlertMark.field))).all()
        payloads = (await conn.execute(sa.select(QueuedAlert))).all()
    assert [(m.field == "#sent", m.value) for m in marks] == [(True, "1"), (False, "d:sent")]
    assert not any(secret in text for m in marks for text in (m.tag, m.field)
                   for secret in (CHAT, KPJ))
    assert payloads == []


SQL_UNREACHABLE: dict[str, Callable[[SqlAlertQueue], Awaitable[object]]] = {
    "enqueue": lambda queue: queue.enqueue([job()]),
    "unplanned": lambda queue: queue.unplanned([job()]),
    "receive": lambda queue: queue.receive("w1", 10, 0.1),
    "reclaim": lambda queue: queue.reclaim("w1", 1.0, 10),
    "begin": lambda queue: queue.begin("w1", [Delivery("1", job(), 1)]),
    "finish": lambda queue: queue.finish([(Delivery("1", job(), 1), Result.SENT)]),
    "depth": lambda queue: queue.depth(),
    "oldest_age": lambda queue: queue.oldest_age(time.time()),
    "sent_count": lambda queue: queue.sent_count(SessionKey("telegram", OTHER)),
    "forget": lambda queue: queue.forget(SessionKey("telegram", OTHER)),
}


@pytest.mark.parametrize("operation", SQL_UNREACHABLE)
async def test_an_unreachable_database_raises_store_unavailable(
        operation: str, unreachable_engine: AsyncEngine) -> None:
    queue = SqlAlertQueue(unreachable_engine, secret=SECRET)
    with pytest.raises(StoreUnavailable) as caught:
        await SQL_UNREACHABLE[operation](queue)
    assert isinstance(caught.value.__cause__, SQLAlchemyError | OSError)

"""The alert queue on SQL (:class:`SqlAlertQueue`): the embedded default's durable queue on
its SQLite file, and a choice on PostgreSQL, with the Redis queue's behaviour.

Tables (:mod:`storage.models`): ``alert_job``, one row per job not finished (``id`` is the
order and is never reused; ``consumer``, ``handed_at`` in epoch seconds and ``attempts`` say
who has it since when and how many times it was handed out), each channel's jobs told apart
by ``channel``; ``alert_mark``, one row per exactly-once mark (:mod:`alerts.marks`): chat tag,
field and value, the alerts sent to a chat counted under the ``#sent`` field, and when it was
last written. A mark unwritten for ``mark_ttl`` (400 days, as the Redis marks) is deleted by
the next enqueue (the daily plan), at most once an hour per queue: a period is never planned
again that late (posted contributions are announced within ``ALERTS_FRESH_DAYS``, missing
months and the development within the year), so nothing is kept longer than it is needed.

Handing out is one ``UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING`` statement: on
PostgreSQL the subquery takes its rows ``FOR UPDATE SKIP LOCKED``, so two processes never
take the same job; SQLite runs one writer at a time. Every transaction that writes starts
with its write, so SQLite takes the write lock first (as ``BEGIN IMMEDIATE`` would) and
never has to upgrade a read. Reads of a SQLite file run in the event loop's thread
(:func:`storage.db.immediate_reader`). Every database failure surfaces as
:class:`~flows.ports.StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alerts.marks import DONE, MARK_TTL, PLANNED, SENDING, SENT_COUNTER, chat_tag, mark_field
from alerts.ports import Delivery, Result
from domain.alerts import AlertJob
from flows.ports import StoreUnavailable
from flows.types import SessionKey
from storage.db import immediate_reader, translate_errors
from storage.models import AlertMark, QueuedAlert

__all__ = ["BATCH", "POLL", "SqlAlertQueue"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
BATCH = 500  # jobs per statement (two bound values each: well under either database's cap)
POLL = 0.05  # seconds between looks at the table while a receive waits
EXPIRE_EVERY = 3600.0  # seconds between two deletions of expired marks by one queue

_JOB = QueuedAlert.__table__  # type: ignore[attr-defined]
_MARK = AlertMark.__table__  # type: ignore[attr-defined]
_HANDED = (_JOB.c.id, _JOB.c.payload, _JOB.c.attempts, _JOB.c.enqueued_at)
_Pair = tuple[str, str]  # a mark: chat tag, field


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), BATCH):
        yield items[start:start + BATCH]


def _marks_in(pairs: Sequence[_Pair]) -> sa.ColumnElement[bool]:
    return sa.tuple_(_MARK.c.tag, _MARK.c.field).in_(list(pairs))


_FINISHED = _MARK.c.value.startswith(DONE)


class SqlAlertQueue:
    """:class:`alerts.ports.AlertQueue` and :class:`flows.ports.AlertMarks` in SQLite or
    PostgreSQL (tables of :mod:`storage.models`, migrated by ``storage.db.migrate``).
    ``secret`` names the marks, as :class:`~alerts.queue_redis.RedisAlertQueue` does;
    ``channel`` picks the jobs this queue holds (each channel's jobs wait on their own, see
    :mod:`alerts.queues`), the marks are shared; ``mark_ttl`` is how long a mark is kept
    after its last write."""

    def __init__(self, engine: AsyncEngine, *, secret: bytes, channel: str = "",
                 mark_ttl: float = MARK_TTL) -> None:
        if not mark_ttl > 0:
            raise ValueError("mark_ttl must be a positive number of seconds")
        self._engine = engine
        self._secret = secret
        self._channel = channel
        self._mark_ttl = mark_ttl
        self._expire_at = 0.0  # monotonic time of the next deletion of expired marks
        self._arrived = asyncio.Event()  # set by an enqueue in this process
        self._reader = immediate_reader(engine)
        if self._reader is not None:
            weakref.finalize(self, self._reader.dispose)

    def _mark(self, job: AlertJob) -> _Pair:
        return chat_tag(self._secret, job.key), mark_field(self._secret, job)

    # ------------------------------------------------------------------------- planning

    async def enqueue(self, jobs: Sequence[AlertJob]) -> int:
        """Mark and append the jobs whose identity was never planned (also within
        ``jobs``), one transaction per :data:`BATCH` jobs: the marks inserted unless present,
        then a job for each mark actually inserted. Returns how many were appended."""
        await self._expire()
        added = 0
        for batch in _chunks(jobs):
            fresh: dict[_Pair, str] = {}  # each identity's first job, as its payload
            for job in batch:
                fresh.setdefault(self._mark(job), job.encode())
            with translate_errors(StoreUnavailable, "alert_enqueue"):
                async with self._engine.begin() as conn:
                    added += await self._append(conn, fresh)
        if added:
            self._arrived.set()
        return added

    async def _expire(self) -> None:
        """Delete the marks unwritten for ``mark_ttl`` (at most once per
        :data:`EXPIRE_EVERY`); a failure is logged and tried again at the next enqueue."""
        if time.monotonic() < self._expire_at:
            return
        cutoff = time.time() - self._mark_ttl
        try:
            with translate_errors(StoreUnavailable, "alert_expire"):
                async with self._engine.begin() as conn:
                    gone = (await conn.execute(sa.delete(_MARK).where(
                        _MARK.c.written_at < cutoff))).rowcount
        except StoreUnavailable as exc:
            _log.warning("could not delete expired alert marks: %s", exc)
            return
        self._expire_at = time.monotonic() + EXPIRE_EVERY
        if gone:
            _log.info("deleted %d expired alert marks", gone)

    async def _append(self, conn: AsyncConnection, fresh: Mapping[_Pair, str]) -> int:
        # The marks in key order, so two planners never wait on each other crosswise.
        now = time.time()
        rows = [{"tag": tag, "field": field, "value": PLANNED, "written_at": now}
                for tag, field in sorted(fresh)]
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        result = await conn.execute(insert(_MARK).values(rows).on_conflict_do_nothing()
                                    .returning(_MARK.c.tag, _MARK.c.field))
        planned = {(tag, field) for tag, field in result}
        new = [{"channel": self._channel, "payload": payload, "enqueued_at": now,
                "attempts": 0} for mark, payload in fresh.items() if mark in planned]
        if new:
            await conn.execute(sa.insert(_JOB), new)
        return len(new)

    async def unplanned(self, jobs: Sequence[AlertJob]) -> list[AlertJob]:
        """The jobs :meth:`enqueue` would append, one query per :data:`BATCH`; writes
        nothing."""
        marks = [self._mark(job) for job in jobs]
        planned: set[_Pair] = set()
        for chunk in _chunks(sorted(set(marks))):
            query = sa.select(_MARK.c.tag, _MARK.c.field).where(_marks_in(chunk))
            planned.update((tag, field) for tag, field in await self._read("alert_unplanned",
                                                                           query))
        fresh: list[AlertJob] = []
        for job, mark in zip(jobs, marks, strict=True):
            if mark not in planned:
                planned.add(mark)
                fresh.append(job)
        return fresh

    # -------------------------------------------------------------------------- sending

    async def receive(self, consumer: str, count: int, block: float) -> list[Delivery]:
        """Up to ``count`` jobs never handed out, oldest first, waiting up to ``block``
        seconds when there is none (0: not at all): the table is looked at every
        :data:`POLL` seconds, at once after an enqueue in this process. A malformed row is
        deleted and logged (its class only), not returned."""
        deadline = time.monotonic() + max(0.0, block)
        waiting = _JOB.c.consumer.is_(None)
        while True:
            self._arrived.clear()
            handed = await self._hand_out("alert_receive", consumer, waiting, count)
            remaining = deadline - time.monotonic()
            if handed or remaining <= 0:
                return handed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(POLL, remaining))

    async def reclaim(self, consumer: str, idle: float, count: int) -> list[Delivery]:
        """Up to ``count`` jobs handed out more than ``idle`` seconds ago and not finished,
        oldest first, now ``consumer``'s, each handed out once more."""
        cutoff = time.time() - max(0.0, idle)
        stale = sa.and_(_JOB.c.consumer.is_not(None), _JOB.c.handed_at <= cutoff)
        return await self._hand_out("alert_reclaim", consumer, stale, count)

    async def _hand_out(self, operation: str, consumer: str, which: sa.ColumnElement[bool],
                        count: int) -> list[Delivery]:
        """The oldest ``count`` jobs of this channel matching ``which``, handed to
        ``consumer`` in one statement."""
        picked = (sa.select(_JOB.c.id).where(_JOB.c.channel == self._channel, which)
                  .order_by(_JOB.c.id).limit(max(1, count))
                  .with_for_update(skip_locked=True)  # PostgreSQL only: SQLite ignores it
                  .cte("picked").prefix_with("MATERIALIZED", dialect="postgresql"))
        statement = (sa.update(_JOB).where(_JOB.c.id.in_(sa.select(picked.c.id)), which)
                     .values(consumer=consumer, handed_at=time.time(),
                             attempts=_JOB.c.attempts + 1)
                     .returning(*_HANDED))
        with translate_errors(StoreUnavailable, operation):
            async with self._engine.begin() as conn:
                rows = sorted(tuple(row) for row in await conn.execute(statement))
        deliveries: list[Delivery] = []
        broken: list[int] = []
        for row_id, payload, attempts, enqueued_at in rows:
            try:
                job = AlertJob.decode(payload)
            except ValueError as exc:
                _log.warning("dropped a malformed alert job row (%s)", type(exc).__name__)
                broken.append(row_id)
                continue
            deliveries.append(Delivery(str(row_id), job, int(attempts), float(enqueued_at)))
        if broken:
            await self._delete_jobs(operation, broken)
        return deliveries

    async def _delete_jobs(self, operation: str, ids: Sequence[int]) -> None:
        with translate_errors(StoreUnavailable, operation):
            async with self._engine.begin() as conn:
                await conn.execute(sa.delete(_JOB).where(_JOB.c.id.in_(list(ids))))

    async def begin(self, consumer: str, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Mark the deliveries ``s:<consumer>``, one transaction per :data:`BATCH`; those
        whose identity is finished are deleted and left out. A delivery whose chat's marks
        were erased (:meth:`forget`) is returned unmarked: the worker finds the subscription
        gone and skips it."""
        allowed: list[Delivery] = []
        for batch in _chunks(deliveries):
            marks = [self._mark(delivery.job) for delivery in batch]
            pairs = sorted(set(marks))
            with translate_errors(StoreUnavailable, "alert_begin"):
                async with self._engine.begin() as conn:
                    await conn.execute(sa.update(_MARK)
                                       .where(_marks_in(pairs), sa.not_(_FINISHED))
                                       .values(value=SENDING + consumer,
                                               written_at=time.time()))
                    finished = {(tag, field) for tag, field in await conn.execute(
                        sa.select(_MARK.c.tag, _MARK.c.field)
                        .where(_marks_in(pairs), _FINISHED))}
                    gone = [int(delivery.id) for delivery, mark in zip(batch, marks, strict=True)
                            if mark in finished]
                    if gone:
                        await conn.execute(sa.delete(_JOB).where(_JOB.c.id.in_(gone)))
            allowed += [delivery for delivery, mark in zip(batch, marks, strict=True)
                        if mark not in finished]
        return allowed

    async def finish(self, outcomes: Sequence[tuple[Delivery, Result]]) -> None:
        """Record each outcome on its identity's mark unless one was recorded before (then a
        sent one is counted once; an identity twice in ``outcomes`` takes its first), then
        delete the job; one transaction per :data:`BATCH`."""
        for batch in _chunks(outcomes):
            first: dict[_Pair, Result] = {}
            for delivery, result in batch:
                first.setdefault(self._mark(delivery.job), Result(result))
            ids = [int(delivery.id) for delivery, _ in batch]
            with translate_errors(StoreUnavailable, "alert_finish"):
                async with self._engine.begin() as conn:
                    sent = await self._record(conn, first)
                    await self._count_sent(conn, sent)
                    await conn.execute(sa.delete(_JOB).where(_JOB.c.id.in_(ids)))

    @staticmethod
    async def _record(conn: AsyncConnection, outcomes: Mapping[_Pair, Result]) -> Counter[str]:
        """Write each outcome on its mark unless finished before; the chats' newly sent."""
        sent: Counter[str] = Counter()
        for result in Result:
            pairs = sorted(pair for pair, outcome in outcomes.items() if outcome == result)
            if not pairs:
                continue
            rows = await conn.execute(sa.update(_MARK)
                                      .where(_marks_in(pairs), sa.not_(_FINISHED))
                                      .values(value=DONE + result.value,
                                              written_at=time.time())
                                      .returning(_MARK.c.tag))
            if result == Result.SENT:
                sent.update(tag for (tag,) in rows)
        return sent

    @staticmethod
    async def _count_sent(conn: AsyncConnection, sent: Counter[str]) -> None:
        if not sent:
            return
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        now = time.time()
        statement = insert(_MARK).values([{"tag": tag, "field": SENT_COUNTER, "value": str(n),
                                           "written_at": now}
                                          for tag, n in sorted(sent.items())])
        total = sa.cast(_MARK.c.value, sa.Integer) + sa.cast(statement.excluded.value,
                                                              sa.Integer)
        await conn.execute(statement.on_conflict_do_update(
            index_elements=[_MARK.c.tag, _MARK.c.field],
            set_={"value": sa.cast(total, sa.String), "written_at": now}))

    # ---------------------------------------------------------------------- observation

    async def depth(self) -> int:
        """Jobs of this channel enqueued and not finished (finished jobs are deleted)."""
        query = sa.select(sa.func.count()).select_from(_JOB).where(
            _JOB.c.channel == self._channel)
        [(count,)] = await self._read("alert_depth", query)
        return int(count)

    async def oldest_age(self, now: float) -> float:
        """Seconds since the oldest unfinished job was enqueued (0 when there is none)."""
        query = sa.select(sa.func.min(_JOB.c.enqueued_at)).where(
            _JOB.c.channel == self._channel)
        [(oldest,)] = await self._read("alert_oldest_age", query)
        return 0.0 if oldest is None else max(0.0, now - float(oldest))

    # ---------------------------------------------------------------------------- marks

    async def sent_count(self, key: SessionKey) -> int:
        """How many alerts were sent to the chat."""
        query = sa.select(_MARK.c.value).where(_MARK.c.tag == chat_tag(self._secret, key),
                                               _MARK.c.field == SENT_COUNTER)
        rows = await self._read("alert_sent_count", query)
        return int(rows[0][0]) if rows else 0

    async def forget(self, key: SessionKey) -> int:
        """Erase the chat's marks and its counter, and delete its queued jobs (they hold its
        chat id and KPJ); returns how many marks there were. A job a worker holds now is
        skipped by it (the subscription is gone)."""
        statement = (sa.delete(_MARK).where(_MARK.c.tag == chat_tag(self._secret, key))
                     .returning(_MARK.c.field))
        prefix = f"{key.channel}|{key.chat_id}|".replace("\\", "\\\\")
        prefix = prefix.replace("%", "\\%").replace("_", "\\_")
        jobs = sa.delete(_JOB).where(_JOB.c.channel == self._channel,
                                     _JOB.c.payload.like(prefix + "%", escape="\\"))
        with translate_errors(StoreUnavailable, "alert_forget"):
            async with self._engine.begin() as conn:
                fields = [field for (field,) in await conn.execute(statement)]
                await conn.execute(jobs)
        return sum(field != SENT_COUNTER for field in fields)

    async def _read(self, operation: str, query: sa.Executable) -> list[tuple[Any, ...]]:
        """The rows of ``query``: in this thread on a SQLite file, else through the engine."""
        with translate_errors(StoreUnavailable, operation):
            if self._reader is not None:
                with self._reader.connect() as connection:
                    return [tuple(row) for row in connection.execute(query)]
            async with self._engine.connect() as conn:
                return [tuple(row) for row in await conn.execute(query)]

"""The alert queue on Redis Streams, shared by every process (:class:`RedisAlertQueue`).

Why Redis Streams: Redis is already in the stack (sessions, inbox); a consumer group keeps each
handed-out job pending until acknowledged, with its delivery count, and ``XCLAIM`` hands a dead
worker's jobs to another; no new service or library.

Keys, under the prefix: ``alerts:jobs:<channel>``, a channel's stream (consumer group
``senders``, created on first use), one field per entry holding :meth:`AlertJob.encode`, the
planned time being the entry id's milliseconds; ``alerts:marks:<chat tag>``, a hash of the
chat's exactly-once marks (:mod:`alerts.marks`). A finished job is acknowledged and deleted,
so the stream's length is the jobs not finished. Every script touches one stream and the
marks of the chats its batch names (one Redis, not a cluster, as the README's production
requirements say).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import redis.asyncio
from redis.exceptions import RedisError, ResponseError

from alerts.marks import DONE, MARK_TTL, PLANNED, SENDING, SENT_COUNTER, chat_tag, job_tags
from alerts.ports import Delivery, Result
from domain.alerts import AlertJob
from flows.ports import StoreUnavailable
from flows.types import SessionKey

__all__ = ["BATCH", "GROUP", "RedisAlertQueue"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
GROUP = "senders"
BATCH = 500  # jobs per script call
_FIELD = "j"  # the entry's one field

# A batch travels as one text argument of lines (an argument each would cost redis-py's
# packing about 3 microseconds per job), and the scripts name each chat's marks from the
# prefix and the tag in it: keys not declared in KEYS, which one Redis (not a cluster) allows.
# KEYS: stream; ARGV: marks ttl ms, marks prefix, then per job the lines tag, field, payload.
# A job is appended only when its mark is new, in the same atomic call: never a mark without
# its job. Returns how many were appended.
_ENQUEUE = """local added = 0
for tag, field, job in string.gmatch(ARGV[3], '([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n') do
  local marks = ARGV[2] .. tag
  if redis.call('HSETNX', marks, field, '""" + PLANNED + """') == 1 then
    redis.call('PEXPIRE', marks, ARGV[1])
    redis.call('XADD', KEYS[1], '*', '""" + _FIELD + """', job)
    added = added + 1
  end
end
return added"""
# KEYS: stream; ARGV: group, consumer, min idle ms, count. Claims the entries pending longer
# than the idle time: {id, delivery count, payload}... (the count includes this claim). An
# entry deleted meanwhile is dropped from the pending list (Redis 7 does it itself).
_RECLAIM = """local pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+',
                                 ARGV[4])
local out = {}
for _, p in ipairs(pending) do
  local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], p[1])
  local entry = claimed[1]
  if entry then
    local fields, payload = entry[2], ''
    for i = 1, #fields, 2 do
      if fields[i] == '""" + _FIELD + """' then payload = fields[i + 1] end
    end
    out[#out + 1] = p[1]
    out[#out + 1] = p[4] + 1
    out[#out + 1] = payload
  elseif entry == false then
    redis.call('XACK', KEYS[1], ARGV[1], p[1])
  end
end
return out"""
# KEYS: stream; ARGV: group, the sending mark, marks ttl ms, marks prefix, then per delivery
# the lines id, tag, field. {1|0}...: 1 to send; 0 when finished before (acknowledged and
# deleted). A chat's missing marks (erased) are not written back: the worker skips the job.
_BEGIN = """local keep = {}
for id, tag, field in string.gmatch(ARGV[5], '([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n') do
  local marks = ARGV[4] .. tag
  local mark = redis.call('HGET', marks, field)
  if mark and string.sub(mark, 1, 2) == '""" + DONE + """' then
    redis.call('XACK', KEYS[1], ARGV[1], id)
    redis.call('XDEL', KEYS[1], id)
    keep[#keep + 1] = 0
  else
    if mark then
      redis.call('HSET', marks, field, ARGV[2])
      redis.call('PEXPIRE', marks, ARGV[3])
    end
    keep[#keep + 1] = 1
  end
end
return keep"""
# KEYS: stream; ARGV: group, marks ttl ms, marks prefix, then per delivery the lines id, tag,
# field, result. The first finish of an identity is recorded (and counted when sent); a later
# one (a slow worker's, after a reclaim) changes nothing. Every job is removed.
_FINISH = """local n = 0
for id, tag, field, result in string.gmatch(ARGV[4],
    '([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n') do
  local marks = ARGV[3] .. tag
  local mark = redis.call('HGET', marks, field)
  if mark and string.sub(mark, 1, 2) ~= '""" + DONE + """' then
    redis.call('HSET', marks, field, '""" + DONE + """' .. result)
    if result == '""" + Result.SENT.value + """' then
      redis.call('HINCRBY', marks, '""" + SENT_COUNTER + """', 1)
    end
    redis.call('PEXPIRE', marks, ARGV[2])
  end
  redis.call('XACK', KEYS[1], ARGV[1], id)
  redis.call('XDEL', KEYS[1], id)
  n = n + 1
end
return n"""
# KEYS: marks; the number of marks (the counter is not one), then the hash is gone.
_FORGET = """local n = redis.call('HLEN', KEYS[1])
if redis.call('HEXISTS', KEYS[1], '""" + SENT_COUNTER + """') == 1 then n = n - 1 end
redis.call('DEL', KEYS[1])
return n"""


@contextmanager
def _unavailable() -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:  # never a job, a chat or a KPJ in the message
        raise StoreUnavailable(f"the alert queue failed: {type(exc).__name__}") from exc


def _text(raw: object) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _planned_at(entry_id: str) -> float:
    """The epoch seconds of a stream entry id (``<ms>-<seq>``)."""
    return int(entry_id.partition("-")[0]) / 1000


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), BATCH):
        yield items[start:start + BATCH]


class RedisAlertQueue:
    """:class:`alerts.ports.AlertQueue` and :class:`flows.ports.AlertMarks` on Redis Streams
    (see the module docstring for the keys). ``secret`` names the marks; ``mark_ttl`` is how
    long a chat's marks are kept after their last write; ``channel`` names the stream
    (``{prefix}alerts:jobs:<channel>``: each channel's jobs wait on their own, see
    :mod:`alerts.queues`), the marks are shared.

    Works with a client that decodes responses or one that returns bytes. A blocking
    :meth:`receive` must wait less than the client's socket timeout."""

    def __init__(self, client: redis.asyncio.Redis, *, secret: bytes, prefix: str = "bpjs:",
                 mark_ttl: float = MARK_TTL, channel: str = "") -> None:
        if not mark_ttl > 0:
            raise ValueError("mark_ttl must be a positive number of seconds")
        self._client = client
        self._secret = secret
        self._prefix = prefix
        self._stream = f"{prefix}alerts:jobs" + (f":{channel}" if channel else "")
        self._marks = f"{prefix}alerts:marks:"
        self._ttl_ms = max(1, math.ceil(mark_ttl * 1000))
        self._group_ready = False
        self._enqueue, self._reclaim, self._begin, self._finish, self._forget = (
            client.register_script(lua) for lua in (_ENQUEUE, _RECLAIM, _BEGIN, _FINISH,
                                                    _FORGET))

    @property
    def stream(self) -> str:
        """The stream's key (the benchmark measures its memory)."""
        return self._stream

    def marks_key(self, key: SessionKey) -> str:
        """The key of the hash holding the chat's marks."""
        return self._marks + chat_tag(self._secret, key)

    def _mark(self, job: AlertJob) -> tuple[str, str]:
        tag, field = job_tags(self._secret, job)
        return self._marks + tag, field

    # ------------------------------------------------------------------------- planning

    async def enqueue(self, jobs: Sequence[AlertJob]) -> int:
        """Mark and append the jobs whose identity was never planned (also within
        ``jobs``), atomically per job, one script call per :data:`BATCH` jobs; returns how
        many were appended. A call retried after a lost reply appends nothing twice.

        The next batch is made ready while the previous one runs in Redis; it is sent only
        once the previous one is done, so the jobs keep their order on the stream."""
        added = 0
        running: asyncio.Future[Any] | None = None
        try:
            for batch in _chunks(jobs):
                lines = self._job_lines(batch)  # raises on a job that cannot be encoded
                if running is not None:
                    previous, running = running, None
                    with _unavailable():
                        added += int(await previous)
                running = asyncio.ensure_future(
                    self._enqueue([self._stream], [self._ttl_ms, self._marks, lines]))
            if running is not None:
                previous, running = running, None
                with _unavailable():
                    added += int(await previous)
        finally:
            if running is not None:  # the batch sent before the one that could not be made
                with contextlib.suppress(Exception):
                    await running
        return added

    def _job_lines(self, jobs: Sequence[AlertJob]) -> str:
        """The :data:`_ENQUEUE` lines of ``jobs``: tag, field and payload each."""
        secret = self._secret
        parts: list[str] = []
        for job in jobs:
            tag, field = job_tags(secret, job)
            parts.append(f"{tag}\n{field}\n{job.encode()}\n")
        return "".join(parts)

    async def unplanned(self, jobs: Sequence[AlertJob]) -> list[AlertJob]:
        """The jobs :meth:`enqueue` would append, in one pipelined round trip; writes
        nothing."""
        if not jobs:
            return []
        marks = [self._mark(job) for job in jobs]
        with _unavailable():
            async with self._client.pipeline(transaction=False) as pipe:
                for name, field in marks:
                    pipe.hexists(name, field)
                planned = await pipe.execute()
        fresh: list[AlertJob] = []
        seen: set[tuple[str, str]] = set()
        for job, mark, exists in zip(jobs, marks, planned, strict=True):
            if not exists and mark not in seen:
                seen.add(mark)
                fresh.append(job)
        return fresh

    # -------------------------------------------------------------------------- sending

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # From id 0: jobs enqueued before the first worker started are delivered too.
            await self._client.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _grouped(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """``call`` once the group exists; created again when the stream was lost (a Redis
        without persistence restarted, or the key was deleted)."""
        with _unavailable():
            await self._ensure_group()
            try:
                return await call()
            except ResponseError as exc:
                if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                    raise
            self._group_ready = False
            await self._ensure_group()
            return await call()

    async def receive(self, consumer: str, count: int, block: float) -> list[Delivery]:
        """Up to ``count`` jobs never handed out (``XREADGROUP``), waiting up to ``block``
        seconds when there is none (0: not at all). A malformed entry is acknowledged,
        deleted and logged (its class only), not returned."""
        block_ms = math.ceil(block * 1000) if block > 0 else None

        async def read() -> object:
            return await self._client.xreadgroup(GROUP, consumer, {self._stream: ">"},
                                                 count=max(1, count), block=block_ms)

        reply = await self._grouped(read)
        return await self._deliveries([(_text(entry_id), 1, _payload(fields))
                                       for entry_id, fields in _entries(reply)])

    async def reclaim(self, consumer: str, idle: float, count: int) -> list[Delivery]:
        """Up to ``count`` jobs handed out more than ``idle`` seconds ago and not finished,
        now ``consumer``'s; ``attempts`` is the job's true delivery count (pending list and
        claim in one script, so two reclaiming workers never both take a job)."""
        args: list[str | int] = [GROUP, consumer, max(0, int(idle * 1000)), max(1, count)]
        flat = await self._grouped(lambda: self._reclaim([self._stream], args))
        found = [(_text(flat[i]), int(flat[i + 1]), _text(flat[i + 2]) or None)
                 for i in range(0, len(flat), 3)]
        return await self._deliveries(found)

    async def _deliveries(self, entries: Sequence[tuple[str, int, str | None]],
                          ) -> list[Delivery]:
        """The entries as deliveries; malformed ones are removed."""
        deliveries: list[Delivery] = []
        broken: list[str] = []
        for entry_id, attempts, payload in entries:
            try:
                if payload is None:
                    raise ValueError("an alert job entry without its field")
                job = AlertJob.decode(payload)
            except ValueError as exc:
                _log.warning("dropped a malformed alert job entry (%s)", type(exc).__name__)
                broken.append(entry_id)
                continue
            deliveries.append(Delivery(entry_id, job, attempts, _planned_at(entry_id)))
        if broken:
            with _unavailable():
                async with self._client.pipeline(transaction=True) as pipe:
                    pipe.xack(self._stream, GROUP, *broken)
                    pipe.xdel(self._stream, *broken)
                    await pipe.execute()
        return deliveries

    async def begin(self, consumer: str, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Mark the deliveries ``s:<consumer>``, one script call per :data:`BATCH`; those
        whose identity is finished are acknowledged, deleted and left out. A delivery whose
        chat's marks were erased (:meth:`forget`) is returned unmarked: the worker finds the
        subscription gone and skips it."""
        allowed: list[Delivery] = []
        for batch in _chunks(deliveries):
            lines = "".join(f"{d.id}\n{tag}\n{field}\n"
                            for d in batch for tag, field in (job_tags(self._secret, d.job),))
            with _unavailable():
                keep = await self._begin([self._stream], [GROUP, SENDING + consumer,
                                                          self._ttl_ms, self._marks, lines])
            allowed += [d for d, ok in zip(batch, keep, strict=True) if int(ok)]
        return allowed

    async def finish(self, outcomes: Sequence[tuple[Delivery, Result]]) -> None:
        """Record each outcome on its identity's mark unless one was recorded before (then a
        sent one is counted once), then acknowledge and delete the job; one script call per
        :data:`BATCH`."""
        for batch in _chunks(outcomes):
            lines = "".join(f"{d.id}\n{tag}\n{field}\n{Result(result).value}\n"
                            for d, result in batch
                            for tag, field in (job_tags(self._secret, d.job),))
            with _unavailable():
                await self._finish([self._stream], [GROUP, self._ttl_ms, self._marks, lines])

    # ---------------------------------------------------------------------- observation

    async def depth(self) -> int:
        """Jobs enqueued and not finished (``XLEN``: finished jobs are deleted)."""
        with _unavailable():
            return int(await self._client.xlen(self._stream))

    async def oldest_age(self, now: float) -> float:
        """Seconds since the oldest unfinished job was enqueued (0 when there is none)."""
        with _unavailable():
            first = await self._client.xrange(self._stream, count=1)
        if not first:
            return 0.0
        return max(0.0, now - _planned_at(_text(first[0][0])))

    # ---------------------------------------------------------------------------- marks

    async def sent_count(self, key: SessionKey) -> int:
        """How many alerts were sent to the chat."""
        with _unavailable():
            raw = await self._client.hget(self.marks_key(key), SENT_COUNTER)
        return 0 if raw is None else int(_text(raw))

    async def forget(self, key: SessionKey) -> int:
        """Erase the chat's marks and its counter; returns how many marks there were."""
        with _unavailable():
            return int(await self._forget([self.marks_key(key)], []))


def _entries(reply: Any) -> list[tuple[object, object]]:
    """``XREADGROUP``'s entries, whether the reply is RESP2's list of (stream, entries) or
    RESP3's mapping (redis-py wraps each stream's entries in one more list there)."""
    if not reply:
        return []
    groups = list(reply.values()) if isinstance(reply, dict) else [p[1] for p in reply]
    found: list[tuple[object, object]] = []
    for group in groups:
        wrapped = len(group) == 1 and isinstance(group[0], list)
        found.extend(group[0] if wrapped else group)
    return found


def _payload(fields: object) -> str | None:
    """The job's text in an entry's fields (``None``: absent, or the entry was deleted)."""
    if not isinstance(fields, dict):
        return None
    for name, value in fields.items():
        if _text(name) == _FIELD:
            return _text(value)
    return None

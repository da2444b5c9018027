"""Inbox backends: each chat's updates queued until served, one runner per chat at a time.

An :class:`~channels.inbox.Inbox` keeps the updates a channel has acknowledged and not yet
served, per chat, ordered by a sequence number (Telegram's ``update_id``; for a platform
without one, the order of arrival), and hands a chat's *turn* to one runner at a time: the
process whose :meth:`put` found the chat idle serves every update queued for it, in order,
until none is left, wherever they were received. A runner that dies keeps its turn only
until its lease runs out; :meth:`stranded` then hands the chat to another runner.

:class:`RedisInbox` is the production backend (shared by every process; durable with Redis
persistence, see the README's production requirements). :class:`MemoryInbox` is the embedded
default for one process. Queued updates are raw platform payloads, personal data: they live
only until served (a day at most, then they expire) and are never logged.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import NamedTuple

import redis.asyncio
from redis.exceptions import RedisError

from flows.ports import StoreUnavailable

__all__ = ["LEASE", "QUEUE_TTL", "MemoryInbox", "Put", "RedisInbox"]

LEASE = 30.0  # a runner's turn lasts this long unless renewed
QUEUE_TTL = 24 * 3600.0  # a chat's queue expires this long after its last update

# KEYS: queue, payloads, runner, counter, active; ARGV: payload, seq ('' = the next of the
# chat's counter), token, lease ms, queue ttl ms, now ms, chat. {1|0, seq}: 1 when the caller
# now holds the chat's turn. HSETNX makes a repeated put (the same seq) queue nothing more.
_PUT = """local seq = ARGV[2]
if seq == '' then
  seq = tostring(redis.call('INCR', KEYS[4]))
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
end
if redis.call('HSETNX', KEYS[2], seq, ARGV[1]) == 1 then
  redis.call('ZADD', KEYS[1], seq, seq)
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[5], ARGV[6], ARGV[7])
if redis.call('SET', KEYS[3], ARGV[3], 'NX', 'PX', ARGV[4])
  or redis.call('GET', KEYS[3]) == ARGV[3] then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  return {1, seq, first == seq and 1 or 0}
end
return {0, seq, 0}"""
# KEYS: queue, payloads, runner, active; ARGV: token, done seq (''), lease ms, now ms, chat.
# -1: the turn is not the caller's; 0: nothing queued (the turn is released); else
# {seq, payload} of the lowest queued update. Safe to retry: removing ``done`` is idempotent.
_NEXT = """if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -1 end
if ARGV[2] ~= '' then
  redis.call('ZREM', KEYS[1], ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[2])
end
while true do
  local first = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  if not first then
    redis.call('DEL', KEYS[3])
    redis.call('ZREM', KEYS[4], ARGV[5])
    return 0
  end
  local payload = redis.call('HGET', KEYS[2], first)
  if payload then
    redis.call('PEXPIRE', KEYS[3], ARGV[3])
    redis.call('ZADD', KEYS[4], ARGV[4], ARGV[5])
    return {first, payload}
  end
  redis.call('ZREM', KEYS[1], first)
end"""
# KEYS: runner, active; ARGV: token, chat. Hands the turn back: the chat is stranded at once.
_RELEASE = """if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
return 1"""
# KEYS: active, then runner keys; ARGV: lease ms, now ms, then for each runner its token and
# chat. A list of 1 (renewed) or 0 (the turn was lost).
_RENEW = """local kept = {}
for i = 2, #KEYS do
  local token, chat = ARGV[2 * i - 1], ARGV[2 * i]
  if redis.call('GET', KEYS[i]) == token then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    redis.call('ZADD', KEYS[1], ARGV[2], chat)
    kept[#kept + 1] = 1
  else
    kept[#kept + 1] = 0
  end
end
return kept"""
# KEYS: active; ARGV: cutoff ms, limit, token base, lease ms, now ms, key prefix. Claims chats
# idle since ``cutoff`` whose queue holds updates and whose runner is gone: {chat, token}...
# A chat with an empty queue leaves the index. (It builds each chat's keys from the prefix: one
# Redis, not a cluster, as the README's production requirements say.)
_STRANDED = """local found = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1],
                                   'LIMIT', 0, ARGV[2])
local claimed = {}
for i, chat in ipairs(found) do
  local tag = ARGV[6] .. '{' .. chat .. '}'
  if redis.call('ZCARD', tag .. ':queue') == 0 then
    redis.call('ZREM', KEYS[1], chat)
  else
    local token = ARGV[3] .. ':' .. i
    if redis.call('SET', tag .. ':runner', token, 'NX', 'PX', ARGV[4]) then
      redis.call('ZADD', KEYS[1], ARGV[5], chat)
      claimed[#claimed + 1] = chat
      claimed[#claimed + 1] = token
    end
  end
end
return claimed"""
# KEYS: queue, payloads, runner, counter, active; ARGV: chat. A chat's queue erased.
_FORGET = """redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return redis.call('ZREM', KEYS[5], ARGV[1])"""


class Put(NamedTuple):
    """What :meth:`RedisInbox.put` did: the update's sequence number; a token when the caller
    now holds the chat's turn (``None``: another runner holds it and will serve this update
    too); and whether this update is the first queued, so the new turn starts with it (no
    :meth:`RedisInbox.next` needed)."""

    seq: int
    token: str | None
    first: bool


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


@contextmanager
def _unavailable() -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:  # never the payload or the chat in the message
        raise StoreUnavailable(f"the inbox failed: {type(exc).__name__}") from None


class RedisInbox:
    """The inbox in Redis, shared by every process (one Redis; see the module docstring).

    A put costs one round trip, each served update one more (:meth:`next` drops the served
    update and returns the next in the same call). Keys, under ``prefix`` and the chat's hash
    tag: ``inbox:{chat}:queue`` (a sorted set of sequence numbers), ``:payloads`` (a hash),
    ``:runner`` (the turn's token, with its lease), ``:seq`` (a counter); and one index of
    chats with queued updates, ``inbox:active``, scored by their runner's last sign of life."""

    def __init__(self, client: redis.asyncio.Redis, *, prefix: str = "bpjs:",
                 lease: float = LEASE, ttl: float = QUEUE_TTL) -> None:
        self._client = client
        self._prefix = f"{prefix}inbox:"
        self._lease_ms, self._ttl_ms = _ms(lease), _ms(ttl)
        self._active = f"{self._prefix}active"
        self._put, self._next, self._release, self._renew, self._stranded, self._forget = (
            client.register_script(lua)
            for lua in (_PUT, _NEXT, _RELEASE, _RENEW, _STRANDED, _FORGET))

    def _keys(self, chat: str) -> list[str]:
        tag = f"{self._prefix}{{{chat}}}"
        return [f"{tag}:queue", f"{tag}:payloads", f"{tag}:runner", f"{tag}:seq"]

    async def put(self, chat: str, payload: str, seq: int | None = None) -> Put:
        """Queue ``payload`` for ``chat`` (under ``seq``, else the chat's next number). The
        update is stored when this returns; :class:`StoreUnavailable` when it is not."""
        token = secrets.token_hex(12)
        with _unavailable():
            held, number, first = await self._put(
                [*self._keys(chat), self._active],
                [payload, "" if seq is None else str(seq), token, self._lease_ms, self._ttl_ms,
                 _now_ms(), chat])
        return Put(int(number), token if held == 1 else None, held == 1 and first == 1)

    async def next(self, chat: str, token: str, done: int | None = None,
                   ) -> tuple[int, str] | None:
        """Drop ``done`` (served) and return the lowest queued update, renewing the turn;
        ``None`` when nothing is queued (the turn is released) or the turn is not ``token``'s
        any more (a lease that ran out: another runner has the chat)."""
        queue, payloads, runner, _ = self._keys(chat)
        with _unavailable():
            reply = await self._next([queue, payloads, runner, self._active],
                                     [token, "" if done is None else str(done),
                                      self._lease_ms, _now_ms(), chat])
        if not isinstance(reply, list):
            return None
        return int(reply[0]), str(reply[1])

    async def release(self, chat: str, token: str) -> None:
        """Hand the turn back, keeping the queue: another runner takes the chat at once."""
        with _unavailable():
            await self._release([self._keys(chat)[2], self._active], [token, chat])

    async def renew(self, turns: Mapping[str, str]) -> set[str]:
        """Extend the leases of ``turns`` (chat to token) in one round trip: the chats whose
        turn was lost."""
        if not turns:
            return set()
        chats = list(turns)
        args: list[str | int] = [self._lease_ms, _now_ms()]
        for chat in chats:
            args += [turns[chat], chat]
        with _unavailable():
            kept = await self._renew([self._active, *(self._keys(c)[2] for c in chats)], args)
        return {chat for chat, ok in zip(chats, kept, strict=True) if not ok}

    async def stranded(self, idle: float, limit: int = 100) -> list[tuple[str, str]]:
        """Claim up to ``limit`` chats with queued updates and no live runner for ``idle``
        seconds: (chat, token) for each, the caller now holding its turn."""
        cutoff = _now_ms() - _ms(idle)
        with _unavailable():
            flat = await self._stranded([self._active],
                                        [cutoff, limit, secrets.token_hex(12), self._lease_ms,
                                         _now_ms(), self._prefix])
        return list(zip(flat[::2], flat[1::2], strict=True))

    async def pending(self, chat: str) -> int:
        """How many updates of ``chat`` are queued (served ones are gone)."""
        with _unavailable():
            return int(await self._client.zcard(self._keys(chat)[0]))

    async def forget(self, chat: str) -> None:
        """Erase the chat's queue and turn (erasure of a member's data)."""
        with _unavailable():
            await self._forget([*self._keys(chat), self._active], [chat])


class _Queue:
    __slots__ = ("items", "runner", "counter")

    def __init__(self) -> None:
        self.items: dict[int, str] = {}
        self.runner: str | None = None
        self.counter = 0


class MemoryInbox:
    """The inbox in this process (the embedded default): the same contract as
    :class:`RedisInbox` without leases, as a runner cannot outlive its process."""

    def __init__(self) -> None:
        self._chats: dict[str, _Queue] = {}

    async def put(self, chat: str, payload: str, seq: int | None = None) -> Put:
        """See :meth:`RedisInbox.put`."""
        queue = self._chats.setdefault(chat, _Queue())
        if seq is None:
            queue.counter += 1
            seq = queue.counter
        queue.items.setdefault(seq, payload)
        if queue.runner is not None:
            return Put(seq, None, False)
        queue.runner = secrets.token_hex(12)
        return Put(seq, queue.runner, min(queue.items) == seq)

    async def next(self, chat: str, token: str, done: int | None = None,
                   ) -> tuple[int, str] | None:
        """See :meth:`RedisInbox.next`."""
        queue = self._chats.get(chat)
        if queue is None or queue.runner != token:
            return None
        if done is not None:
            queue.items.pop(done, None)
        if not queue.items:
            del self._chats[chat]
            return None
        first = min(queue.items)
        return first, queue.items[first]

    async def release(self, chat: str, token: str) -> None:
        """See :meth:`RedisInbox.release`."""
        queue = self._chats.get(chat)
        if queue is not None and queue.runner == token:
            queue.runner = None

    async def renew(self, turns: Mapping[str, str]) -> set[str]:
        """See :meth:`RedisInbox.renew`."""
        return {chat for chat, token in turns.items()
                if (queue := self._chats.get(chat)) is None or queue.runner != token}

    async def stranded(self, idle: float, limit: int = 100) -> list[tuple[str, str]]:
        """See :meth:`RedisInbox.stranded`: chats handed back with updates queued."""
        claimed: list[tuple[str, str]] = []
        for chat, queue in list(self._chats.items()):
            if len(claimed) >= limit:
                break
            if queue.runner is None and queue.items:
                queue.runner = secrets.token_hex(12)
                claimed.append((chat, queue.runner))
            elif not queue.items and queue.runner is None:
                del self._chats[chat]
        return claimed

    async def pending(self, chat: str) -> int:
        """See :meth:`RedisInbox.pending`."""
        queue = self._chats.get(chat)
        return len(queue.items) if queue is not None else 0

    async def forget(self, chat: str) -> None:
        """See :meth:`RedisInbox.forget`."""
        self._chats.pop(chat, None)


def _now_ms() -> int:
    return int(time.time() * 1000)

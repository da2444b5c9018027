"""``SessionStore`` and ``KeyValueStore`` backends: in-process (embedded default) and Redis.

Both keep sessions as JSON strings, so a saved :class:`Session` is a snapshot. Errors and logs
never carry session contents, stored values or chat ids (a chat id can be a phone number)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Hashable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TypedDict, Unpack

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from flows.ports import AlreadySeen, SessionBusy, SessionSlot, StoreUnavailable
from flows.types import Session, SessionKey
from storage.inbox import RedisInbox

__all__ = ["MemorySessionStore", "Persistence", "RedisSessionStore", "redis_store_from_url",
           "warn_without_persistence"]

_log = logging.getLogger(__name__)
DEFAULT_TTL = 30 * 24 * 3600.0
ONCE_TTL = 24 * 3600.0  # how long a delivery named by ``once`` is remembered
_FIRST_DELAY, _MAX_DELAY = 0.002, 0.05  # lock polling backoff, seconds
_MIN_SWEEP = 64  # the memory store sweeps when it holds this many entries, or twice the live ones

# KEYS: lock, session[, seen]; ARGV: token, lock ttl ms[, seen ttl ms]. {1, session} when
# locked, 0 when the lock is taken, -1 when ``seen`` holds another token (a delivery handled
# before). GETs run first so that a WRONGTYPE error locks nothing; the token checks make a
# retried call harmless; ``seen`` is written only with the lock, so a process waiting for the
# lock finds the first one's mark when it gets its turn.
_ENTER = """if KEYS[3] then
  local seen = redis.call('GET', KEYS[3])
  if seen and seen ~= ARGV[1] then return -1 end
end
local session = redis.call('GET', KEYS[2])
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
  or redis.call('GET', KEYS[1]) == ARGV[1] then
  if KEYS[3] then redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[3]) end
  return {1, session}
end
return 0"""
# KEYS: lock, session, saved; ARGV: token, then json and ttl ms (no json: delete). 0: the lock
# was lost. ``saved`` remembers the token of the last save for a minute, so that a call retried
# after the first one ran (its reply lost with the connection) answers 1 again, not "lost".
_SAVE = """if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  if redis.call('GET', KEYS[3]) == ARGV[1] then return 1 end
  return 0
end
if ARGV[2] then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
else redis.call('DEL', KEYS[2]) end
redis.call('SET', KEYS[3], ARGV[1], 'PX', 60000)
return redis.call('DEL', KEYS[1])"""
# KEYS: lock[, seen]; ARGV: token. Also forgets ``seen`` when it is this token's: a lock
# call whose reply was lost must not leave the update marked as handled.
_RELEASE = """if KEYS[2] and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])"""
# KEYS: lock; ARGV: token, lock ttl ms. Extends a lock that is still ours.
_EXTEND = """if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])"""
# KEYS: value, claim; ARGV: value, ttl ms, token. 1 when stored by this call, also when a
# retried call finds its own earlier claim (the first reply was lost); 0 when taken before.
_PUT_IF_ABSENT = """if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', math.min(tonumber(ARGV[2]), 60000))
  return 1
end
if redis.call('GET', KEYS[2]) == ARGV[3] then return 1 end
return 0"""
# A counter without a TTL (just created) gets one; later increments keep the first deadline.
_INCR = """local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n"""


def _ms(seconds: float) -> int:
    if not seconds > 0:
        raise ValueError("ttl must be a positive number of seconds")
    return max(1, math.ceil(seconds * 1000))


def _text(raw: object) -> str | None:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return None if text is None else str(text)


def _encode(session: Session) -> str:
    return json.dumps(session.to_json_dict(), ensure_ascii=False, separators=(",", ":"))


def _decode(key: SessionKey, raw: object) -> Session | None:
    text = _text(raw)
    if text is None:
        return None
    try:
        loaded = json.loads(text)
    except (ValueError, RecursionError):
        loaded = None
    if not isinstance(loaded, dict):
        _log.warning("ignoring a corrupt stored session of a %s chat", key.channel)
        return None
    return Session.from_json_dict(loaded)


class _Expiring:
    """Values with deadlines on the monotonic clock, purged lazily and by amortized sweeps."""

    def __init__(self) -> None:
        self.items: dict[Hashable, tuple[float, str]] = {}
        self._sweep_at = _MIN_SWEEP

    def value(self, key: Hashable) -> str | None:
        deadline, value = self.items.get(key, (math.inf, None))
        if deadline <= time.monotonic():
            del self.items[key]
            return None
        return value

    def set(self, key: Hashable, value: str, ttl: float) -> None:
        now = time.monotonic()
        self.items[key] = (now + _ms(ttl) / 1000, value)
        if len(self.items) >= self._sweep_at:
            self.items = {k: item for k, item in self.items.items() if item[0] > now}
            self._sweep_at = max(_MIN_SWEEP, 2 * len(self.items))


class MemorySessionStore:
    """In-process session and value store. Locks live only while held or awaited and expired
    entries are swept, so memory follows the live chats, not every chat ever seen."""

    def __init__(self, *, ttl: float = DEFAULT_TTL, lock_timeout: float = 10.0) -> None:
        self._ttl = _ms(ttl) / 1000
        self._lock_timeout = lock_timeout
        self._locks: dict[SessionKey, asyncio.Lock] = {}
        self._users: Counter[SessionKey] = Counter()  # holders and waiters of each lock
        self._sessions = _Expiring()
        self._values = _Expiring()

    @asynccontextmanager
    async def chat(self, key: SessionKey, *,
                   once: str | None = None) -> AsyncIterator[SessionSlot]:
        """Lock the chat and load its session; save it and unlock when the block ends.
        ``once``: raise :class:`AlreadySeen` when that delivery was handled before."""
        if once is not None:
            self._check(key, once)  # a repeat is dropped at once, even while the chat is busy
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] += 1
        try:
            await self._acquire(key, lock)
            try:
                if once is not None:
                    self._check(key, once)
                    self._values.set(("seen", key, once), "1", ONCE_TTL)
                slot = SessionSlot(_decode(key, self._sessions.value(key)))
                yield slot
                self._save(key, slot.session, slot.ttl)
            finally:
                lock.release()
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]

    async def _acquire(self, key: SessionKey, lock: asyncio.Lock) -> None:
        try:
            async with asyncio.timeout(self._lock_timeout):
                await lock.acquire()
        except TimeoutError:
            raise SessionBusy(f"a {key.channel} chat stayed locked too long") from None

    def _check(self, key: SessionKey, once: str) -> None:
        if self._values.value(("seen", key, once)) is not None:
            raise AlreadySeen(f"a {key.channel} delivery was handled before")

    def _save(self, key: SessionKey, session: Session | None, ttl: float | None) -> None:
        if session is None:
            self._sessions.items.pop(key, None)
        else:
            self._sessions.set(key, _encode(session), _ms(ttl) / 1000 if ttl else self._ttl)

    async def get(self, name: str) -> str | None:
        """The value, or ``None`` when absent or expired."""
        return self._values.value(name)

    async def get_many(self, names: Sequence[str]) -> list[str | None]:
        """The values of ``names`` in order (``None`` where absent or expired)."""
        return [self._values.value(name) for name in names]

    async def put(self, name: str, value: str, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds, replacing any earlier value."""
        self._values.set(name, value, ttl)

    async def put_if_absent(self, name: str, value: str, ttl: float) -> bool:
        """Store only when absent; true when stored."""
        if self._values.value(name) is not None:
            return False
        self._values.set(name, value, ttl)
        return True

    async def incr(self, name: str, ttl: float) -> int:
        """Add one to a counter; a new counter expires after ``ttl`` seconds."""
        current = self._values.value(name)
        if current is None:
            self._values.set(name, "1", ttl)
            return 1
        try:
            count = int(current) + 1
        except ValueError:
            raise StoreUnavailable("the value is not an integer counter") from None
        self._values.items[name] = (self._values.items[name][0], str(count))
        return count

    async def delete(self, *names: str) -> None:
        """Remove the values (absent ones are ignored)."""
        for name in names:
            self._values.items.pop(name, None)

    async def aclose(self) -> None:
        """Nothing to release; here so that both backends close alike."""


@contextmanager
def _unavailable() -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"Redis failed ({type(exc).__name__})") from exc


@dataclass(frozen=True, slots=True)
class Persistence:
    """What survives a Redis restart: ``aof`` (``appendonly yes``) and the replicas connected
    to this primary, each ``None`` when Redis refused to say (a managed Redis may refuse
    ``INFO`` or ``CONFIG``)."""

    aof: bool | None
    replicas: int | None

    @property
    def summary(self) -> str:
        """``"aof"``, ``"replica"``, ``"aof+replica"``, ``"none"`` or ``"unknown"``."""
        kept = [name for name, on in (("aof", self.aof), ("replica", self.replicas)) if on]
        if kept:
            return "+".join(kept)
        return "unknown" if self.aof is None or self.replicas is None else "none"

    @property
    def warning(self) -> str | None:
        """Why a restart would lose data, or ``None`` when AOF or a replica keeps it."""
        summary = self.summary
        if summary == "none":
            return ("Redis has neither AOF (appendonly yes) nor a replica: a restart loses "
                    "the dedupe marks (a redelivered update is answered twice) and the "
                    "sessions (half-finished steps start over)")
        if summary == "unknown":
            return ("Redis persistence is unknown (INFO and CONFIG refused): make sure AOF "
                    "(appendonly yes) or a replica is configured")
        return None


class RedisSessionStore:
    """Redis session and value store shared by processes. An uncontended update costs two round
    trips: a Lua call locks and reads, another saves and unlocks if the lock is still ours."""

    def __init__(self, client: redis.asyncio.Redis, *, prefix: str = "bpjs:",
                 ttl: float = DEFAULT_TTL, lock_ttl: float = 30.0,
                 lock_timeout: float = 10.0) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_ms, self._lock_ttl_ms = _ms(ttl), _ms(lock_ttl)
        self._lock_timeout = lock_timeout
        self._enter, self._save, self._release, self._incr, self._extend, self._claim = (
            client.register_script(lua)
            for lua in (_ENTER, _SAVE, _RELEASE, _INCR, _EXTEND, _PUT_IF_ABSENT))

    @property
    def client(self) -> redis.asyncio.Redis:
        """The Redis client (the alert queue shares it)."""
        return self._client

    @property
    def prefix(self) -> str:
        """The prefix of every key this store writes."""
        return self._prefix

    @staticmethod
    def _tag(key: SessionKey) -> str:
        return "{" + f"{key.channel}:{key.chat_id}" + "}"  # one hash slot for all its keys

    def _keys(self, key: SessionKey) -> list[str]:
        tag = self._tag(key)
        return [f"{self._prefix}lock:{tag}", f"{self._prefix}session:{tag}",
                f"{self._prefix}saved:{tag}"]

    def _seen(self, key: SessionKey, once: str) -> str:
        return f"{self._prefix}seen:{self._tag(key)}:{once}"

    def _kv(self, name: str) -> str:
        return f"{self._prefix}kv:{name}"

    def inbox(self, channel: str, **options: float) -> RedisInbox:
        """``channel``'s inbox on this store's client, under its prefix and the channel's
        name (:class:`storage.inbox.RedisInbox`): each channel sweeps only its own chats."""
        return RedisInbox(self._client, prefix=f"{self._prefix}{channel}:", **options)

    @asynccontextmanager
    async def chat(self, key: SessionKey, *,
                   once: str | None = None) -> AsyncIterator[SessionSlot]:
        """Lock the chat and load its session; save it and unlock when the block ends.
        ``once``: raise :class:`AlreadySeen` when that delivery was handled before (checked
        and remembered in the same round trip as the lock)."""
        token = secrets.token_hex(16)
        slot = SessionSlot(_decode(key, await self._lock(key, token, once)))
        keeper = _LockKeeper(self._extend, self._keys(key)[:1], token, self._lock_ttl_ms)
        try:
            yield slot
            keeper.stop()
            args: list[str | int] = [token]
            if slot.session is not None:
                args += [_encode(slot.session), _ms(slot.ttl) if slot.ttl else self._ttl_ms]
            with _unavailable():
                saved = await self._save(self._keys(key), args)
        except BaseException:  # the block, the encoding or the save failed: nothing is saved
            keeper.stop()
            await self._unlock_quietly(key, token)
            raise
        if not saved:
            raise SessionBusy(f"the lock of a {key.channel} chat expired before the save")

    async def _lock(self, key: SessionKey, token: str, once: str | None) -> object:
        deadline, delay = time.monotonic() + self._lock_timeout, _FIRST_DELAY
        keys = self._keys(key)[:2]
        args: list[str | int] = [token, self._lock_ttl_ms]
        if once is not None:
            keys, args = [*keys, self._seen(key, once)], [*args, _ms(ONCE_TTL)]
        while not isinstance(reply := await self._try_lock(key, token, keys, args), list):
            if reply == -1:
                raise AlreadySeen(f"a {key.channel} delivery was handled before")
            if (remaining := deadline - time.monotonic()) <= 0:
                raise SessionBusy(f"a {key.channel} chat stayed locked too long")
            await asyncio.sleep(min(delay * (0.5 + random.random()), remaining))  # jitter
            delay = min(2 * delay, _MAX_DELAY)
        return reply[1] if len(reply) > 1 else None

    async def _try_lock(self, key: SessionKey, token: str, keys: list[str],
                        args: list[str | int]) -> object:
        try:
            with _unavailable():
                return await self._enter(keys, args)
        except BaseException:
            # The script may have taken the lock (and marked the update seen) before the
            # failure or cancellation hit us: undo both, so a retry serves the update.
            await self._unlock_quietly(key, token, keys[2:])
            raise

    async def _unlock_quietly(self, key: SessionKey, token: str,
                              seen: list[str] | None = None) -> None:
        try:
            await self._release([*self._keys(key)[:1], *(seen or [])], [token])
        except (RedisError, OSError):
            _log.warning("could not unlock a %s chat; the lock will expire", key.channel)

    async def get(self, name: str) -> str | None:
        """The value, or ``None`` when absent or expired."""
        with _unavailable():
            return _text(await self._client.get(self._kv(name)))

    async def get_many(self, names: Sequence[str]) -> list[str | None]:
        """The values of ``names`` in order (``None`` where absent or expired): one pipeline
        of ``GET`` (not ``MGET``, whose keys must share a cluster slot)."""
        if not names:
            return []
        with _unavailable():
            async with self._client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.get(self._kv(name))
                return [_text(raw) for raw in await pipe.execute()]

    async def put(self, name: str, value: str, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds, replacing any earlier value."""
        with _unavailable():
            await self._client.set(self._kv(name), value, px=_ms(ttl))

    async def put_if_absent(self, name: str, value: str, ttl: float) -> bool:
        """Store only when absent; true when stored."""
        with _unavailable():
            # The claim's hash tag is the value's own key: one cluster slot for both.
            claim = f"{self._prefix}claim:{{{self._kv(name)}}}"
            return bool(await self._claim([self._kv(name), claim],
                                          [value, _ms(ttl), secrets.token_hex(8)]))

    async def incr(self, name: str, ttl: float) -> int:
        """Add one to a counter; a new counter expires after ``ttl`` seconds."""
        with _unavailable():
            return int(await self._incr([self._kv(name)], [_ms(ttl)]))

    async def delete(self, *names: str) -> None:
        """Remove the values (absent ones are ignored)."""
        if names:
            with _unavailable():
                await self._client.delete(*(self._kv(name) for name in names))

    async def persistence(self) -> Persistence:
        """Whether AOF or a replica keeps the data through a restart (``INFO persistence``,
        else ``CONFIG GET appendonly``; ``INFO replication``). :class:`StoreUnavailable` when
        Redis cannot be reached."""
        with _unavailable():
            return Persistence(await self._aof(), await self._replicas())

    async def _aof(self) -> bool | None:
        try:
            info = await self._client.info("persistence")
            return bool(int(info["aof_enabled"]))
        except (ResponseError, KeyError, ValueError):
            pass
        try:
            config = await self._client.config_get("appendonly")
        except ResponseError:
            return None
        value = config.get("appendonly")
        return None if value is None else str(value).lower() == "yes"

    async def _replicas(self) -> int | None:
        try:
            info = await self._client.info("replication")
            return int(info["connected_slaves"])
        except (ResponseError, KeyError, ValueError):
            return None

    async def aclose(self) -> None:
        """Close the Redis client and its connections."""
        await self._client.aclose()


class _LockKeeper:
    """Extends a held chat lock every third of its time to live, so that an update still
    being answered (a reply held back by Telegram's flood control) keeps its lock. Costs
    nothing for the usual update, which is over before the first extension is due; a process
    that stalls stops extending, and its lock expires as before."""

    def __init__(self, extend: AsyncScript, keys: list[str], token: str, ttl_ms: int) -> None:
        self._extend = extend
        self._keys = keys
        self._args: list[str | int] = [token, ttl_ms]
        self._every = ttl_ms / 3000
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(self._every, self._start)

    def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._keep())

    async def _keep(self) -> None:
        while True:
            try:
                if not await self._extend(self._keys, self._args):
                    return  # no longer ours: the save will say so
            except (RedisError, OSError) as exc:
                _log.warning("could not extend a chat lock: %s", type(exc).__name__)
            await asyncio.sleep(self._every)

    def stop(self) -> None:
        """Stop extending (the block is over)."""
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()


class _StoreOptions(TypedDict, total=False):
    prefix: str
    ttl: float
    lock_ttl: float
    lock_timeout: float


RETRY_BACKOFF = ExponentialBackoff(cap=0.2, base=0.05)


def redis_store_from_url(url: str, *, timeout: float = 2.0, max_connections: int = 64,
                         **options: Unpack[_StoreOptions]) -> RedisSessionStore:
    """A :class:`RedisSessionStore` on a new client for ``url``, with short socket timeouts
    and one retry on a connection error or a timeout.

    The retry reconnects the failed connection first, so a pooled connection gone stale with a
    Redis restart costs one reconnection, not an update (without it, each stale connection
    failed one update after a restart). Every command is safe to send twice: reads, ``SET``,
    ``DEL`` and ``PEXPIRE`` are idempotent, and the scripts that are not recognise their own
    earlier run by its token (the lock, the save, ``put_if_absent``). Only ``incr`` can count
    one call twice, when its first run's reply was lost: a counter of attempts errs on the
    strict side. A Redis that stays down still fails fast with :class:`StoreUnavailable`.

    The pool holds at most ``max_connections``; more concurrent updates wait up to ``timeout``
    for a free connection instead of failing (redis-py's default pool raises at once)."""
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url, decode_responses=True, socket_timeout=timeout, socket_connect_timeout=timeout,
        retry=Retry(RETRY_BACKOFF, 1), retry_on_error=[RedisConnectionError, RedisTimeoutError],
        max_connections=max_connections, timeout=timeout)
    return RedisSessionStore(redis.asyncio.Redis.from_pool(pool), **options)


async def warn_without_persistence(store: RedisSessionStore) -> Persistence | None:
    """At start-up: log a warning when a Redis restart would lose data (neither AOF nor a
    replica, or Redis will not say). A warning, never a refusal: ``None`` and a warning when
    Redis cannot be reached now (the first update will say so again)."""
    try:
        persistence = await store.persistence()
    except StoreUnavailable:
        _log.warning("could not check Redis persistence: Redis is unreachable")
        return None
    if persistence.warning:
        _log.warning("%s", persistence.warning)
    else:
        _log.info("Redis persistence: %s", persistence.summary)
    return persistence

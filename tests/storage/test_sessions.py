"""One contract for every session store backend: in-process and a real Redis server.

Redis tests share the server with others, so each test uses its own key prefix and deletes only
its own keys afterwards.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from flows.ports import AlreadySeen, SessionBusy, StoreUnavailable
from flows.types import Session, SessionKey
from storage.sessions import MemorySessionStore, RedisSessionStore, redis_store_from_url
from tests.conftest import delete_prefixed

Store = MemorySessionStore | RedisSessionStore
KEY = SessionKey("telegram", "100200300")
OTHER = SessionKey("whatsapp", "6281234567890")
CLOSED_PORT_URL = "redis://127.0.0.1:1/0"
NESTED = Session(
    state="otp:await_code",
    locale="id",
    data={"kpj": "11223344556", "attempts": 2, "verified": False, "note": None,
          "history": [{"month": "2024-01", "rupiah": 150000}, ["a", 1.5, True]],
          "text": "Saldo JHT — Rp 1.000.000"},
)


@dataclass
class Backend:
    """Makes stores of one backend and closes them after the test."""

    kind: str
    url: str = ""
    prefix: str = ""
    stores: list[Store] = field(default_factory=list)

    def make(self, *, ttl: float = 3600.0, lock_timeout: float = 10.0,
             lock_ttl: float = 30.0) -> Store:
        store: Store
        if self.kind == "memory":
            store = MemorySessionStore(ttl=ttl, lock_timeout=lock_timeout)
        else:
            store = redis_store_from_url(self.url, prefix=self.prefix, ttl=ttl,
                                         lock_timeout=lock_timeout, lock_ttl=lock_ttl)
        self.stores.append(store)
        return store


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest, unique_prefix: str) -> AsyncIterator[Backend]:
    """Every contract test runs once per backend."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    made = Backend(request.param, url, unique_prefix)
    yield made
    for store in made.stores:
        await store.aclose()
    if url:
        await delete_prefixed(url, unique_prefix)


@pytest.fixture
async def redis_backend(redis_url: str, unique_prefix: str) -> AsyncIterator[Backend]:
    """The Redis backend alone, for what only a shared server can show."""
    made = Backend("redis", redis_url, unique_prefix)
    yield made
    for store in made.stores:
        await store.aclose()
    await delete_prefixed(redis_url, unique_prefix)


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain client for looking at or tampering with the keys directly."""
    client = redis.asyncio.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def load(store: Store, key: SessionKey = KEY) -> Session | None:
    async with store.chat(key) as slot:
        return slot.session


async def save(store: Store, session: Session | None, key: SessionKey = KEY) -> None:
    async with store.chat(key) as slot:
        slot.session = session


async def bump(store: Store, key: SessionKey = KEY) -> None:
    async with store.chat(key) as slot:
        count = int(slot.session.data["n"]) if slot.session else 0
        await asyncio.sleep(0)  # let other tasks run inside the critical section
        slot.session = Session("counting", data={"n": count + 1})


@asynccontextmanager
async def held(store: Store, key: SessionKey = KEY) -> AsyncIterator[None]:
    """Another task holds the chat's lock for the duration of the block."""
    entered, leave = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with store.chat(key):
            entered.set()
            await leave.wait()

    task = asyncio.create_task(holder())
    await entered.wait()
    try:
        yield
    finally:
        leave.set()
        await task


# --- sessions -------------------------------------------------------------------------------


async def test_new_chat_loads_none(backend: Backend) -> None:
    assert await load(backend.make()) is None


async def test_saved_session_round_trips_with_nested_data(backend: Backend) -> None:
    store = backend.make()
    await save(store, NESTED)
    assert await load(store) == NESTED
    assert await load(store, OTHER) is None


async def test_saved_session_is_a_snapshot(backend: Backend) -> None:
    store = backend.make()
    data: dict[str, Any] = {"kpj": "1"}
    await save(store, Session("a", data=data))
    data["kpj"] = "changed after save"
    loaded = await load(store)
    assert loaded is not None and loaded.data == {"kpj": "1"}
    dict(loaded.data)["kpj"] = "changed after load"
    assert await load(store) == Session("a", data={"kpj": "1"})


async def test_none_deletes_the_session(backend: Backend) -> None:
    store = backend.make()
    await save(store, NESTED)
    await save(store, None)
    assert await load(store) is None


async def test_nothing_is_saved_and_lock_released_when_block_raises(backend: Backend) -> None:
    store = backend.make(lock_timeout=0.05)
    await save(store, NESTED)
    with pytest.raises(RuntimeError, match="boom"):
        async with store.chat(KEY) as slot:
            slot.session = Session("changed")
            raise RuntimeError("boom")
    assert await load(store) == NESTED  # would raise SessionBusy if the lock were kept


async def test_unserializable_session_releases_lock_and_keeps_old(backend: Backend) -> None:
    store = backend.make(lock_timeout=0.05)
    await save(store, NESTED)
    with pytest.raises(TypeError):
        async with store.chat(KEY) as slot:
            slot.session = Session("bad", data={"when": object()})
    assert await load(store) == NESTED


async def test_session_expires_after_ttl(backend: Backend) -> None:
    store = backend.make(ttl=0.15)
    await save(store, NESTED)
    await asyncio.sleep(0.25)
    assert await load(store) is None


async def test_each_update_renews_the_session_ttl(backend: Backend) -> None:
    store = backend.make(ttl=0.4)
    await save(store, NESTED)
    await asyncio.sleep(0.25)
    await bump(store, OTHER)
    assert await load(store) == NESTED  # renewed here, 0.25 s in
    await asyncio.sleep(0.25)
    assert await load(store) == NESTED  # 0.5 s after the first save


async def test_non_positive_ttl_is_rejected(backend: Backend) -> None:
    with pytest.raises(ValueError, match="ttl"):
        backend.make(ttl=0)
    with pytest.raises(ValueError, match="ttl"):
        await backend.make().put("x", "1", 0)


# --- locking --------------------------------------------------------------------------------


async def test_concurrent_updates_of_one_chat_never_interleave(backend: Backend) -> None:
    store = backend.make()
    await asyncio.gather(*(bump(store) for _ in range(50)))
    loaded = await load(store)
    assert loaded is not None and loaded.data["n"] == 50


async def test_different_chats_do_not_block_each_other(backend: Backend) -> None:
    store = backend.make(lock_timeout=0.1)
    async with held(store, KEY):
        await save(store, NESTED, OTHER)
        with pytest.raises(SessionBusy):
            await load(store, KEY)
    assert await load(store, OTHER) == NESTED


async def test_session_busy_when_lock_held_past_timeout(backend: Backend) -> None:
    store = backend.make(lock_timeout=0.1)
    async with held(store):
        started = time.monotonic()
        with pytest.raises(SessionBusy) as caught:
            await load(store)
        assert time.monotonic() - started >= 0.09
    assert KEY.chat_id not in str(caught.value)
    assert await load(store) is None  # free again once the holder left


async def test_cancelled_waiter_leaves_no_lock_behind(backend: Backend) -> None:
    store = backend.make(lock_timeout=0.2)
    async with held(store):
        waiter = asyncio.create_task(bump(store))
        await asyncio.sleep(0.03)
        waiter.cancel()
        # On Python 3.11, asyncio.wait_for inside redis-py can swallow a cancellation that
        # lands just as a command completes; the waiter then gives up with SessionBusy.
        with pytest.raises((asyncio.CancelledError, SessionBusy)):
            await waiter
    await bump(store)
    loaded = await load(store)
    assert loaded is not None and loaded.data["n"] == 1


# --- values ---------------------------------------------------------------------------------


async def test_put_get_and_replace(backend: Backend) -> None:
    store = backend.make()
    assert await store.get("otp") is None
    await store.put("otp", "123456", 60)
    assert await store.get("otp") == "123456"
    await store.put("otp", "654321", 60)
    assert await store.get("otp") == "654321"


async def test_get_many_reads_values_in_order(backend: Backend) -> None:
    store = backend.make()
    assert await store.get_many([]) == []
    await store.put("a", "1", 60)
    await store.put("c", "3", 60)
    await store.put("gone", "x", 0.05)
    await asyncio.sleep(0.1)
    assert await store.get_many(["c", "b", "a", "gone", "a"]) == ["3", None, "1", None, "1"]


async def test_put_if_absent_stores_only_once(backend: Backend) -> None:
    store = backend.make()
    assert await store.put_if_absent("update:1", "seen", 60) is True
    assert await store.put_if_absent("update:1", "again", 60) is False
    assert await store.get("update:1") == "seen"


async def test_incr_counts_from_one(backend: Backend) -> None:
    store = backend.make()
    assert [await store.incr("tries", 60) for _ in range(3)] == [1, 2, 3]
    assert await store.get("tries") == "3"


async def test_incr_on_a_non_counter_is_an_error(backend: Backend) -> None:
    store = backend.make()
    await store.put("word", "abc", 60)
    with pytest.raises(StoreUnavailable):
        await store.incr("word", 60)


async def test_delete_removes_values_and_ignores_absent_ones(backend: Backend) -> None:
    store = backend.make()
    await store.put("a", "1", 60)
    await store.put("b", "2", 60)
    await store.put("c", "3", 60)
    await store.delete("a", "b", "never-stored")
    await store.delete()
    assert [await store.get(name) for name in "abc"] == [None, None, "3"]


async def test_values_expire_after_their_ttl(backend: Backend) -> None:
    store = backend.make()
    await store.put("put", "1", 0.1)
    assert await store.put_if_absent("nx", "1", 0.1) is True
    assert await store.incr("counter", 0.1) == 1
    await asyncio.sleep(0.15)
    assert await store.get("put") is None
    assert await store.get("nx") is None
    assert await store.put_if_absent("nx", "2", 60) is True
    assert await store.incr("counter", 60) == 1


async def test_incr_keeps_the_deadline_of_the_first_increment(backend: Backend) -> None:
    store = backend.make()
    assert await store.incr("rate", 0.3) == 1
    await asyncio.sleep(0.2)
    assert await store.incr("rate", 0.3) == 2  # must not push the deadline back
    await asyncio.sleep(0.15)
    assert await store.incr("rate", 0.3) == 1


# --- deliveries handled once -----------------------------------------------------------------


async def test_a_delivery_is_handled_once(backend: Backend) -> None:
    store = backend.make()
    async with store.chat(KEY, once="17") as slot:
        slot.session = Session("first")
    with pytest.raises(AlreadySeen):
        async with store.chat(KEY, once="17"):
            pytest.fail("entered the chat for a repeated delivery")
    async with store.chat(KEY, once="18") as slot:  # another delivery, and the lock is free
        assert slot.session == Session("first")


async def test_once_is_per_chat(backend: Backend) -> None:
    store = backend.make()
    async with store.chat(KEY, once="5"):
        pass
    async with store.chat(OTHER, once="5") as slot:
        assert slot.session is None


async def test_a_repeat_is_dropped_while_the_first_delivery_is_still_handled(
        backend: Backend) -> None:
    first = backend.make()
    second = first if backend.kind == "memory" else backend.make()  # one process, or two
    entered, leave = asyncio.Event(), asyncio.Event()

    async def original() -> None:
        async with first.chat(KEY, once="9") as slot:
            entered.set()
            await leave.wait()
            slot.session = Session("done")

    task = asyncio.create_task(original())
    await entered.wait()
    with pytest.raises(AlreadySeen):
        async with asyncio.timeout(1):  # does not wait for the chat's lock
            await _enter_once(second, "9")
    leave.set()
    await task
    assert await load(first) == Session("done")


async def test_a_delivery_whose_block_failed_is_still_remembered(backend: Backend) -> None:
    store = backend.make()
    with pytest.raises(RuntimeError):
        async with store.chat(KEY, once="3"):
            raise RuntimeError("the step failed")
    with pytest.raises(AlreadySeen):
        async with store.chat(KEY, once="3"):
            pass
    async with store.chat(KEY):  # the lock was released
        pass


async def _enter_once(store: Store, once: str) -> None:
    async with store.chat(KEY, once=once):
        pass


# --- Redis only -----------------------------------------------------------------------------


async def test_two_processes_serialize_updates_of_one_chat(redis_backend: Backend) -> None:
    first, second = redis_backend.make(), redis_backend.make()
    await asyncio.gather(*(bump(store) for _ in range(25) for store in (first, second)))
    loaded = await load(first)
    assert loaded is not None and loaded.data["n"] == 50


async def test_keys_are_prefixed_and_expire(redis_backend: Backend,
                                            raw: redis.asyncio.Redis) -> None:
    store = redis_backend.make(ttl=60)
    await save(store, NESTED)
    await store.put("otp", "123456", 30)
    prefix = redis_backend.prefix
    stored = await raw.get(f"{prefix}session:{{telegram:100200300}}")
    assert stored is not None and Session.from_json_dict(json.loads(stored)) == NESTED
    assert 0 < await raw.pttl(f"{prefix}session:{{telegram:100200300}}") <= 60_000
    assert await raw.exists(f"{prefix}lock:{{telegram:100200300}}") == 0
    assert await raw.get(f"{prefix}kv:otp") == "123456"
    assert 0 < await raw.pttl(f"{prefix}kv:otp") <= 30_000


async def test_crashed_holders_lock_expires_after_lock_ttl(redis_backend: Backend,
                                                           raw: redis.asyncio.Redis) -> None:
    await raw.set(f"{redis_backend.prefix}lock:{{telegram:100200300}}", "dead-process", px=300)
    with pytest.raises(SessionBusy):
        await load(redis_backend.make(lock_timeout=0.05))
    started = time.monotonic()
    await save(redis_backend.make(lock_timeout=2), NESTED)
    assert time.monotonic() - started >= 0.15
    assert await load(redis_backend.make()) == NESTED


async def test_update_whose_lock_expired_is_not_saved(redis_backend: Backend) -> None:
    slow, other = redis_backend.make(lock_ttl=0.1), redis_backend.make(lock_timeout=1)
    with pytest.raises(SessionBusy):
        async with slow.chat(KEY) as slot:
            time.sleep(0.2)  # a stalled process: nothing extends its lock, which expires
            await save(other, Session("newer"))
            slot.session = Session("stale")
    assert await load(other) == Session("newer")


async def test_a_lock_held_past_its_ttl_while_working_is_kept(redis_backend: Backend) -> None:
    slow, other = redis_backend.make(lock_ttl=0.15), redis_backend.make(lock_timeout=0.1)
    async with slow.chat(KEY) as slot:
        await asyncio.sleep(0.5)  # a reply held back by flood control, three lock TTLs long
        with pytest.raises(SessionBusy):
            await load(other)  # still locked
        slot.session = Session("answered")
    assert await load(other) == Session("answered")


@pytest.mark.parametrize("stored", ["not json", "[1, 2]", '"text"', "{"])
async def test_corrupt_session_is_treated_as_absent(
        redis_backend: Backend, raw: redis.asyncio.Redis, stored: str,
        caplog: pytest.LogCaptureFixture) -> None:
    await raw.set(f"{redis_backend.prefix}session:{{telegram:100200300}}", stored)
    store = redis_backend.make()
    with caplog.at_level(logging.WARNING, logger="storage.sessions"):
        assert await load(store) is None
    assert "telegram" in caplog.text
    assert KEY.chat_id not in caplog.text and stored not in caplog.text
    await save(store, NESTED)
    assert await load(store) == NESTED


class CountingConnection(redis.asyncio.Connection):
    """Records every write to the socket: each one is a round trip to the server."""

    writes: ClassVar[list[bytes]] = []

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        packed = command if isinstance(command, bytes | str) else b"".join(command)
        CountingConnection.writes.append(packed if isinstance(packed, bytes) else packed.encode())
        await super().send_packed_command(command, check_health)


async def test_uncontended_update_costs_two_round_trips(redis_url: str,
                                                        unique_prefix: str) -> None:
    client = redis.asyncio.from_url(redis_url, decode_responses=True,
                                    connection_class=CountingConnection)
    store = RedisSessionStore(client, prefix=unique_prefix)
    try:
        await bump(store, OTHER)  # connects and loads the scripts
        for expected in (1, 2):
            CountingConnection.writes.clear()
            await bump(store)
            assert len(CountingConnection.writes) == 2
            CountingConnection.writes.clear()
            async with store.chat(OTHER, once=f"update-{expected}"):
                pass
            assert len(CountingConnection.writes) == 2  # the delivery check rides the lock
            assert all(b"EVALSHA" in write for write in CountingConnection.writes)
            loaded = await load(store)
            assert loaded is not None and loaded.data["n"] == expected
    finally:
        await store.aclose()
        await delete_prefixed(redis_url, unique_prefix)


async def _enter_chat(store: RedisSessionStore) -> None:
    async with store.chat(KEY):
        pytest.fail("entered a chat without Redis")


UNREACHABLE: dict[str, Callable[[RedisSessionStore], Awaitable[object]]] = {
    "chat": _enter_chat,
    "get": lambda store: store.get("a"),
    "put": lambda store: store.put("a", "1", 60),
    "put_if_absent": lambda store: store.put_if_absent("a", "1", 60),
    "incr": lambda store: store.incr("a", 60),
    "delete": lambda store: store.delete("a"),
}


@pytest.mark.parametrize("operation", UNREACHABLE)
async def test_unreachable_redis_raises_store_unavailable(operation: str) -> None:
    store = redis_store_from_url(CLOSED_PORT_URL, lock_timeout=0.1)
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await UNREACHABLE[operation](store)
    finally:
        await store.aclose()
    assert isinstance(caught.value.__cause__, RedisError | OSError)
    assert time.monotonic() - started < 1.5  # failed fast, no retry loop


# --- memory only ----------------------------------------------------------------------------


async def test_memory_store_drops_locks_nobody_holds_or_awaits() -> None:
    store = MemorySessionStore(lock_timeout=0.05)
    for chat_id in range(100):
        await bump(store, SessionKey("console", str(chat_id)))
    async with held(store):
        with pytest.raises(SessionBusy):
            await load(store)
        assert list(store._locks) == [KEY]
    assert store._locks == {} and not store._users


async def test_memory_store_sweeps_expired_entries() -> None:
    store = MemorySessionStore(ttl=0.02)
    for round_ in range(6):
        for n in range(200):
            await store.put(f"{round_}:{n}", "x", 0.02)
            await bump(store, SessionKey("console", f"{round_}:{n}"))
        await asyncio.sleep(0.03)
    # 1,200 entries were written, never more than 200 alive at once: sweeps keep at most
    # twice the entries alive at the last sweep.
    assert len(store._values.items) < 400
    assert len(store._sessions.items) < 400


async def test_many_concurrent_updates_wait_for_a_connection(redis_url: str,
                                                             unique_prefix: str) -> None:
    """Regression: redis-py's default pool raised MaxConnectionsError past its limit, so a
    burst of updates failed with StoreUnavailable instead of waiting for a connection."""
    store = redis_store_from_url(redis_url, prefix=unique_prefix, max_connections=4)
    try:
        async def update(i: int) -> None:
            async with store.chat(SessionKey("burst", str(i))) as slot:
                slot.session = Session("menu:main", "id", {"i": i})

        await asyncio.gather(*(update(i) for i in range(200)))
        async with store.chat(SessionKey("burst", "199")) as slot:
            assert slot.session is not None and slot.session.data == {"i": 199}
    finally:
        raw = store._client  # noqa: SLF001
        keys = [k async for k in raw.scan_iter(unique_prefix + "*")]
        if keys:
            await raw.delete(*keys)
        await store.aclose()


async def test_a_slot_ttl_overrides_the_default(backend: Backend) -> None:
    """A half-finished flow is kept only as long as its timeout (it may hold a NIK)."""
    store = backend.make(ttl=3600)
    async with store.chat(KEY) as slot:
        slot.session = Session("registration:ask_kpj", "id", {"nik": "x"})
        slot.ttl = 0.2
    await asyncio.sleep(0.3)
    assert await load(store) is None


async def test_a_lock_whose_reply_was_lost_leaves_the_update_unmarked(
        redis_backend: Backend) -> None:
    """The lock script ran in Redis (lock taken, update marked seen), but its reply never
    came back: the retry of that update must be served, not dropped as a repeat."""
    store = redis_backend.make()
    assert isinstance(store, RedisSessionStore)
    real = store._enter  # noqa: SLF001

    class LostReply:
        async def __call__(self, keys: list[str], args: list[str | int]) -> object:
            await real(keys, args)  # it ran...
            raise RedisConnectionError("connection reset")  # ...the reply was lost

    store._enter = LostReply()  # type: ignore[assignment]  # noqa: SLF001
    with pytest.raises(StoreUnavailable):
        async with store.chat(KEY, once="update-7"):
            pass
    store._enter = real  # noqa: SLF001
    async with store.chat(KEY, once="update-7") as slot:  # served, not AlreadySeen
        slot.session = None
    with pytest.raises(AlreadySeen):  # and now it is remembered
        async with store.chat(KEY, once="update-7"):
            pass

"""The mailroom (:mod:`channels.inbox`): each chat's updates served by one runner at a time, in
sequence order, tried again while their serving cannot start, handed back at shutdown and taken
up by another process. A fake handle stands for the channel (no Telegram, no engine)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio

from app.metrics import Metrics
from channels.inbox import SWEEP_EVERY, Mailroom
from flows.ports import StoreUnavailable
from storage.inbox import MemoryInbox, RedisInbox
from tests.conftest import delete_prefixed

CHAT, OTHER = "100200300", "6281234567890"
WAIT = 5.0  # a generous bound for what should take milliseconds


@dataclass(frozen=True)
class Call:
    chat: str
    seq: int
    payload: str
    parsed: Any
    last: bool


@dataclass
class FakeHandle:
    """Records every call; ``refuse`` tries answer False (not served) before one is served,
    and ``gates`` hold a chat's update until opened."""

    refuse: int = 0
    refuse_unless_last: bool = False
    calls: list[Call] = field(default_factory=list)
    served: list[tuple[str, int]] = field(default_factory=list)
    gates: dict[tuple[str, int], asyncio.Event] = field(default_factory=dict)
    started: dict[tuple[str, int], asyncio.Event] = field(default_factory=dict)

    def gate(self, chat: str, seq: int) -> asyncio.Event:
        return self.gates.setdefault((chat, seq), asyncio.Event())

    def entered(self, chat: str, seq: int) -> asyncio.Event:
        return self.started.setdefault((chat, seq), asyncio.Event())

    async def __call__(self, chat: str, seq: int, payload: str, parsed: Any,
                       last: bool) -> bool:
        self.calls.append(Call(chat, seq, payload, parsed, last))
        self.entered(chat, seq).set()
        if (chat, seq) in self.gates:
            await self.gates[(chat, seq)].wait()
        if self.refuse_unless_last and not last:
            return False
        if self.refuse > 0:
            self.refuse -= 1
            return False
        self.served.append((chat, seq))
        return True


class DownInbox:
    """An inbox whose chosen methods raise :class:`StoreUnavailable` (``failures`` times each,
    ``None``: for ever) before they reach the real one."""

    def __init__(self, inner: MemoryInbox, **failures: int | None) -> None:
        self.inner = inner
        self.failures = failures
        self.calls: dict[str, int] = {}

    def _check(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if name not in self.failures:
            return
        left = self.failures[name]
        if left is None or left > 0:
            if left is not None:
                self.failures[name] = left - 1
            raise StoreUnavailable("the inbox failed: ConnectionError")

    async def put(self, chat: str, payload: str, seq: int | None = None) -> Any:
        self._check("put")  # whatever the backend's put returns
        return await self.inner.put(chat, payload, seq)

    async def next(self, chat: str, token: str, done: int | None = None,
                   ) -> tuple[int, str] | None:
        self._check("next")
        return await self.inner.next(chat, token, done)

    async def release(self, chat: str, token: str) -> None:
        self._check("release")
        await self.inner.release(chat, token)

    async def renew(self, turns: Mapping[str, str]) -> set[str]:
        self._check("renew")
        return await self.inner.renew(turns)

    async def stranded(self, idle: float, limit: int = 100) -> list[tuple[str, str]]:
        self._check("stranded")
        return await self.inner.stranded(idle, limit)

    async def pending(self, chat: str) -> int:
        return await self.inner.pending(chat)

    async def forget(self, chat: str) -> None:
        await self.inner.forget(chat)


class Rooms:
    """Makes mailrooms and drains them after the test (their keepers stop)."""

    def __init__(self) -> None:
        self.made: list[Mailroom] = []
        self.metrics = Metrics()

    def make(self, inbox: Any, handle: Callable[..., Awaitable[bool]], *,
             max_backlog: int = 10_000, retry_delays: tuple[float, ...] = (0, 0),
             sleep: Callable[[float], Awaitable[None]] | None = None) -> Mailroom:
        room = Mailroom(inbox, handle, channel="test", metrics=self.metrics,
                        max_backlog=max_backlog, retry_delays=retry_delays,
                        sleep=sleep or asyncio.sleep)
        self.made.append(room)
        return room

    def errors(self, kind: str) -> float:
        return self.metrics.value("bot_errors_total", kind=kind)


@pytest.fixture
async def rooms() -> AsyncIterator[Rooms]:
    made = Rooms()
    yield made
    for room in made.made:
        await room.drain(timeout=1.0)


async def until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait until ``condition()`` holds (the runners are background tasks)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.002)


async def idle(room: Mailroom) -> None:
    await until(lambda: room.running == 0)


# --- one process ------------------------------------------------------------------------------


async def test_a_chats_updates_are_served_in_sequence_order(rooms: Rooms) -> None:
    handle = FakeHandle()
    handle.gate(CHAT, 1)
    inbox = MemoryInbox()
    room = rooms.make(inbox, handle)
    assert await room.put(CHAT, "p1", "parsed 1", seq=1)
    await asyncio.wait_for(handle.entered(CHAT, 1).wait(), WAIT)
    for seq in (4, 2, 3):  # out of order, while 1 is being served
        assert await room.put(CHAT, f"p{seq}", f"parsed {seq}", seq=seq)
    assert room.running == 1 and room.backlog == 4
    handle.gate(CHAT, 1).set()
    await idle(room)
    assert handle.served == [(CHAT, 1), (CHAT, 2), (CHAT, 3), (CHAT, 4)]
    assert [(c.payload, c.parsed, c.last) for c in handle.calls] == [
        (f"p{n}", f"parsed {n}", False) for n in (1, 2, 3, 4)], "parsed here: not parsed again"
    assert room.backlog == 0 and await inbox.pending(CHAT) == 0


async def test_an_integer_chat_and_no_sequence_are_served_in_arrival_order(
        rooms: Rooms) -> None:
    handle = FakeHandle()
    room = rooms.make(MemoryInbox(), handle)
    for text in ("a", "b", "c"):
        assert await room.put(42, text, None)
    await idle(room)
    assert [(c.chat, c.seq, c.payload) for c in handle.calls] == [
        ("42", 1, "a"), ("42", 2, "b"), ("42", 3, "c")]


async def test_two_chats_are_served_concurrently(rooms: Rooms) -> None:
    handle = FakeHandle()
    blocked = handle.gate(CHAT, 1)  # CHAT waits until OTHER was served
    room = rooms.make(MemoryInbox(), handle)
    await room.put(CHAT, "a", None, seq=1)
    await room.put(CHAT, "a2", None, seq=2)
    await room.put(OTHER, "b", None, seq=1)
    await until(lambda: (OTHER, 1) in handle.served)
    assert room.running == 1 and handle.served == [(OTHER, 1)]
    blocked.set()
    await idle(room)
    assert handle.served == [(OTHER, 1), (CHAT, 1), (CHAT, 2)]


async def test_an_update_not_served_is_tried_again_and_the_last_try_says_so(
        rooms: Rooms) -> None:
    handle = FakeHandle(refuse_unless_last=True)
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        if seconds >= SWEEP_EVERY:  # the keeper's pause, not a retry's
            await asyncio.sleep(seconds)
            return
        pauses.append(seconds)

    room = rooms.make(MemoryInbox(), handle, retry_delays=(0.2, 0.5), sleep=sleep)
    await room.put(CHAT, "p1", "parsed", seq=1)
    await room.put(CHAT, "p2", "parsed 2", seq=2)
    await idle(room)
    assert [(c.seq, c.last) for c in handle.calls] == [
        (1, False), (1, False), (1, True), (2, False), (2, False), (2, True)]
    assert all(c.parsed == "parsed" for c in handle.calls[:3]), "each try gets the parsed one"
    assert pauses == [0.2, 0.5, 0.2, 0.5]
    assert handle.served == [(CHAT, 1), (CHAT, 2)]
    assert rooms.errors("requeued") == 4


async def test_an_update_served_on_its_second_try_is_not_a_last_try(rooms: Rooms) -> None:
    handle = FakeHandle(refuse=1)
    inbox = MemoryInbox()
    room = rooms.make(inbox, handle, retry_delays=(0, 0))
    await room.put(CHAT, "p1", None, seq=1)
    await room.put(CHAT, "p2", None, seq=2)
    await idle(room)
    assert [(c.seq, c.last) for c in handle.calls] == [(1, False), (1, False), (2, False)]
    assert handle.served == [(CHAT, 1), (CHAT, 2)], "the later update waited for the earlier"
    assert rooms.errors("requeued") == 1
    assert await inbox.pending(CHAT) == 0


async def test_a_full_backlog_refuses_and_counts_an_overload(rooms: Rooms) -> None:
    handle = FakeHandle()
    gate = handle.gate(CHAT, 1)
    inbox = MemoryInbox()
    room = rooms.make(inbox, handle, max_backlog=2)
    assert await room.put(CHAT, "p1", None, seq=1)
    assert await room.put(CHAT, "p2", None, seq=2)
    assert room.backlog == 2
    assert not await room.put(CHAT, "p3", None, seq=3)
    assert not await room.put(OTHER, "q1", None, seq=1)
    assert rooms.errors("overload") == 2
    assert await inbox.pending(CHAT) == 2 and await inbox.pending(OTHER) == 0, "nothing kept"
    gate.set()
    await idle(room)
    assert room.backlog == 0
    assert await room.put(CHAT, "p3", None, seq=3), "room again once served"
    await idle(room)
    assert handle.served == [(CHAT, 1), (CHAT, 2), (CHAT, 3)]
    with pytest.raises(ValueError, match="max_backlog"):
        Mailroom(inbox, handle, channel="test", metrics=Metrics(), max_backlog=0)


async def test_a_store_fault_on_put_propagates_and_keeps_nothing(rooms: Rooms) -> None:
    handle = FakeHandle()
    inbox = DownInbox(MemoryInbox(), put=None)
    room = rooms.make(inbox, handle)
    with pytest.raises(StoreUnavailable):
        await room.put(CHAT, "p1", "parsed", seq=1)
    assert room.backlog == 0 and room.running == 0
    assert await inbox.pending(CHAT) == 0 and handle.calls == []
    assert rooms.errors("overload") == 0


async def test_drain_hands_back_a_stuck_turn_and_another_mailroom_serves_it(
        rooms: Rooms) -> None:
    inbox = MemoryInbox()
    stuck = FakeHandle()
    stuck.gate(CHAT, 1)  # never opened
    first = rooms.make(inbox, stuck)
    assert await first.put(CHAT, '{"n": 1}', "parsed", seq=1)
    await asyncio.wait_for(stuck.entered(CHAT, 1).wait(), WAIT)
    assert await first.drain(timeout=0.05) == 1
    assert first.running == 0 and first.backlog == 0
    assert await inbox.pending(CHAT) == 1, "the update stays queued"
    assert not await first.put(CHAT, '{"n": 2}', None, seq=2), "a draining room takes none"
    assert rooms.errors("overload") == 1
    assert await first.sweep(idle=0) == 0, "nor takes up chats"
    assert await inbox.pending(CHAT) == 1

    handle = FakeHandle()
    second = rooms.make(inbox, handle)
    assert await second.sweep(idle=0) == 1
    await idle(second)
    assert handle.calls == [Call(CHAT, 1, '{"n": 1}', None, False)], "parsed elsewhere"
    assert await inbox.pending(CHAT) == 0
    assert stuck.served == []


async def test_drain_waits_for_running_turns_within_its_timeout(rooms: Rooms) -> None:
    handle = FakeHandle()
    gate = handle.gate(CHAT, 1)
    inbox = MemoryInbox()
    room = rooms.make(inbox, handle)
    await room.put(CHAT, "p1", None, seq=1)
    await room.put(CHAT, "p2", None, seq=2)
    await asyncio.wait_for(handle.entered(CHAT, 1).wait(), WAIT)
    asyncio.get_running_loop().call_later(0.05, gate.set)
    assert await room.drain(timeout=WAIT) == 0
    assert handle.served == [(CHAT, 1), (CHAT, 2)], "the whole turn finished"
    assert await inbox.pending(CHAT) == 0
    assert await rooms.made[0].drain() == 0, "draining twice is fine"
    room.reopen()
    assert await room.put(CHAT, "p3", None, seq=3), "reopened: takes updates again"
    await idle(room)
    assert handle.served[-1] == (CHAT, 3)


async def test_a_put_in_flight_when_drain_starts_leaves_no_runner_behind(
        rooms: Rooms) -> None:
    """A webhook request still in ``put`` when the shutdown drains: the update is kept (200),
    and its turn is handed back rather than run after ``drain`` has returned."""
    inner = MemoryInbox()
    entered, proceed = asyncio.Event(), asyncio.Event()

    class SlowInbox(DownInbox):
        async def put(self, chat: str, payload: str, seq: int | None = None) -> Any:
            entered.set()
            await proceed.wait()
            return await self.inner.put(chat, payload, seq)

    handle = FakeHandle()
    room = rooms.make(SlowInbox(inner), handle)
    putting = asyncio.create_task(room.put(CHAT, "p1", "parsed", seq=1))
    await asyncio.wait_for(entered.wait(), WAIT)
    draining = asyncio.create_task(room.drain(timeout=1.0))
    await asyncio.sleep(0.01)
    proceed.set()
    assert await putting, "kept: acknowledged"
    await draining
    await asyncio.sleep(0.01)
    assert room.running == 0 and room.backlog == 0, "no runner started after drain"
    assert handle.calls == []
    assert await inner.pending(CHAT) == 1
    other = rooms.make(inner, handle)
    assert await other.sweep(idle=0) == 1, "handed back: another process takes it up"
    await idle(other)
    assert handle.served == [(CHAT, 1)]


async def test_a_failing_next_is_tried_again(rooms: Rooms) -> None:
    handle = FakeHandle()
    inbox = DownInbox(MemoryInbox(), next=2)
    room = rooms.make(inbox, handle, retry_delays=(0, 0))
    await room.put(CHAT, "p1", None, seq=1)
    await idle(room)
    assert handle.served == [(CHAT, 1)]
    assert await inbox.pending(CHAT) == 0


async def test_an_inbox_that_stays_down_leaves_the_chat_to_a_sweeper(
        rooms: Rooms, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="channels.inbox")
    handle = FakeHandle()
    inbox = DownInbox(MemoryInbox(), next=None)
    room = rooms.make(inbox, handle, retry_delays=(0, 0))
    await room.put(CHAT, "secret text", "parsed", seq=1)
    await room.put(CHAT, "secret text 2", "parsed 2", seq=2)
    await idle(room)
    assert inbox.calls["next"] == 3, "tried after each retry delay, then given up"
    assert handle.served in ([], [(CHAT, 1)]), "(a turn may start with its first update)"
    assert room.backlog == 0, "the parsed updates are not kept in memory"
    assert await inbox.pending(CHAT) == 2, "nothing dropped: the next runner serves them"
    assert any("left for the sweeper" in r.getMessage() for r in caplog.records)
    assert all("secret" not in r.getMessage() and CHAT not in r.getMessage()
               for r in caplog.records)


async def test_a_handle_that_raises_hands_the_chat_back_with_its_update(
        rooms: Rooms, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="channels.inbox")
    inbox = MemoryInbox()

    async def broken(chat: str, seq: int, payload: str, parsed: Any, last: bool) -> bool:
        raise RuntimeError(f"bug while reading {payload}")

    room = rooms.make(inbox, broken)
    await room.put(CHAT, "secret text", None, seq=1)
    await idle(room)
    assert await inbox.pending(CHAT) == 1, "kept for another try"
    assert room.backlog == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("RuntimeError" in m for m in messages)
    assert all("secret" not in m and CHAT not in m for m in messages)
    assert [chat for chat, _ in await inbox.stranded(idle=0)] == [CHAT], "handed back"


async def test_a_lost_turn_finishes_the_update_in_hand_then_stops(rooms: Rooms) -> None:
    """As after a Redis restart without persistence: the turn (and the queue) are gone;
    the runner still answers the update it holds, then stops instead of serving more."""
    handle = FakeHandle()
    gate = handle.gate(CHAT, 1)  # the runner is mid-update when its turn is lost
    inbox = MemoryInbox()
    room = rooms.make(inbox, handle)
    await room.put(CHAT, "p1", None, seq=1)
    await room.put(OTHER, "q1", None, seq=1)
    await asyncio.wait_for(handle.entered(CHAT, 1).wait(), WAIT)
    await until(lambda: room.running == 1)  # OTHER was served
    await inbox.forget(CHAT)  # the turn is not ours any more
    assert await room.renew() == 1
    gate.set()
    await idle(room)
    assert (CHAT, 1) in handle.served, "the update in hand was answered, not cancelled"
    assert room.backlog == 0 and room.running == 0


async def test_renew_and_sweep_survive_an_unreachable_inbox(rooms: Rooms) -> None:
    handle = FakeHandle()
    handle.gate(CHAT, 1)
    inbox = DownInbox(MemoryInbox(), renew=None, stranded=None)
    room = rooms.make(inbox, handle)
    await room.put(CHAT, "p1", None, seq=1)
    await asyncio.wait_for(handle.entered(CHAT, 1).wait(), WAIT)
    await room.renew()
    assert await room.sweep(idle=0) == 0
    assert room.running == 1, "a turn is not given up for a missed renewal"
    handle.gate(CHAT, 1).set()
    await idle(room)
    assert handle.served == [(CHAT, 1)]


async def test_a_sweep_that_claims_a_chat_of_its_own_hands_it_back(rooms: Rooms) -> None:
    handle = FakeHandle()
    gate = handle.gate(CHAT, 1)
    inbox = MemoryInbox()
    room = rooms.make(inbox, handle)
    await room.put(CHAT, "p1", None, seq=1)
    await asyncio.wait_for(handle.entered(CHAT, 1).wait(), WAIT)
    token = room._turns[CHAT].token  # noqa: SLF001 - as if its lease had run out
    await inbox.release(CHAT, token)
    assert await room.sweep(idle=0) == 1
    assert room.running == 1, "the old runner keeps the chat until it ends"
    gate.set()
    await idle(room)
    claimed = await inbox.stranded(idle=0)
    assert [chat for chat, _ in claimed] == [CHAT], "the claim was handed back"


async def test_the_keeper_renews_and_sweeps(rooms: Rooms) -> None:
    renewed, swept = asyncio.Event(), asyncio.Event()

    class Watched(DownInbox):
        async def renew(self, turns: Mapping[str, str]) -> set[str]:
            renewed.set()
            return await self.inner.renew(turns)

        async def stranded(self, idle: float, limit: int = 100) -> list[tuple[str, str]]:
            swept.set()
            return await self.inner.stranded(idle, limit)

    inner = MemoryInbox()
    await inner.release(CHAT, (await inner.put(CHAT, "left behind", 1))[1] or "")
    handle = FakeHandle()
    room = rooms.make(Watched(inner), handle)
    keeper = asyncio.create_task(room.keep(renew_every=0.01, sweep_every=0.005))
    try:
        await asyncio.wait_for(asyncio.gather(renewed.wait(), swept.wait()), WAIT)
        await until(lambda: handle.served == [(CHAT, 1)])
    finally:
        keeper.cancel()
    room.start()
    first = room._keeper  # noqa: SLF001
    room.start()  # idempotent: one keeper
    assert first is not None and room._keeper is first  # noqa: SLF001


# --- two processes on one Redis -----------------------------------------------------------------


@pytest.fixture
async def redis_inbox(redis_url: str, unique_prefix: str) -> AsyncIterator[RedisInbox]:
    client = redis.asyncio.from_url(redis_url, decode_responses=True)
    yield RedisInbox(client, prefix=unique_prefix)
    await client.aclose()
    await delete_prefixed(redis_url, unique_prefix)


async def test_two_mailrooms_on_one_redis_serve_a_chat_one_at_a_time_in_order(
        rooms: Rooms, redis_inbox: RedisInbox) -> None:
    log: list[tuple[str, int]] = []
    busy: list[str] = []
    overlaps: list[tuple[str, int]] = []

    def handle_of(name: str) -> Callable[[str, int, str, Any, bool], Awaitable[bool]]:
        async def handle(chat: str, seq: int, payload: str, parsed: Any, last: bool) -> bool:
            if busy:
                overlaps.append((name, seq))
            busy.append(name)
            assert payload == f"update {seq}"
            assert parsed in (None, f"parsed {seq}")
            await asyncio.sleep(0.003)  # room for another runner to interleave, if it could
            log.append((name, seq))
            busy.remove(name)
            return True
        return handle

    one = rooms.make(redis_inbox, handle_of("one"))
    two = rooms.make(redis_inbox, handle_of("two"))
    total = 40
    for seq in range(1, total + 1):
        room = one if seq % 2 else two
        assert await room.put(CHAT, f"update {seq}", f"parsed {seq}", seq=seq)
        if seq % 7 == 0:  # sometimes the queue runs dry and the turn moves on
            await until(lambda: one.running == 0 and two.running == 0)
        else:
            await asyncio.sleep(0.001)
    await until(lambda: one.running == 0 and two.running == 0)
    assert overlaps == []
    assert [seq for _, seq in log] == list(range(1, total + 1)), "each once, in order"
    assert {name for name, _ in log} == {"one", "two"}, "the turn moved between processes"
    assert await redis_inbox.pending(CHAT) == 0
    assert one.backlog == 0 and two.backlog == 0


async def test_two_mailrooms_on_one_redis_serve_many_chats_concurrently(
        rooms: Rooms, redis_inbox: RedisInbox) -> None:
    served: dict[str, list[int]] = {}
    busy: set[str] = set()
    overlaps: list[str] = []

    async def handle(chat: str, seq: int, payload: str, parsed: Any, last: bool) -> bool:
        if chat in busy:
            overlaps.append(chat)
        busy.add(chat)
        await asyncio.sleep(0.001)
        served.setdefault(chat, []).append(seq)
        busy.discard(chat)
        return True

    rooms_ = [rooms.make(redis_inbox, handle), rooms.make(redis_inbox, handle)]
    chats = [f"chat{n}" for n in range(8)]
    for seq in range(1, 11):  # each chat's updates in order; the chats' all at once
        puts = [rooms_[(seq + n) % 2].put(chat, f"update {seq}", None, seq=seq)
                for n, chat in enumerate(chats)]
        assert all(await asyncio.gather(*puts))
    await until(lambda: all(room.running == 0 for room in rooms_))
    assert overlaps == []
    for chat in chats:
        assert served[chat] == list(range(1, 11)), chat


async def test_a_turn_stranded_by_a_dead_process_is_taken_up_by_the_other(
        rooms: Rooms, redis_url: str, unique_prefix: str) -> None:
    client = redis.asyncio.from_url(redis_url, decode_responses=True)
    try:
        inbox = RedisInbox(client, prefix=unique_prefix, lease=0.2)
        dead = FakeHandle()
        dead.gate(CHAT, 1)  # the process hangs mid-update and never renews
        first = rooms.make(inbox, dead)
        assert await first.put(CHAT, "update 1", None, seq=1)
        assert await first.put(CHAT, "update 2", None, seq=2)
        await asyncio.wait_for(dead.entered(CHAT, 1).wait(), WAIT)
        await asyncio.sleep(0.3)  # its lease ran out
        handle = FakeHandle()
        second = rooms.make(inbox, handle)
        assert await second.sweep(idle=0) == 1
        await idle(second)
        assert handle.served == [(CHAT, 1), (CHAT, 2)]
        dead.gate(CHAT, 1).set()  # the hung runner wakes: its next finds the turn gone
        await idle(first)
        assert dead.served == [(CHAT, 1)]
        assert await inbox.pending(CHAT) == 0
    finally:
        await client.aclose()
        await delete_prefixed(redis_url, unique_prefix)

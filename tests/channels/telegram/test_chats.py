"""Per-chat order within a process, and the chat's view (kept in its session) under the
store's lock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from channels.core import ChatQueue
from channels.telegram.chats import BlockedChats, ChatView, open_chat_view
from flows.engine import FLOW_TIMEOUT, UNKNOWN_VIEW
from flows.menu import MENU
from flows.ports import SessionBusy, SessionSlot, SessionStore, StoreUnavailable
from flows.types import Session, SessionKey
from storage.sessions import MemorySessionStore, redis_store_from_url


async def test_the_queue_serves_one_chat_in_arrival_order_and_forgets_idle_chats() -> None:
    queue, order = ChatQueue(), []

    async def update(n: int) -> None:
        async with queue.hold(1):
            await asyncio.sleep(0.01 * (5 - n))  # earlier ones are slower
            order.append(n)

    await asyncio.gather(*(update(n) for n in range(5)))
    assert order == [0, 1, 2, 3, 4]
    assert len(queue) == 0


async def test_the_queue_lets_other_chats_through() -> None:
    queue = ChatQueue()
    async with queue.hold(1), asyncio.timeout(1), queue.hold(2):
        assert len(queue) == 2


async def test_the_view_is_saved_only_when_it_holds_something() -> None:
    store = MemorySessionStore()
    async with open_chat_view(store, 5) as view:
        assert not view.contact_keyboard and not view.blocked
        view.contact_keyboard = True
    async with store.chat(SessionKey("telegram", "5")) as slot:
        assert slot.session is not None
        assert (slot.session.state, slot.session.view) == (MENU, {"contact_keyboard": True})
        slot.session = None
    async with open_chat_view(store, 5):
        pass
    async with store.chat(SessionKey("telegram", "5")) as slot:
        assert slot.session is None


async def test_the_view_keeps_the_conversation_and_its_time_to_live() -> None:
    store = MemorySessionStore()
    key = SessionKey("telegram", "6")
    async with store.chat(key) as slot:
        slot.session = Session("registration:ask_nik", "id", {"nik": "x"}, 1.0)
    captured: list[float | None] = []

    class Spy(MemorySessionStore):
        @asynccontextmanager
        async def chat(self, key: SessionKey, *,
                       once: str | None = None) -> AsyncIterator[SessionSlot]:
            async with store.chat(key, once=once) as slot:
                yield slot
                captured.append(slot.ttl)

    async with open_chat_view(Spy(), 6) as view:
        view.blocked = True
    async with store.chat(key) as slot:
        assert slot.session == Session("registration:ask_nik", "id", {"nik": "x"}, 1.0,
                                       view={"blocked": True})
    assert captured == [FLOW_TIMEOUT]  # a half-finished step keeps its short life
    async with open_chat_view(Spy(), 6, ttl_for=lambda _: 300.0):  # the engine's setting
        pass
    assert captured == [FLOW_TIMEOUT, 300.0]


async def test_the_view_lock_orders_chats_across_processes(redis_url: str,
                                                           unique_prefix: str) -> None:
    first = redis_store_from_url(redis_url, prefix=unique_prefix)
    second = redis_store_from_url(redis_url, prefix=unique_prefix)
    events: list[str] = []
    try:
        async with open_chat_view(first, 9) as view:
            view.blocked = True
            waiting = asyncio.create_task(_enter(second, events))
            await asyncio.sleep(0.1)
            events.append("first done")
        await waiting
        assert events == ["first done", "second in, blocked=True"]
    finally:
        await first.aclose()
        await second.aclose()


async def _enter(store: SessionStore, events: list[str]) -> None:
    async with open_chat_view(store, 9) as view:
        events.append(f"second in, blocked={view.blocked}")


class BrokenStore:
    """A session store whose lock cannot be taken, or whose save fails."""

    def __init__(self, error: Exception, *, on_save: bool = False) -> None:
        self.error = error
        self.on_save = on_save

    @asynccontextmanager
    async def chat(self, key: SessionKey, *,
                   once: str | None = None) -> AsyncIterator[SessionSlot]:
        if not self.on_save:
            raise self.error
        yield SessionSlot(None)
        raise self.error


@pytest.mark.parametrize("error", [SessionBusy("busy"), StoreUnavailable("down")])
async def test_a_busy_or_unavailable_store_serves_the_chat_without_the_lock(
        error: Exception) -> None:
    ran = False
    async with open_chat_view(BrokenStore(error), 3) as view:
        ran = True
        view.blocked = True
    assert ran


async def test_a_failed_save_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async with open_chat_view(BrokenStore(SessionBusy("lock expired"), on_save=True),
                              3) as view:
        view.contact_keyboard = True
    assert "could not save the view" in caplog.text


async def test_an_error_inside_the_block_still_propagates() -> None:
    with pytest.raises(SessionBusy, match="from the block"):
        async with open_chat_view(MemorySessionStore(), 3):
            raise SessionBusy("from the block")


def test_an_unknown_view_may_hold_a_contact_keyboard() -> None:
    # No stored session (a step that timed out took the view along): the next plain reply
    # removes the share-contact keyboard that may still be up.
    assert ChatView.load(UNKNOWN_VIEW) == ChatView(contact_keyboard=True)
    assert ChatView.load({}) == ChatView()
    assert ChatView.load({"blocked": True}).dump() == {"blocked": True}


async def test_a_blocked_chat_is_marked_audited_and_cleared() -> None:
    store, audited = MemorySessionStore(), []

    async def audit(key: SessionKey, action: str) -> None:
        audited.append((key.chat_id, action))

    blocked, view = BlockedChats(store, audit), ChatView()
    await blocked.mark(8, view)
    assert view.blocked and await blocked.is_blocked(8) and not await blocked.is_blocked(9)
    assert await store.get("tg:blocked:8") == "1"
    await blocked.clear(8, view)
    assert not view.blocked and not await blocked.is_blocked(8)
    assert audited == [("8", "blocked"), ("8", "unblocked")]


async def test_a_blocked_mark_the_store_cannot_keep_is_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    class DownKv(MemorySessionStore):
        async def put(self, name: str, value: str, ttl: float) -> None:
            raise StoreUnavailable("down")

    view = ChatView()
    await BlockedChats(DownKv()).mark(8, view)
    assert view.blocked  # the view still says so: nothing more is sent in this update
    assert "could not record a blocked chat: StoreUnavailable" in caplog.text

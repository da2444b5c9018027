"""``Engine.serve``: replies delivered under the chat's lock, the channel's view kept with the
session, repeated deliveries dropped, faults of the delivery and of the store; and changes of
the chat's links seen by the very next update."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest

from flows.engine import UNKNOWN_VIEW, Engine, NotServed, Served, View
from flows.i18n import Catalog
from flows.ports import SessionSlot, StoreUnavailable
from flows.types import Event, Reply, SessionKey
from storage.sessions import MemorySessionStore
from tests.fakes.down_store import DownSessionStore
from tests.flows.conftest import SITI, Chat, World

KEY = SessionKey("test", "1001")


class Screen:
    """A channel's delivery: records replies, keeps or changes the view, can fail."""

    def __init__(self, *, fail: Exception | None = None, mark: str = "") -> None:
        self.replies: list[Reply] = []
        self.views: list[View] = []
        self.fail = fail
        self.mark = mark

    async def __call__(self, replies: list[Reply], view: View) -> None:
        self.views.append(dict(view))
        self.replies.extend(replies)
        if self.mark:
            view[self.mark] = True
        if self.fail is not None:
            raise self.fail


async def test_serve_delivers_and_keeps_the_view_with_the_session(world: World) -> None:
    first = Screen(mark="contact_keyboard")
    assert await world.engine.serve(KEY, _update(Event.message("menu"), "1"), first) \
        is Served.ANSWERED
    assert first.replies and first.views == [dict(UNKNOWN_VIEW)]  # a new chat
    second = Screen()
    await world.engine.serve(KEY, _update(Event.message("cek saldo"), "2"), second)
    assert second.views == [{"contact_keyboard": True}]


async def test_a_repeated_update_is_served_once(world: World) -> None:
    screen = Screen()
    event = _update(Event.message("menu"), "7")
    assert await world.engine.serve(KEY, event, screen) is Served.ANSWERED
    assert await world.engine.serve(KEY, event, screen) is Served.REPEAT
    assert len(screen.views) == 1


async def test_events_without_an_update_id_are_never_taken_for_repeats(world: World) -> None:
    screen = Screen()
    for _ in range(2):
        assert await world.engine.serve(KEY, Event.message("menu"), screen) is Served.ANSWERED


async def test_a_failed_delivery_keeps_the_step_and_is_raised(world: World,
                                                               chat: Chat) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    assert chat.key == KEY
    broken = Screen(fail=RuntimeError("Bad Request"))
    with pytest.raises(RuntimeError, match="Bad Request"):
        await world.engine.serve(KEY, _update(Event.message(SITI["nik"]), "3"), broken)
    async with world.store.chat(KEY) as slot:  # the NIK was taken: the next step is the KPJ
        assert slot.session is not None and slot.session.state == "registration:ask_kpj"


async def test_a_store_fault_delivers_an_apology(world: World) -> None:
    engine = Engine(sessions=DownSessionStore(), ports=world.engine._ports,  # noqa: SLF001
                    catalog=Catalog(strict=True), strict=True)
    screen = Screen()
    event = _update(Event.message("cek saldo", language_code="en"), "4")
    assert await engine.serve(KEY, event, screen) is Served.STORE_FAULT
    assert [r.text for r in screen.replies] == [
        "Sorry, the service is busy right now. Please try again in a few minutes."]


async def test_the_apology_during_a_store_outage_speaks_the_language_the_chat_chose(
        world: World) -> None:
    await world.accounts.set_language(KEY, "en", world.clock.now())  # kept in SQL
    engine = Engine(sessions=DownSessionStore(), ports=world.engine._ports,  # noqa: SLF001
                    catalog=Catalog(strict=True), strict=True)
    screen = Screen()
    event = _update(Event.message("cek saldo", language_code="id"), "8")  # an Indonesian phone
    assert await engine.serve(KEY, event, screen) is Served.STORE_FAULT
    assert [r.text for r in screen.replies] == [
        "Sorry, the service is busy right now. Please try again in a few minutes."]


async def test_a_store_fault_before_delivery_is_not_served_when_the_caller_keeps_the_update(
        world: World) -> None:
    engine = Engine(sessions=DownSessionStore(), ports=world.engine._ports,  # noqa: SLF001
                    catalog=Catalog(strict=True), strict=True)
    screen = Screen()
    with pytest.raises(NotServed):  # nothing ran, nothing was sent: the queue tries again
        await engine.serve(KEY, _update(Event.message("cek saldo"), "5"), screen, requeue=True)
    assert screen.replies == []


async def test_a_store_fault_after_delivery_is_apologised_for_even_when_kept(
        world: World) -> None:
    engine = Engine(sessions=SaveFails(MemorySessionStore()),
                    ports=world.engine._ports,  # noqa: SLF001
                    catalog=Catalog(strict=True), strict=True)
    screen = Screen()
    event = _update(Event.message("menu", language_code="en"), "6")
    assert await engine.serve(KEY, event, screen, requeue=True) is Served.STORE_FAULT
    answer, apology = screen.replies[0], screen.replies[-1]
    assert answer.text.startswith("I can show your JHT balance")  # the answer went out
    assert apology.text.startswith("Sorry, the service is busy")  # served: not tried again


async def test_a_failed_save_after_an_answer_that_changed_nothing_adds_no_apology(
        world: World, chat: Chat) -> None:
    await chat.say("menu")  # a session at the menu exists
    engine = Engine(sessions=SaveFails(world.store), ports=world.engine._ports,  # noqa: SLF001
                    catalog=Catalog(strict=True), strict=True)
    screen = Screen()
    event = _update(Event.message("/bantuan", language_code="id"), "9")  # stays at the menu
    assert await engine.serve(KEY, event, screen, requeue=True) is Served.ANSWERED
    assert screen.replies and not any("sibuk" in r.text for r in screen.replies)


# --- the chat's links decide at once ----------------------------------------------------


async def test_unlinking_is_seen_at_once(world: World, chat: Chat) -> None:
    await chat.register()
    assert "Saldo JHT" in await chat.say("cek saldo")
    await chat.say("/keluar")
    await chat.press("acct:logout")
    assert "Saldo JHT" not in await chat.say("cek saldo")
    assert "go:register" in chat.buttons


async def test_erasure_is_seen_at_once(world: World, chat: Chat) -> None:
    await chat.register()
    assert "Saldo JHT" in await chat.say("cek saldo")
    await chat.say("/hapusdata")
    await chat.press("acct:erase")
    await chat.say("cek saldo")
    assert "Saldo JHT" not in chat.text and "go:register" in chat.buttons


async def test_an_unlink_is_seen_even_when_its_session_save_failed(world: World,
                                                                  chat: Chat) -> None:
    await chat.register()
    assert "Saldo JHT" in await chat.say("cek saldo")
    await chat.say("/keluar")
    failing = Engine(sessions=SaveFails(world.store), ports=world.engine._ports,  # noqa: SLF001
                     catalog=Catalog(strict=True), strict=True)
    await failing.handle(KEY, Event.button("acct:logout"))  # unlinked; the session not saved
    assert "Saldo JHT" not in await chat.say("cek saldo")


async def test_a_link_made_by_registration_is_seen_at_once(world: World, chat: Chat) -> None:
    await chat.say("cek saldo")
    assert "go:register" in chat.buttons
    await chat.register()
    assert "Saldo JHT" in await chat.say("cek saldo")


class SaveFails:
    """The store's session is loaded and the step runs, but the save fails (Redis went down
    or the lock expired)."""

    def __init__(self, inner: MemorySessionStore) -> None:
        self.inner = inner

    @asynccontextmanager
    async def chat(self, key: SessionKey, *,
                   once: str | None = None) -> AsyncIterator[SessionSlot]:
        async with self.inner.chat(key, once=once) as slot:
            yield slot
            raise StoreUnavailable("Redis failed (ConnectionError)")


def _update(event: Event, update_id: str) -> Event:
    return replace(event, update_id=update_id)

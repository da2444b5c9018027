"""``Engine.serve``: replies delivered under the chat's lock, the channel's view kept with the
session, repeated deliveries dropped, faults of the delivery and of the store; and the chat's
links read from the session instead of the database."""

from __future__ import annotations

from dataclasses import replace

import pytest

from flows.engine import Engine, Served, View
from flows.flow import Context, Outcome, step
from flows.i18n import Catalog
from flows.links import LINKS_MAX_AGE
from flows.menu import MENU
from flows.ports import AccountStore
from flows.routes import ENTRIES
from flows.types import Event, Reply, SessionKey
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
    assert first.replies and first.views == [{}]
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


# --- the chat's links, kept in the session -------------------------------------------------


class CountingAccounts:
    """The real account store, counting ``linked_kpjs`` reads."""

    def __init__(self, inner: AccountStore) -> None:
        self.inner = inner
        self.reads = 0

    async def linked_kpjs(self, key: SessionKey) -> list[str]:
        self.reads += 1
        return await self.inner.linked_kpjs(key)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def counting_engine(world: World) -> tuple[Engine, CountingAccounts]:
    ports = world.engine._ports  # noqa: SLF001
    accounts = CountingAccounts(ports.accounts)
    engine = Engine(sessions=world.store, ports=replace(ports, accounts=accounts),
                    catalog=Catalog(strict=True), strict=True)
    return engine, accounts


async def test_the_links_are_read_once_then_from_the_session(world: World,
                                                              chat: Chat) -> None:
    await chat.register()
    engine, accounts = counting_engine(world)
    chat.engine = engine
    for _ in range(3):
        assert "Saldo JHT" in await chat.say("cek saldo")
    assert accounts.reads == 1
    world.clock.advance(LINKS_MAX_AGE + 1)
    await chat.say("cek saldo")
    assert accounts.reads == 2  # too old: read again


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
    assert "go:register" in (await chat.say("cek saldo") and chat.buttons)


async def test_a_link_made_by_registration_is_seen_at_once(world: World, chat: Chat) -> None:
    await chat.say("cek saldo")  # unlinked: the empty list is kept in the session
    assert "go:register" in chat.buttons
    await chat.register()
    assert "Saldo JHT" in await chat.say("cek saldo")


async def test_a_fault_after_a_link_drops_the_kept_links(world: World, chat: Chat) -> None:
    await chat.say("cek saldo")  # keeps "no links" in the session
    async with world.store.chat(KEY) as slot:
        assert slot.session is not None and slot.session.links == ()

    async def link_then_fail(ctx: Context) -> Outcome:
        await ctx.ports.accounts.link(ctx.key, SITI["kpj"], ctx.now)
        raise RuntimeError("the step failed after linking")

    engine = Engine(sessions=world.store, ports=world.engine._ports,  # noqa: SLF001
                    catalog=Catalog(strict=True),
                    entries={**ENTRIES, "check_balance": step(link_then_fail, MENU)})
    assert await engine.serve(KEY, _update(Event.message("cek saldo"), "9"), Screen()) \
        is Served.ANSWERED
    async with world.store.chat(KEY) as slot:
        assert slot.session is not None and slot.session.links is None
    assert "Saldo JHT" in await chat.say("cek saldo")


def _update(event: Event, update_id: str) -> Event:
    return replace(event, update_id=update_id)

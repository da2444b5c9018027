"""The member's side of a handoff: the rating after a ticket closes, messages while queued,
and the English wording of the handoff (commands, plurals, "an agent")."""

from __future__ import annotations

import pytest

from flows.handoff import QUEUED_ACK_SECONDS, read_rating
from flows.menu import MENU
from support.desk import Result
from tests.flows.conftest import Chat, World


async def _open(chat: Chat) -> int:
    await chat.say("/petugas")
    await chat.press("ho:yes")
    tickets = chat.engine._ports.tickets  # noqa: SLF001
    assert tickets is not None
    ticket = await tickets.active_for(chat.key)
    assert ticket is not None
    return ticket.id


async def _closed_by_agent(chat: Chat, world: World) -> int:
    ticket_id = await _open(chat)
    assert await world.desk.claim(ticket_id, "Rina") is Result.DONE
    assert await world.desk.close(ticket_id, "Rina", "selesai") is Result.DONE
    assert "rate:5" in [b.data for r in world.delivered for row in r.buttons for b in row]
    return ticket_id


async def _state(world: World, chat: Chat) -> str:
    async with world.store.chat(chat.key) as slot:
        assert slot.session is not None
        return slot.session.state


@pytest.mark.parametrize(("typed", "stars"), [
    ("4", 4), ("5 bintang", 5), ("4/5", 4), ("⭐⭐⭐⭐", 4), ("⭐️⭐️⭐️", 3),
    ("sangat puas", 5), ("Sangat puas!", 5), ("kurang puas", 2), ("3 stars", 3),
])
async def test_a_typed_rating_is_stored(chat: Chat, world: World, typed: str,
                                        stars: int) -> None:
    ticket_id = await _closed_by_agent(chat, world)
    assert "Terima kasih atas penilaian" in await chat.say(typed)
    ticket = await world.tickets.get(ticket_id)
    assert ticket is not None and ticket.rating == stars


@pytest.mark.parametrize("typed", ["7", "bagus", "0", "⭐⭐⭐⭐⭐⭐"])
async def test_a_rating_out_of_range_is_asked_again_once(chat: Chat, world: World,
                                                         typed: str) -> None:
    ticket_id = await _closed_by_agent(chat, world)
    again = await chat.say(typed)
    assert "angka 1 (buruk) sampai 5" in again and "rate:5" in chat.buttons
    assert "/batal" in again
    assert "Terima kasih atas penilaian" in await chat.say("5")
    ticket = await world.tickets.get(ticket_id)
    assert ticket is not None and ticket.rating == 5


async def test_a_second_miss_moves_on_without_a_rating(chat: Chat, world: World) -> None:
    ticket_id = await _closed_by_agent(chat, world)
    await chat.say("7")
    assert "angka 1 (buruk)" not in await chat.say("8")
    assert await _state(world, chat) == MENU
    ticket = await world.tickets.get(ticket_id)
    assert ticket is not None and ticket.rating is None


async def test_a_request_instead_of_a_rating_is_answered(chat: Chat, world: World) -> None:
    await _closed_by_agent(chat, world)
    assert "go:register" in (await chat.say("cek saldo") and chat.buttons)


async def test_batal_skips_the_rating(chat: Chat, world: World) -> None:
    ticket_id = await _closed_by_agent(chat, world)
    await chat.say("7")
    await chat.say("/batal")
    assert await _state(world, chat) == MENU
    ticket = await world.tickets.get(ticket_id)
    assert ticket is not None and ticket.rating is None


def test_read_rating_is_strict() -> None:
    assert [read_rating(t) for t in ("1", " 5 ", "nilai 3", "bintang", "6", "12", "")] == [
        1, 5, 3, None, None, None, None]


async def test_a_queued_members_message_is_acknowledged_without_flooding(
        chat: Chat, world: World) -> None:
    await _open(chat)
    first = await chat.say("halo, saldo saya tidak naik")
    assert "sudah kami teruskan" in first and "urutan ke-1 dalam antrean" in first
    assert await chat.say("tolong dibantu") == "", "one acknowledgement, not one per message"
    assert any("tolong dibantu" in line for line in world.desk_lines), "still relayed"
    world.clock.advance(QUEUED_ACK_SECONDS + 1)
    assert "sudah kami teruskan" in await chat.say("masih menunggu")


async def test_no_acknowledgement_once_an_agent_answers(chat: Chat, world: World) -> None:
    ticket_id = await _open(chat)
    assert await world.desk.claim(ticket_id, "Rina") is Result.DONE
    assert await chat.say("halo") == "", "the agent answers from now on"


async def test_english_handoff_names_english_commands_and_counts(world: World) -> None:
    first, second = world.chat("en-a", "en"), world.chat("en-b", "en")
    for chat in (first, second):
        await chat.say("/start")
        await chat.press("lang:en")
    first_id = await _open(first)
    world.clock.advance(60)
    await world.desk.reply(first_id, "Rina", "hello")  # a median first reply of 1 minute
    await _open(second)
    opened = second.text
    assert "about 1 minute." in opened and "/done ends the request" in opened
    assert "/selesai" not in opened and "minutes" not in opened
    assert await world.desk.claim(first_id, "Rina") is Result.DONE
    assert "An agent, Rina, is now handling your request." in world.member_outbox.text
    assert "is cancelled" in await second.say("/done")
    assert await _state(world, second) == MENU


async def test_done_is_an_english_alias_of_selesai(chat: Chat, world: World) -> None:
    await chat.say("/start")
    await chat.press("lang:en")
    ticket_id = await _open(chat)
    await chat.say("/done")
    ticket = await world.tickets.get(ticket_id)
    assert ticket is not None and ticket.status.value == "closed"
    text = await chat.say("/done")
    assert "don't know that command" not in text and "go:check_balance" in chat.buttons, \
        "/done outside a ticket is known, as /selesai: the menu"


async def test_english_rating_question_names_cancel(chat: Chat, world: World) -> None:
    chat.language_code = "en"
    await chat.say("/start")
    await chat.press("lang:en")
    await _closed_by_agent(chat, world)
    again = await chat.say("great")
    assert "/cancel skips the rating" in again and "/batal" not in again

"""A whole handoff through the engine and the desk service: open, queue, claim, relay both
ways, internal note, close, rating; business hours; timeouts; the desk unavailable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.compose import with_ports
from flows.engine import Engine
from flows.hours import BusinessHours
from flows.i18n import Catalog
from flows.ports import DeskUnavailable, Ticket, TicketBrief, TicketStatus
from support.desk import Result
from support.sweeper import Sweeper, SweepPolicy
from tests.flows.conftest import Chat, World


async def _open(chat: Chat) -> int:
    await chat.say("mau bicara dengan petugas")
    assert "ho:yes" in chat.buttons
    await chat.press("ho:yes")
    return int(chat.text.split("#")[1].split()[0])


async def test_whole_handoff(chat: Chat, world: World) -> None:
    ticket_id = await _open(chat)
    assert "urutan ke-1 dalam antrean" in chat.text
    assert any(f"ticket #{ticket_id} opened" in line for line in world.desk_lines)
    assert "urutan ke-1 dalam antrean" in await chat.say("saldo saya kok tidak bertambah?"), \
        "relayed, and the queued member hears it was passed on"
    assert world.desk_lines[-1].endswith("member: saldo saya kok tidak bertambah?")
    assert await chat.say("/menu") == "", "commands are relayed too"
    assert world.desk_lines[-1].endswith("member: /menu")
    assert await world.desk.claim(ticket_id, "Rina") is Result.DONE
    assert "kini ditangani oleh Rina, petugas kami" in world.member_outbox.text
    assert await world.desk.note(ticket_id, "Rina", "cek data pemberi kerja") is Result.DONE
    assert "cek data" not in world.member_outbox.text, "a note is never relayed"
    await world.desk.reply(ticket_id, "Rina", "Iuran Anda sedang kami periksa.")
    assert "Iuran Anda sedang kami periksa.\n— Rina" in world.member_outbox.text
    await chat.say("terima kasih")
    lines = await world.tickets.last_lines(ticket_id, 10)
    assert [line.who for line in lines] == ["member", "member", "note", "agent", "member"]
    await world.desk.close(ticket_id, "Rina", "sudah dijelaskan")
    assert "Petugas telah mengakhiri percakapan" in world.member_outbox.text
    assert "rate:5" in [b.data for r in world.delivered for row in r.buttons for b in row]
    assert "Terima kasih atas penilaian" in await chat.press("rate:4")
    ticket = await world.tickets.get(ticket_id)
    assert ticket is not None and ticket.rating == 4 and ticket.status is TicketStatus.CLOSED
    assert "Saldo JHT" in await chat.say("cek saldo") or "dihubungkan" in chat.text, \
        "the bot takes over again"


async def test_a_second_ticket_is_not_opened(chat: Chat) -> None:
    first = await _open(chat)
    await chat.say("/selesai")
    second = await _open(chat)
    assert second != first
    await chat.say("/petugas")
    assert "masih terbuka" in await chat.say("/petugas") or chat.text == ""


async def test_member_ends_with_selesai_before_a_claim(chat: Chat, world: World) -> None:
    ticket_id = await _open(chat)
    assert "dibatalkan" in await chat.say("/selesai")
    ticket = await world.tickets.get(ticket_id)
    assert ticket is not None and ticket.status is TicketStatus.CLOSED
    assert await world.desk.reply(ticket_id, "Rina", "halo?") is Result.CLOSED


async def test_outside_business_hours_says_when_the_team_answers(world: World) -> None:
    hours = BusinessHours()  # Monday-Friday 08:00-17:00 WIB
    ports = world.engine._ports  # noqa: SLF001
    engine = Engine(sessions=world.store, catalog=Catalog(strict=True), strict=True,
                    ports=with_ports(ports, hours=hours))
    world.clock.at = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)  # Saturday 10:00 WIB
    chat = Chat(engine, world.outbox)
    await chat.say("/petugas")
    await chat.press("ho:yes")
    assert "di luar jam kerja petugas" in chat.text and "23 Nov 2026 08:00" in chat.text


async def test_queue_position_and_expected_wait(world: World) -> None:
    first, second = world.chat("a"), world.chat("b")
    first_id = await _open(first)
    world.clock.advance(300)
    await world.desk.reply(first_id, "Rina", "halo")  # a first reply after 5 minutes
    third = world.chat("c")
    await _open(second)
    await _open(third)
    assert "urutan ke-2 dalam antrean" in third.text and "sekitar 10 menit" in third.text


class _DownDesk:
    async def open(self, brief: TicketBrief) -> int:
        raise DeskUnavailable("not an admin")

    async def relay(self, ticket: Ticket, text: str) -> None:
        raise DeskUnavailable("down")

    async def notice(self, ticket: Ticket, text: str) -> None:
        raise DeskUnavailable("down")


async def test_desk_unavailable_keeps_the_ticket_and_delivers_later(world: World) -> None:
    ports = world.engine._ports  # noqa: SLF001
    down = Engine(sessions=world.store, catalog=Catalog(strict=True), strict=True,
                  ports=with_ports(ports, desk=_DownDesk()))
    chat = Chat(down, world.outbox)
    await chat.say("/petugas")
    text = await chat.press("ho:yes")
    assert "175" in text and "go:faq" in chat.buttons
    await chat.say("tolong bantu saya")
    ticket = await world.tickets.active_for(chat.key)
    assert ticket is not None and ticket.topic_id is None
    assert [line.text for line in await world.tickets.last_lines(ticket.id)] == [
        "tolong bantu saya"]
    sweeper = Sweeper(tickets=world.tickets, desk=world.desk, kv=world.store, clock=world.clock)
    await sweeper.tick()  # the working desk of `world` now receives it
    ticket = await world.tickets.get(ticket.id)
    assert ticket is not None and ticket.topic_id == ticket.id
    assert any("tolong bantu saya" in line for line in world.desk_lines)
    assert "Petugas kini dapat melihat" in world.member_outbox.text


async def test_reminder_while_queued_and_idle_close(chat: Chat, world: World) -> None:
    ticket_id = await _open(chat)
    sweeper = Sweeper(tickets=world.tickets, desk=world.desk, kv=world.store, clock=world.clock,
                      policy=SweepPolicy(reminder_after=600, idle_close_after=1800))
    world.clock.advance(599)
    await sweeper.tick()
    assert "masih dalam antrean" not in world.member_outbox.text
    world.clock.advance(2)
    await sweeper.tick()
    assert "masih dalam antrean" in world.member_outbox.text
    await world.desk.reply(ticket_id, "Rina", "Ada yang bisa dibantu?")
    world.clock.advance(1799)
    await sweeper.tick()
    assert "tidak ada balasan" not in world.member_outbox.text
    world.clock.advance(2)
    await sweeper.tick()
    assert "tidak ada balasan selama 30 menit" in world.member_outbox.text
    ticket = await world.tickets.get(ticket_id)
    assert ticket is not None and ticket.status is TicketStatus.CLOSED


async def test_a_member_who_blocked_the_bot_gets_the_ticket_closed(chat: Chat,
                                                                   world: World) -> None:
    ticket_id = await _open(chat)
    world.member_outbox.reachable = False
    assert await world.desk.reply(ticket_id, "Rina", "halo") is Result.UNREACHABLE
    ticket = await world.tickets.get(ticket_id)
    assert ticket is not None and ticket.status is TicketStatus.CLOSED
    assert "blocked" in ticket.resolution


@pytest.mark.parametrize("offer", ["go:handoff:not_understood", "go:handoff:faq_unhelpful"])
async def test_the_reason_is_kept_on_the_ticket(chat: Chat, world: World, offer: str) -> None:
    await chat.press(offer)
    await chat.press("ho:yes")
    ticket = await world.tickets.active_for(chat.key)
    assert ticket is not None and ticket.reason == offer.rsplit(":", 1)[1]


async def test_a_second_agent_cannot_claim_a_taken_ticket(chat: Chat, world: World) -> None:
    ticket_id = await _open(chat)
    assert await world.desk.claim(ticket_id, "Rina") is Result.DONE
    assert await world.desk.claim(ticket_id, "Budi") is Result.TAKEN
    assert "Budi" not in world.member_outbox.text


async def test_two_sweepers_sharing_a_store_remind_once(chat: Chat, world: World) -> None:
    """Several serve processes each run a sweeper; one reminder reaches the member."""
    await _open(chat)
    first = Sweeper(tickets=world.tickets, desk=world.desk, kv=world.store, clock=world.clock)
    second = Sweeper(tickets=world.tickets, desk=world.desk, kv=world.store, clock=world.clock)
    world.clock.advance(601)
    await first.tick()
    await second.tick()
    assert world.member_outbox.text.count("masih dalam antrean") == 1


RAW_LINE = "NIK saya 3171014501900001 dan HP 081234567890, KPJ 12345678901"
MASKED_LINE = "NIK saya 3171********0001 dan HP 0812****7890, KPJ 123*****901"
RAW_VALUES = ("3171014501900001", "081234567890", "12345678901", "siti@example.com")


async def _stored_text(world: World) -> str:
    """Every text value of the ticket tables, straight from the database."""
    async with world.tickets._engine.connect() as conn:  # noqa: SLF001 - behind the port
        rows = [*(await conn.exec_driver_sql("SELECT * FROM ticket")).all(),
                *(await conn.exec_driver_sql("SELECT * FROM ticket_line")).all()]
    return "\n".join(str(value) for row in rows for value in row)


async def test_the_desk_and_the_transcript_get_masked_identifiers(chat: Chat,
                                                                  world: World) -> None:
    ticket_id = await _open(chat)
    await chat.say(RAW_LINE)
    assert chat.deleted, "the member is told the message with the NIK was deleted"
    await chat.say("email saya siti@example.com, hp lain +62 812-3456-7890")
    assert world.desk_lines[-2].endswith(f"member: {MASKED_LINE}")
    assert world.desk_lines[-1].endswith("member: email saya s***@example.com, hp lain "
                                         "0812****7890")
    lines = [line.text for line in await world.tickets.last_lines(ticket_id)]
    assert lines[0] == MASKED_LINE
    stored = await _stored_text(world)
    assert not [raw for raw in RAW_VALUES if raw in stored], stored


async def test_the_agent_side_is_masked_too(chat: Chat, world: World) -> None:
    ticket_id = await _open(chat)
    await world.desk.reply(ticket_id, "Rina", "NIK Anda 3171014501900001 sudah cocok.")
    assert "3171014501900001" in world.member_outbox.text, "the member reads the agent's words"
    await world.desk.note(ticket_id, "Rina", "HP 081234567890, KPJ 12345678901")
    await world.desk.close(ticket_id, "Rina", "email siti@example.com diganti")
    stored = await _stored_text(world)
    assert "3171********0001" in stored and "0812****7890" in stored
    assert not [raw for raw in RAW_VALUES if raw in stored], stored


async def test_a_code_typed_while_one_is_pending_is_masked_and_deleted(chat: Chat,
                                                                        world: World) -> None:
    await chat.reach_code_step()
    code = chat.codes()[-1]
    await chat.say("/petugas")
    await chat.press("ho:yes")
    ticket = await world.tickets.active_for(chat.key)
    assert ticket is not None
    await world.desk.claim(ticket.id, "Rina")
    await chat.say(f"kodenya {code} tapi tidak bisa")
    assert chat.deleted and "kode" in chat.text, "the member is told the code was deleted"
    assert world.desk_lines[-1].endswith("member: kodenya ****** tapi tidak bisa")
    assert code not in await _stored_text(world)
    world.clock.advance(6 * 60)  # the code has expired: six digits are ordinary text again
    await chat.say("nomor surat 123456")
    assert world.desk_lines[-1].endswith("member: nomor surat 123456")

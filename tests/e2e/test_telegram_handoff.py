"""A whole handoff on Telegram against the fake Bot API: the member's private chat and the agent
supergroup with topics, wired as ``run_bot.py serve`` wires them (forum desk, group hook, outbox
router, desk service, sweeper)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer

from app.compose import build_engine, build_ports
from app.metrics import CountingOtpSender, CountingTicketStore, Metrics, TicketGauges
from app.otp_delivery import OutboxOtpSender
from app.outbox import OutboxRouter
from channels.telegram.agent_desk import AgentGroup, TelegramForumDesk
from channels.telegram.channel import TelegramChannel
from channels.telegram.outbox import TelegramOutbox
from channels.telegram.session import JsonAiohttpSession
from channels.telegram.throttle import SendThrottle
from flows.hours import BusinessHours
from flows.i18n import Catalog
from flows.ports import TicketStatus
from flows.types import SessionKey
from storage.accounts import SqlAccountStore
from storage.sessions import MemorySessionStore
from storage.tickets import SqlTicketStore
from support.desk import DeskService
from support.sweeper import Sweeper, SweepPolicy
from tests.e2e.harness import FAST, TOKEN, Harness, Member, open_database, register
from tests.fakes.bot_api import FakeBotApi
from tests.flows.conftest import SECRET, SITI, ManualClock

MEMBER = 5557001
GROUP = -1001234567890
AGENT = 777001  # first name "User777001" in the fake
STRANGER = 777002
ALWAYS = BusinessHours.parse("mon-sun", "00:00-23:59", "UTC", "")


@dataclass
class World:
    """The bot process (``tg``), its desk parts, and the agent group as the test sees it."""

    tg: Harness
    tickets: SqlTicketStore
    desk: DeskService
    sweeper: Sweeper
    gauges: TicketGauges

    @property
    def fake(self) -> FakeBotApi:
        return self.tg.fake

    def topic(self) -> int:
        """The thread id of the newest topic in the agent group."""
        topics = self.fake.topics(GROUP)
        assert topics, "no topic was created"
        return max(topics)

    def in_topic(self, thread: int) -> list[str]:
        return self.fake.topic_messages(GROUP, thread)

    async def agent_says(self, thread: int | None, text: str, *, user_id: int = AGENT,
                         chat_id: int = GROUP) -> None:
        update = self.fake.message_update(chat_id, text, user_id=user_id,
                                          chat_type="supergroup", thread_id=thread,
                                          is_topic=thread is not None)
        await self.tg.feed(update)

    async def agent_presses(self, label: str, *, user_id: int = AGENT) -> None:
        message_id, data = self._group_button(label)
        await self.tg.feed(self.fake.callback_update(GROUP, data, message_id=message_id,
                                                     user_id=user_id))

    def _group_button(self, label: str) -> tuple[int, str]:
        for record in reversed(self.fake.calls("sendMessage")):
            markup = record.params.get("reply_markup")
            if not (record.ok and record.targets(GROUP) and isinstance(markup, dict)):
                continue
            for row in markup.get("inline_keyboard", []):
                for key in row:
                    if key["text"] == label:
                        return int(record.result["message_id"]), str(key["callback_data"])
        raise AssertionError(f"no {label} button in the agent group")


@pytest.fixture
async def world(tmp_path: Path, fake: FakeBotApi) -> AsyncIterator[World]:
    database = await open_database(f"sqlite:///{tmp_path / 'bot.db'}")
    store, metrics, clock = MemorySessionStore(), Metrics(), ManualClock()
    outbox = tmp_path / "outbox.jsonl"
    accounts = SqlAccountStore(database, SECRET)
    tickets = SqlTicketStore(database)
    bot = Bot(TOKEN, session=JsonAiohttpSession(api=TelegramAPIServer.from_base(fake.api_base)))
    throttle = SendThrottle(**FAST)
    forum = TelegramForumDesk(bot, throttle, GROUP, secret=SECRET)
    ports = build_ports(kv=store, database=database, accounts=accounts, secret=SECRET,
                        otp_sender=CountingOtpSender(OutboxOtpSender(outbox), metrics),
                        clock=clock, tickets=CountingTicketStore(tickets, metrics), desk=forum,
                        hours=ALWAYS)
    catalog = Catalog(strict=True)
    engine = build_engine(store, ports, catalog=catalog, strict=True)
    router = OutboxRouter({"telegram": TelegramOutbox(bot, throttle, metrics=metrics,
                                                      secret=SECRET, sessions=store, kv=store)})
    desk = DeskService(engine=engine, tickets=tickets, outbox=router, clock=clock)
    group = AgentGroup(forum, tickets=tickets, service=desk, kv=store)
    channel = TelegramChannel(bot, serve=engine.serve, ports=ports,
                              throttle=throttle, metrics=metrics, catalog=catalog,
                              on_group_update=group.handle)
    sweeper = Sweeper(tickets=tickets, desk=desk, kv=store, clock=clock,
                      policy=SweepPolicy(reminder_after=600, idle_close_after=1800))
    tg = Harness(fake, bot, channel, engine, store, accounts, database, metrics, outbox, clock)
    try:
        yield World(tg, tickets, desk, sweeper, TicketGauges(metrics, tickets, clock))
    finally:
        await channel.drain()
        await channel.close()
        await database.dispose()


@pytest.fixture
async def member(world: World) -> Member:
    return world.tg.member(MEMBER)


async def _open(member: Member) -> list[str]:
    await member.say("mau bicara dengan petugas")
    return await member.press("ho:yes")


async def test_a_whole_handoff_from_open_to_rating(world: World, member: Member) -> None:
    await register(member, SITI)
    member.new_texts()
    opened = await _open(member)
    assert len(opened) == 1 and "urutan ke-1 dalam antrean" in opened[0]
    assert world.tg.metrics.value("bot_handoffs_total") == 1.0

    thread = world.topic()
    ticket = await world.tickets.by_topic(thread)
    assert ticket is not None and ticket.key == SessionKey("telegram", str(MEMBER))
    name = world.fake.topics(GROUP)[thread].name
    assert name.startswith(f"#{ticket.id} · S*** R*** · ") and len(name) <= 128
    context = world.in_topic(thread)[0]
    assert "Language: id" in context and "linked, KPJ 123*****901" in context
    assert SITI["kpj"] not in context and "Membership:" in context
    assert world._group_button("Claim")[1].startswith(f"1desk:claim:{ticket.id}|")

    await world.agent_presses("Claim")
    assert world.in_topic(thread)[-1] == "Claimed by User777001."
    assert "kini ditangani oleh User777001, petugas kami" in member.new_texts()[0]
    await world.agent_presses("Claim", user_id=AGENT + 5)
    assert world.in_topic(thread)[-1] == "Already claimed by User777001."

    assert await member.say("saldo saya kok tidak bertambah?") == [], "relayed, bot silent"
    await member.say("sejak bulan lalu")
    assert world.in_topic(thread)[-2:] == ["Member: saldo saya kok tidak bertambah?",
                                           "Member: sejak bulan lalu"]

    await world.agent_says(thread, "Baik, saya periksa dulu.")
    await world.agent_says(thread, "Iuran September belum dibayar pemberi kerja.")
    assert member.new_texts() == ["Baik, saya periksa dulu.\n— User777001",
                                  "Iuran September belum dibayar pemberi kerja.\n— User777001"]

    await world.agent_says(thread, "/note pemberi kerja perlu dihubungi")
    assert member.new_texts() == [], "a note is never relayed"
    assert world.in_topic(thread)[-1] == "Note saved (not sent to the member)."

    await world.agent_says(thread, "halo dari orang luar", user_id=STRANGER)
    world.fake.set_member(GROUP, STRANGER + 1, "left")
    await world.agent_says(thread, "saya sudah keluar", user_id=STRANGER + 1)
    assert member.new_texts() == ["halo dari orang luar\n— User777002"], \
        "a group member may answer; one who left may not"
    await world.agent_says(None, "obrolan di General")
    await world.agent_says(thread, "bukan grup agen", chat_id=-1009999)
    assert member.new_texts() == []

    await world.agent_says(thread, "/close sudah dijelaskan")
    closed = member.new_texts()
    assert any("Petugas telah mengakhiri percakapan" in text for text in closed)
    assert "rate:5" in member.buttons()
    assert world.in_topic(thread)[-1].startswith(f"Ticket #{ticket.id} closed by User777001")
    assert "Terima kasih atas penilaian" in (await member.press("rate:4"))[0]
    stored = await world.tickets.get(ticket.id)
    assert stored is not None and stored.status is TicketStatus.CLOSED
    assert stored.rating == 4 and stored.resolution == "sudah dijelaskan"
    lines = await world.tickets.last_lines(ticket.id, 20)
    assert [line.who for line in lines] == ["member", "member", "agent", "agent", "note",
                                            "agent"]

    balance = await member.say("cek saldo")
    assert balance[0].startswith("Saldo JHT per"), "the bot answers again"

    await world.agent_says(thread, "satu hal lagi")
    assert member.new_texts() == []
    assert "this ticket is closed" in world.in_topic(thread)[-1]

    await world.gauges.refresh()
    text = world.tg.metrics.render().decode()
    for line in ("bot_tickets_opened 1.0", "bot_tickets_closed 1.0", "bot_tickets_waiting 0.0",
                 "bot_ticket_rating_average 4.0", "bot_handoffs_total 1.0"):
        assert line in text


async def test_the_close_button_closes_and_unknown_commands_are_not_relayed(
        world: World, member: Member) -> None:
    await _open(member)
    thread = world.topic()
    await world.agent_says(thread, "/help")
    assert member.new_texts() == [], "an unknown command is not relayed"
    assert world.in_topic(thread)[-1].startswith("Not sent to the member. Commands here:")
    await world.agent_presses("Close")
    assert any("Petugas telah mengakhiri percakapan" in text for text in member.new_texts())
    ticket = await world.tickets.by_topic(thread)
    assert ticket is not None and ticket.status is TicketStatus.CLOSED


async def test_photos_are_copied_to_the_member_with_the_caption(world: World,
                                                               member: Member) -> None:
    await _open(member)
    thread = world.topic()
    member.new_texts()
    photo: dict[str, Any] = {"photo": [{"file_id": "p1", "file_unique_id": "p1", "width": 10,
                                        "height": 10}], "caption": "Formulir klaim"}
    update = world.fake.message_update(GROUP, "", user_id=AGENT, chat_type="supergroup",
                                       thread_id=thread, is_topic=True, extra=photo)
    update["message"].pop("text", None)
    await world.tg.feed(update)
    assert any("📎 Formulir klaim" in text for text in member.new_texts())
    [copied] = world.fake.calls("copyMessage")
    assert copied.params["chat_id"] == MEMBER and copied.params["from_chat_id"] == GROUP

    voice: dict[str, Any] = {"voice": {"file_id": "v1", "file_unique_id": "v1", "duration": 1}}
    update = world.fake.message_update(GROUP, "", user_id=AGENT, chat_type="supergroup",
                                       thread_id=thread, is_topic=True, extra=voice)
    update["message"].pop("text", None)
    await world.tg.feed(update)
    assert "Only text, photos and documents" in world.in_topic(thread)[-1]


async def test_desk_unavailable_keeps_the_ticket_and_a_sweep_delivers_it(
        world: World, member: Member) -> None:
    world.fake.fail_method("createForumTopic", 400,
                           "Bad Request: not enough rights to create a topic")
    opened = await _open(member)
    assert "175" in opened[0] and "go:faq" in member.buttons()
    ticket = await world.tickets.active_for(SessionKey("telegram", str(MEMBER)))
    assert ticket is not None and ticket.topic_id is None
    await member.say("tolong bantu saya")
    assert world.fake.topics(GROUP) == {}

    await world.sweeper.tick()  # still down: nothing changes, nothing lost
    assert world.fake.topics(GROUP) == {}
    world.fake.clear_faults()
    member.new_texts()
    await world.sweeper.tick()
    thread = world.topic()
    assert "tolong bantu saya" in world.in_topic(thread)[0], "the transcript reaches the agent"
    assert member.new_texts() == ["Petugas kini dapat melihat permintaan Anda dan "
                                  "akan menjawab di chat ini."]
    await world.agent_says(thread, "Halo, ada yang bisa dibantu?")
    assert member.new_texts()[-1] == "Halo, ada yang bisa dibantu?\n— User777001"


async def test_a_member_who_blocked_the_bot_gets_the_ticket_closed(
        world: World, member: Member) -> None:
    await _open(member)
    thread = world.topic()
    world.fake.block(MEMBER)
    await world.agent_says(thread, "Halo?")
    ticket = await world.tickets.by_topic(thread)
    assert ticket is not None and ticket.status is TicketStatus.CLOSED
    assert ticket.resolution == "the member blocked the bot"
    assert "blocked the bot" in world.in_topic(thread)[-1]
    notes = [line.text for line in await world.tickets.last_lines(ticket.id)]
    assert "the member blocked the bot" in notes


async def test_an_idle_member_is_reminded_by_the_sweeper(world: World, member: Member) -> None:
    await _open(member)
    member.new_texts()
    world.tg.clock.advance(601)
    await world.sweeper.tick()
    assert "masih dalam antrean" in member.new_texts()[0]

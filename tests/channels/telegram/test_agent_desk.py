"""The Telegram forum desk against the fake Bot API: topics, context, faults as DeskUnavailable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from channels.telegram.agent_desk import TelegramForumDesk, context_text, topic_name
from channels.telegram.keyboards import verify
from channels.telegram.throttle import SendThrottle
from flows.ports import DeskUnavailable, Ticket, TicketBrief, TicketStatus, TranscriptLine
from flows.types import SessionKey
from tests.e2e.harness import FAST, TOKEN
from tests.fakes.bot_api import FakeBotApi

SECRET = b"desk-secret"
GROUP = -1005550001
AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _ticket(reason: str = "handoff", topic: int | None = None) -> Ticket:
    return Ticket(id=42, key=SessionKey("telegram", "1001"), locale="id",
                  status=TicketStatus.QUEUED, reason=reason, topic_id=topic, agent=None,
                  opened_at=AT, first_reply_at=None, last_agent_at=None, last_member_at=None,
                  closed_at=None, resolution="", rating=None)


def _brief(reason: str = "handoff", lines: int = 2) -> TicketBrief:
    transcript = tuple(TranscriptLine("member", f"pesan {n}", AT) for n in range(lines))
    return TicketBrief(_ticket(reason), "S*** R***", "123*****901", "aktif, PU", transcript)


@pytest.fixture
def desk(fake_bot: Bot) -> TelegramForumDesk:
    return TelegramForumDesk(fake_bot, SendThrottle(**FAST), GROUP, secret=SECRET)


def test_the_topic_name_is_masked_and_within_128_characters() -> None:
    assert topic_name(_brief()) == "#42 · S*** R*** · handoff"
    assert len(topic_name(_brief("x" * 300))) == 128


def test_the_context_has_language_link_status_and_the_last_lines() -> None:
    text = context_text(_brief(lines=10))
    assert "Language: id" in text and "linked, KPJ 123*****901" in text
    assert "Membership: aktif, PU" in text and "Last 10 lines:" in text
    assert "member: pesan 9" in text
    unlinked = TicketBrief(_ticket(), "-", None, None, ())
    assert "(not linked)" in context_text(unlinked)


async def test_open_creates_a_topic_with_context_and_signed_buttons(
        fake: FakeBotApi, desk: TelegramForumDesk) -> None:
    thread = await desk.open(_brief())
    assert fake.topics(GROUP)[thread].name == "#42 · S*** R*** · handoff"
    assert fake.topic_messages(GROUP, thread)[0].startswith("Ticket #42 · handoff")
    markup = fake.last_markup(GROUP) or {}
    data = [key["callback_data"] for row in markup["inline_keyboard"] for key in row]
    assert [verify(SECRET, GROUP, d) for d in data] == ["desk:claim:42", "desk:close:42"]
    await desk.relay(_ticket(topic=thread), "halo")
    await desk.notice(_ticket(topic=thread), "The member ended the conversation.")
    assert fake.topic_messages(GROUP, thread)[1:] == [
        "Member: halo", "The member ended the conversation."]


@pytest.mark.parametrize(("status", "description"), [
    (400, "Bad Request: not enough rights to create a topic"),
    (400, "Bad Request: chat not found"),
    (403, "Forbidden: bot was kicked from the supergroup chat"),
])
async def test_bot_api_faults_are_desk_unavailable(fake: FakeBotApi, desk: TelegramForumDesk,
                                                   status: int, description: str) -> None:
    fake.fail_method("createForumTopic", status, description)
    with pytest.raises(DeskUnavailable):
        await desk.open(_brief())
    fake.fail_method("sendMessage", status, description)
    with pytest.raises(DeskUnavailable):
        await desk.relay(_ticket(topic=5), "halo")


async def test_a_ticket_without_a_topic_cannot_be_relayed(desk: TelegramForumDesk) -> None:
    with pytest.raises(DeskUnavailable):
        await desk.relay(_ticket(), "halo")


async def test_an_unreachable_server_is_desk_unavailable() -> None:
    session = AiohttpSession(api=TelegramAPIServer.from_base("http://127.0.0.1:9"))
    async with Bot(TOKEN, session=session) as bot:
        desk = TelegramForumDesk(bot, SendThrottle(**FAST), GROUP, secret=SECRET)
        with pytest.raises(DeskUnavailable):
            await desk.open(_brief())

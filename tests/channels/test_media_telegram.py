"""Replies with a file as Bot API uploads: the real aiogram client (the project's JSON session)
against the fake Bot API server, which reads the multipart body and keeps the bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer

from app.metrics import Metrics
from channels.telegram.chats import BlockedChats, ChatView
from channels.telegram.keyboards import verify
from channels.telegram.media import FILE_NOT_SENT, MAX_CAPTION
from channels.telegram.render import TelegramRenderer
from channels.telegram.session import JsonAiohttpSession
from channels.telegram.throttle import SendThrottle
from flows.i18n import Catalog
from flows.types import Attachment, Button, Reply, SayKind, Text
from storage.sessions import MemorySessionStore
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.media_samples import PDF, PNG

SECRET = b"media-secret"
CHAT = 4242
CATALOG = Catalog()
STATEMENT = Attachment("laporan-iuran-2025.pdf", "application/pdf", PDF)
CHART = Attachment("grafik-saldo.png", "image/png", PNG)
AGAIN = ((Button("Unduh lagi", "stmt:again"), Button("Menu", "go:menu")),)


@pytest.fixture
async def bot(fake: FakeBotApi) -> AsyncIterator[Bot]:
    session = JsonAiohttpSession(api=TelegramAPIServer.from_base(fake.api_base))
    async with Bot("123456:TEST-telegram-token", session=session) as client:
        yield client


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def renderer(bot: Bot, metrics: Metrics) -> TelegramRenderer:
    throttle = SendThrottle(per_bot=1000.0, per_chat=1000.0)  # flood control out of the way
    return TelegramRenderer(bot, throttle, metrics, SECRET, catalog=CATALOG)


def _not_sent(locale: str) -> str:
    return CATALOG.render(Text(FILE_NOT_SENT), locale)


async def test_a_document_arrives_byte_for_byte_with_caption_and_buttons(
        fake: FakeBotApi, renderer: TelegramRenderer, metrics: Metrics) -> None:
    reply = Reply("Laporan iuran 2025", AGAIN, SayKind.DOCUMENT, "id", STATEMENT)
    await renderer.deliver(CHAT, [reply], ChatView())
    [sent] = fake.files_to(CHAT)
    assert (sent.method, sent.filename, sent.caption) == (
        "sendDocument", "laporan-iuran-2025.pdf", "Laporan iuran 2025")
    assert sent.content == PDF
    assert sent.reply_markup is not None
    keys = sent.reply_markup["inline_keyboard"][0]
    assert [k["text"] for k in keys] == ["Unduh lagi", "Menu"]
    assert [verify(SECRET, CHAT, k["callback_data"]) for k in keys] == ["stmt:again", "go:menu"]
    assert [c.method for c in fake.calls()] == ["sendDocument"]
    assert metrics.value("bot_replies_total", channel="telegram") == 1


async def test_a_photo_goes_by_send_photo(fake: FakeBotApi, renderer: TelegramRenderer) -> None:
    await renderer.deliver(CHAT, [Reply("Saldo per tahun", kind=SayKind.PHOTO, locale="id",
                                        attachment=CHART)], ChatView())
    [sent] = fake.files_to(CHAT)
    assert (sent.method, sent.filename, sent.caption, sent.content) == (
        "sendPhoto", "grafik-saldo.png", "Saldo per tahun", PNG)
    assert sent.reply_markup is None


async def test_text_too_long_for_a_caption_goes_first(fake: FakeBotApi,
                                                      renderer: TelegramRenderer) -> None:
    text = "Rincian iuran.\n" + "x" * MAX_CAPTION
    await renderer.deliver(CHAT, [Reply(text, AGAIN, SayKind.DOCUMENT, "id", STATEMENT)],
                           ChatView())
    assert [c.method for c in fake.calls()] == ["sendMessage", "sendDocument"]
    assert fake.sent_to(CHAT) == [text]
    [sent] = fake.files_to(CHAT)
    assert sent.caption is None and sent.content == PDF
    assert sent.reply_markup is not None  # the buttons stay with the file
    assert "reply_markup" not in fake.calls("sendMessage")[0].params


async def test_a_caption_of_exactly_the_limit_stays_on_the_file(
        fake: FakeBotApi, renderer: TelegramRenderer) -> None:
    text = "y" * MAX_CAPTION
    await renderer.deliver(CHAT, [Reply(text, kind=SayKind.DOCUMENT, attachment=STATEMENT)],
                           ChatView())
    assert [c.method for c in fake.calls()] == ["sendDocument"]
    assert fake.files_to(CHAT)[0].caption == text


async def test_replies_around_a_file_keep_their_order(fake: FakeBotApi,
                                                      renderer: TelegramRenderer) -> None:
    replies = [Reply("Sedang membuat laporan..."),
               Reply("Laporan", kind=SayKind.DOCUMENT, attachment=STATEMENT),
               Reply("Grafik", kind=SayKind.PHOTO, attachment=CHART),
               Reply("Ada lagi?", AGAIN)]
    await renderer.deliver(CHAT, replies, ChatView())
    assert [c.method for c in fake.calls()] == ["sendMessage", "sendDocument", "sendPhoto",
                                                "sendMessage"]


async def test_a_file_removes_a_share_contact_keyboard_left_up(
        fake: FakeBotApi, renderer: TelegramRenderer) -> None:
    view = ChatView(contact_keyboard=True)
    await renderer.deliver(CHAT, [Reply("Laporan", kind=SayKind.DOCUMENT,
                                        attachment=STATEMENT)], view)
    assert fake.files_to(CHAT)[0].reply_markup == {"remove_keyboard": True}
    assert not view.contact_keyboard


async def test_a_file_reply_is_never_an_edit(fake: FakeBotApi,
                                             renderer: TelegramRenderer) -> None:
    first = fake.message_update(CHAT, "x")["message"]["message_id"]
    await renderer.deliver(CHAT, [Reply("Laporan", AGAIN, SayKind.DOCUMENT,
                                        attachment=STATEMENT)], ChatView(), edit=first)
    assert [c.method for c in fake.calls()] == ["sendDocument"]


@pytest.mark.parametrize("locale", ["id", "en"])
async def test_a_refused_photo_is_told_in_the_members_language(
        fake: FakeBotApi, renderer: TelegramRenderer, metrics: Metrics, locale: str) -> None:
    not_a_picture = Attachment("grafik.png", "image/png", b"not an image at all")
    await renderer.deliver(CHAT, [Reply("Grafik", AGAIN, SayKind.PHOTO, locale,
                                        not_a_picture)], ChatView())
    assert [(c.method, c.status) for c in fake.calls()] == [("sendPhoto", 400),
                                                           ("sendMessage", 200)]
    assert fake.files_to(CHAT) == []
    assert fake.sent_to(CHAT) == [_not_sent(locale)]
    markup = fake.last_markup(CHAT)  # the buttons come with the apology: "try again" works
    assert markup is not None and len(markup["inline_keyboard"][0]) == 2
    assert metrics.value("bot_errors_total", kind="telegram") == 1


@pytest.mark.parametrize(("status", "description"), [
    (413, "Request Entity Too Large"),
    (400, "Bad Request: wrong file identifier/HTTP URL specified"),
    (502, "Bad Gateway"),
])
async def test_a_failed_upload_is_told_politely(fake: FakeBotApi, renderer: TelegramRenderer,
                                                status: int, description: str) -> None:
    fake.fail_method("sendDocument", status, description, times=1)
    await renderer.deliver(CHAT, [Reply("Laporan", kind=SayKind.DOCUMENT, locale="en",
                                        attachment=STATEMENT),
                                  Reply("Ada lagi?", AGAIN)], ChatView())
    assert fake.sent_to(CHAT) == [_not_sent("en"), "Ada lagi?"]


async def test_an_upload_refused_for_flood_is_retried(fake: FakeBotApi,
                                                      renderer: TelegramRenderer) -> None:
    fake.fail_with_429("sendDocument", times=1, retry_after=1)
    await renderer.deliver(CHAT, [Reply("Laporan", kind=SayKind.DOCUMENT,
                                        attachment=STATEMENT)], ChatView())
    assert [c.status for c in fake.calls("sendDocument")] == [429, 200]
    assert fake.files_to(CHAT)[0].content == PDF  # the same bytes, uploaded again


async def test_a_member_who_blocked_the_bot_is_recorded_not_told(
        fake: FakeBotApi, renderer: TelegramRenderer) -> None:
    fake.block(CHAT)
    blocked, view = BlockedChats(MemorySessionStore()), ChatView()
    delivered = await renderer.deliver_or_block(
        CHAT, [Reply("Laporan", kind=SayKind.DOCUMENT, attachment=STATEMENT)], view, blocked)
    assert not delivered and view.blocked
    assert [c.method for c in fake.calls()] == ["sendDocument"]


async def test_a_large_document_arrives_whole(fake: FakeBotApi,
                                              renderer: TelegramRenderer) -> None:
    large = Attachment("laporan-10-tahun.pdf", "application/pdf", PDF + bytes(3 * 1024 * 1024))
    await renderer.deliver(CHAT, [Reply("Laporan", kind=SayKind.DOCUMENT, attachment=large)],
                           ChatView())
    assert fake.files_to(CHAT)[0].content == large.content

"""Files over Telegram end to end: the channel as ``run_bot.py telegram`` builds it (aiogram with
the project's JSON session, the throttle, the inbox) against the fake Bot API, answering with
replies that carry a file. No flow sends files yet, so ``Engine.serve`` is stood in for by
:class:`Scripted`, which answers every update with the replies a test sets."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from PIL import Image
from pypdf import PdfReader

from app.compose import build_ports, open_database
from app.metrics import Metrics
from app.otp_delivery import OutboxOtpSender
from channels.telegram.channel import TelegramChannel
from channels.telegram.media import FILE_NOT_SENT
from channels.telegram.outbox import TelegramOutbox
from channels.telegram.session import JsonAiohttpSession
from channels.telegram.throttle import SendThrottle
from flows.flow import Ports
from flows.i18n import Catalog
from flows.types import Attachment, Button, EventKind, Reply, SayKind, SessionKey, Text
from storage.sessions import MemorySessionStore
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.media_samples import PDF, png
from tests.fakes.scripted import Scripted

TOKEN = "123456:TEST-telegram-token"
SECRET = b"media-e2e-secret"
SITI = 5150
CATALOG = Catalog()
CHART_PNG = png(64, 48, (200, 30, 30))
STATEMENT = Attachment("laporan-iuran-2025.pdf", "application/pdf", PDF)
CHART = Attachment("grafik-saldo.png", "image/png", CHART_PNG)
AGAIN = ((Button("Unduh lagi", "stmt:again"), Button("Lihat grafik", "stmt:chart")),)


@dataclass
class Bench:
    fake: FakeBotApi
    bot: Bot
    channel: TelegramChannel
    scripted: Scripted
    ports: Ports
    metrics: Metrics

    async def member_says(self, text: str) -> None:
        await self.feed(self.fake.message_update(SITI, text, language_code="id"))

    async def feed(self, update: dict[str, object]) -> None:
        await self.channel.dispatcher.feed_update(self.bot, self.channel.parse(update))


@pytest.fixture
async def bench(tmp_path: Path, fake: FakeBotApi) -> AsyncIterator[Bench]:
    database = await open_database(f"sqlite:///{tmp_path / 'bot.db'}")
    store = MemorySessionStore()
    ports = build_ports(kv=store, database=database, secret=SECRET,
                        otp_sender=OutboxOtpSender(tmp_path / "outbox.jsonl"))
    session = JsonAiohttpSession(api=TelegramAPIServer.from_base(fake.api_base))
    bot, scripted, metrics = Bot(TOKEN, session=session), Scripted(), Metrics()
    channel = TelegramChannel(bot, serve=scripted, ports=ports, metrics=metrics,
                              throttle=SendThrottle(per_bot=1000.0, per_chat=1000.0),
                              catalog=CATALOG)
    try:
        yield Bench(fake, bot, channel, scripted, ports, metrics)
    finally:
        await channel.drain()
        await channel.close()
        await database.dispose()


async def test_a_statement_and_a_chart_arrive_intact(bench: Bench) -> None:
    bench.scripted.replies = [
        Reply("Laporan iuran Januari–Desember 2025", kind=SayKind.DOCUMENT, locale="id",
              attachment=STATEMENT),
        Reply("Saldo JHT per tahun", AGAIN, SayKind.PHOTO, "id", CHART)]
    await bench.member_says("laporan")
    document, photo = bench.fake.files_to(SITI)
    assert (document.method, document.filename, document.caption) == (
        "sendDocument", "laporan-iuran-2025.pdf", "Laporan iuran Januari–Desember 2025")
    assert document.content == PDF
    assert len(PdfReader(io.BytesIO(document.content)).pages) == 1
    assert (photo.method, photo.caption, photo.content) == (
        "sendPhoto", "Saldo JHT per tahun", CHART_PNG)
    with Image.open(io.BytesIO(photo.content)) as picture:
        assert (picture.format, picture.size) == ("PNG", (64, 48))
    assert photo.reply_markup is not None
    assert [k["text"] for k in photo.reply_markup["inline_keyboard"][0]] == [
        "Unduh lagi", "Lihat grafik"]
    assert bench.metrics.value("bot_replies_total", channel="telegram") == 2


async def test_a_button_under_the_file_is_pressed_like_any_other(bench: Bench) -> None:
    bench.scripted.replies = [Reply("Grafik", AGAIN, SayKind.PHOTO, "id", CHART)]
    await bench.member_says("grafik")
    record = bench.fake.calls("sendPhoto")[-1]
    signed = record.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    message_id = record.result["message_id"]
    await bench.feed(bench.fake.callback_update(SITI, signed, message_id=message_id))
    pressed = bench.scripted.events[-1]
    assert (pressed.kind, pressed.data) == (EventKind.BUTTON, "stmt:again")
    assert len(bench.fake.files_to(SITI)) == 2  # answered with the chart again


@pytest.mark.parametrize("locale", ["id", "en"])
async def test_an_upload_telegram_refuses_is_told_politely(bench: Bench, locale: str) -> None:
    bench.fake.fail_method("sendDocument", 413, "Request Entity Too Large", times=1)
    bench.scripted.replies = [Reply("Laporan", AGAIN, SayKind.DOCUMENT, locale, STATEMENT)]
    await bench.member_says("laporan")
    assert bench.fake.files_to(SITI) == []
    assert bench.fake.sent_to(SITI) == [CATALOG.render(Text(FILE_NOT_SENT), locale)]
    markup = bench.fake.last_markup(SITI)
    assert markup is not None and len(markup["inline_keyboard"][0]) == 2
    assert bench.metrics.value("bot_errors_total", kind="telegram") == 1

    await bench.member_says("laporan")  # Telegram takes it now
    assert bench.fake.files_to(SITI)[0].content == PDF


async def test_a_photo_that_is_no_picture_is_refused_and_told(bench: Bench) -> None:
    broken = Attachment("grafik.png", "image/png", b"\x00" * 32)
    bench.scripted.replies = [Reply("Grafik", kind=SayKind.PHOTO, locale="en",
                                    attachment=broken)]
    await bench.member_says("chart")
    assert [c.status for c in bench.fake.calls("sendPhoto")] == [400]
    assert bench.fake.sent_to(SITI) == [CATALOG.render(Text(FILE_NOT_SENT), "en")]


async def test_a_member_who_blocked_the_bot_is_recorded(bench: Bench) -> None:
    bench.fake.block(SITI)
    bench.scripted.replies = [Reply("Laporan", kind=SayKind.DOCUMENT, attachment=STATEMENT)]
    await bench.member_says("laporan")
    assert await bench.channel.is_blocked(SITI)
    assert [c.method for c in bench.fake.calls() if c.targets(SITI)] == ["sendDocument"]


async def test_the_outbox_sends_a_file_on_the_same_path(bench: Bench) -> None:
    outbox = TelegramOutbox(bench.bot, SendThrottle(per_bot=1000.0, per_chat=1000.0),
                            metrics=bench.metrics, secret=SECRET, sessions=MemorySessionStore(),
                            kv=bench.ports.kv, catalog=CATALOG)
    key = SessionKey("telegram", str(SITI))
    sent = await outbox.deliver(key, [Reply("Laporan", kind=SayKind.DOCUMENT,
                                            attachment=STATEMENT)])
    assert sent and bench.fake.files_to(SITI)[0].content == PDF

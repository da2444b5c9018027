"""Statements and charts end to end on Telegram: the real engine with the real document maker,
the channel uploading to the fake Bot API; the uploaded PDF parses, carries the right totals and
code and verifies; the chart is a PNG; the verification page finds the code.

The catalog is not strict: the new texts reach the catalogs with this change."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from PIL import Image
from pypdf import PdfReader

from app.compose import build_engine, build_ports, inbox_for, open_database
from app.documents import PooledDocumentMaker, statement_key
from app.metrics import CountingOtpSender, Metrics
from app.otp_delivery import OutboxOtpSender
from app.web import add_verify_route, create_web_app
from balance.service import ReferenceBalanceService
from channels.telegram.channel import TelegramChannel
from channels.telegram.session import JsonAiohttpSession
from channels.telegram.throttle import SendThrottle
from flows.i18n import Catalog
from flows.types import Money
from statements.signing import verify_pdf
from storage.accounts import SqlAccountStore
from storage.sessions import MemorySessionStore
from storage.statements import SqlStatementIssueStore
from tests.conftest import WebClient
from tests.e2e.harness import QUICK_RETRIES, TOKEN, Harness, register
from tests.fakes.bot_api import FakeBotApi
from tests.flows.conftest import SECRET, SITI, ManualClock

CHAT = 5557001


@pytest.fixture
async def tg(tmp_path: Path, fake: FakeBotApi) -> AsyncIterator[tuple[Harness,
                                                                       SqlStatementIssueStore]]:
    """One bot process as ``harness`` builds it, with documents made and recorded."""
    database = await open_database(f"sqlite:///{tmp_path / 'bot.db'}")
    store, metrics, clock = MemorySessionStore(), Metrics(), ManualClock()
    outbox = tmp_path / "outbox.jsonl"
    accounts = SqlAccountStore(database, SECRET)
    catalog = Catalog()
    maker = PooledDocumentMaker(secret=SECRET, verify_url="https://bot.example/verify",
                                  catalog=catalog)
    issued = SqlStatementIssueStore(database, SECRET)
    ports = build_ports(kv=store, database=database, accounts=accounts, secret=SECRET,
                        otp_sender=CountingOtpSender(OutboxOtpSender(outbox), metrics),
                        clock=clock, documents=maker, statements=issued)
    engine = build_engine(store, ports, catalog=catalog, strict=True)
    bot = Bot(TOKEN, session=JsonAiohttpSession(api=TelegramAPIServer.from_base(fake.api_base)))
    channel = TelegramChannel(bot, serve=engine.serve, ports=ports,
                              throttle=SendThrottle(per_bot=1000.0, per_chat=1000.0),
                              metrics=metrics, catalog=catalog,
                              inbox=inbox_for(store, "telegram"), retry_delays=QUICK_RETRIES)
    try:
        yield (Harness(fake, bot, channel, engine, store, accounts, database, metrics, outbox,
                       clock), issued)
    finally:
        await channel.drain()
        await channel.close()
        maker.close()
        await database.dispose()


async def test_a_statement_is_uploaded_parses_and_verifies(
        tg: tuple[Harness, SqlStatementIssueStore], fake: FakeBotApi,
        web_client: WebClient) -> None:
    world, issued = tg
    member = world.member(CHAT)
    await register(member, SITI)
    await member.say("/saldo")
    await member.press("bal:statement")
    await member.press("stmt:last12")
    files = fake.files_to(CHAT)
    assert [f.method for f in files] == ["sendDocument"]
    sent = files[0]
    assert sent.filename == "statement-2025-11-2026-10.pdf"
    verdict = verify_pdf(sent.content, statement_key(SECRET))
    assert verdict.genuine and verdict.summary is not None
    assert sent.caption is not None and verdict.code is not None
    assert verdict.code in sent.caption
    reader = PdfReader(io.BytesIO(sent.content))
    text = "".join(page.extract_text() for page in reader.pages)
    figures = await ReferenceBalanceService(world.database).jht_balance(
        SITI["kpj"], world.clock.now().date())
    assert figures is not None and verdict.summary.total == figures.total
    assert Catalog().format_value(Money(figures.total), "id") in text
    assert verdict.code in text
    app = create_web_app(metrics=Metrics(), checks={})
    add_verify_route(app, issued, Catalog())
    http = await web_client(app)
    page = await http.get(f"/verify/{verdict.code}")
    assert page.status == 200 and "S.R." in await page.text()


async def test_the_chart_is_uploaded_as_a_png_photo_with_its_buttons(
        tg: tuple[Harness, SqlStatementIssueStore], fake: FakeBotApi) -> None:
    world, _ = tg
    member = world.member(CHAT)
    await register(member, SITI)
    await member.say("/saldo")
    await member.press("bal:chart")
    await member.press("chart:project")
    await member.say(SITI["birth"])
    photos = fake.files_to(CHAT)
    assert [f.method for f in photos] == ["sendPhoto", "sendPhoto"]
    for photo in photos:
        with Image.open(io.BytesIO(photo.content)) as image:
            assert image.format == "PNG" and image.width > 600
    last = photos[-1]
    assert last.caption is not None and "56" in last.caption and "2046" in last.caption
    assert last.reply_markup is not None
    data = [str(key["callback_data"]) for row in last.reply_markup["inline_keyboard"]
            for key in row]
    assert any(d.startswith("1chart:g:8|") for d in data)

"""Delivery to members outside their updates: the router by channel and the Telegram outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from app.metrics import Metrics
from app.serve import run_serve
from app.settings import Settings
from channels.telegram.outbox import OutboxRouter, TelegramOutbox
from channels.telegram.throttle import SendThrottle
from flows.types import Button, Reply, SessionKey
from storage.sessions import MemorySessionStore
from tests.e2e.harness import FAST, TOKEN
from tests.fakes.bot_api import FakeBotApi

SECRET = b"outbox-secret"
CHAT = 4242


@dataclass
class _Recording:
    keys: list[SessionKey] = field(default_factory=list)

    async def deliver(self, key: SessionKey, replies: list[Reply]) -> bool:
        self.keys.append(key)
        return True


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as server:
        yield server


@pytest.fixture
async def outbox(fake: FakeBotApi) -> AsyncIterator[tuple[TelegramOutbox, MemorySessionStore]]:
    store = MemorySessionStore()
    session = AiohttpSession(api=TelegramAPIServer.from_base(fake.api_base))
    async with Bot(TOKEN, session=session) as bot:
        yield TelegramOutbox(bot, SendThrottle(**FAST), metrics=Metrics(), secret=SECRET,
                             sessions=store, kv=store), store


async def test_the_router_picks_the_chat_channel() -> None:
    telegram, whatsapp = _Recording(), _Recording()
    router = OutboxRouter({"telegram": telegram, "whatsapp": whatsapp})
    assert await router.deliver(SessionKey("whatsapp", "628"), [Reply("halo")])
    assert await router.deliver(SessionKey("telegram", "7"), [Reply("halo")])
    assert (whatsapp.keys, telegram.keys) == ([SessionKey("whatsapp", "628")],
                                              [SessionKey("telegram", "7")])
    assert router.channels == frozenset({"telegram", "whatsapp"})
    assert await router.deliver(SessionKey("sms", "1"), [Reply("halo")]), \
        "an unserved channel is logged, never reported as a member who blocked the bot"


async def test_telegram_outbox_renders_replies_with_signed_buttons(
        fake: FakeBotApi, outbox: tuple[TelegramOutbox, MemorySessionStore]) -> None:
    sender, _ = outbox
    replies = [Reply("Ditutup."), Reply("Nilai?", ((Button("5", "rate:5"),),))]
    assert await sender.deliver(SessionKey("telegram", str(CHAT)), replies)
    assert fake.sent_to(CHAT) == ["Ditutup.", "Nilai?"]
    markup = fake.last_markup(CHAT) or {}
    assert markup["inline_keyboard"][0][0]["callback_data"].startswith("1rate:5|")


async def test_telegram_outbox_reports_a_member_who_blocked_the_bot(
        fake: FakeBotApi, outbox: tuple[TelegramOutbox, MemorySessionStore]) -> None:
    sender, store = outbox
    fake.block(CHAT)
    assert not await sender.deliver(SessionKey("telegram", str(CHAT)), [Reply("halo")])
    assert await store.get(f"tg:blocked:{CHAT}") == "1"
    with pytest.raises(ValueError, match="whatsapp"):
        await sender.deliver(SessionKey("whatsapp", "628"), [Reply("halo")])


async def test_serve_needs_telegram_or_whatsapp_and_checks_whatsapp_settings(
        tmp_path: object) -> None:
    base = {"otp_outbox": "outbox.jsonl", "telegram_bot_token": "", "whatsapp_token": ""}
    with pytest.raises(SystemExit, match="or WHATSAPP_TOKEN"):
        await run_serve(Settings(_env_file=None, **base))  # type: ignore[arg-type]
    with pytest.raises(SystemExit, match="WHATSAPP_PHONE_NUMBER_ID"):
        await run_serve(Settings(_env_file=None, **{**base, "whatsapp_token": "t"}))  # type: ignore[arg-type]

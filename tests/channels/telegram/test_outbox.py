"""The Telegram outbox: an agent's answer on the channel's own delivery path."""

from __future__ import annotations

import asyncio

import pytest
from aiogram import Bot

from app.metrics import Metrics
from app.serve import run_serve
from app.settings import Settings
from channels.telegram.outbox import TelegramOutbox
from channels.telegram.throttle import SendThrottle
from flows.types import Button, Reply, SessionKey
from storage.sessions import MemorySessionStore
from tests.e2e.harness import FAST
from tests.fakes.bot_api import FakeBotApi

SECRET = b"outbox-secret"
CHAT = 4242


@pytest.fixture
def store() -> MemorySessionStore:
    return MemorySessionStore()


@pytest.fixture
def outbox(fake_bot: Bot, store: MemorySessionStore) -> TelegramOutbox:
    return TelegramOutbox(fake_bot, SendThrottle(**FAST), metrics=Metrics(), secret=SECRET,
                          sessions=store, kv=store)


async def test_telegram_outbox_renders_replies_with_signed_buttons(
        fake: FakeBotApi, outbox: TelegramOutbox) -> None:
    replies = [Reply("Ditutup."), Reply("Nilai?", ((Button("5", "rate:5"),),))]
    assert await outbox.deliver(SessionKey("telegram", str(CHAT)), replies)
    assert fake.sent_to(CHAT) == ["Ditutup.", "Nilai?"]
    markup = fake.last_markup(CHAT) or {}
    assert markup["inline_keyboard"][0][0]["callback_data"].startswith("1rate:5|")


async def test_telegram_outbox_reports_a_member_who_blocked_the_bot(
        fake: FakeBotApi, outbox: TelegramOutbox, store: MemorySessionStore) -> None:
    fake.block(CHAT)
    assert not await outbox.deliver(SessionKey("telegram", str(CHAT)), [Reply("halo")])
    assert await store.get(f"tg:blocked:{CHAT}") == "1"
    async with store.chat(SessionKey("telegram", str(CHAT))) as slot:  # the chat's view too
        assert slot.session is not None and slot.session.view == {"blocked": True}
    with pytest.raises(ValueError, match="whatsapp"):
        await outbox.deliver(SessionKey("whatsapp", "628"), [Reply("halo")])


async def test_the_outbox_names_the_chats_that_blocked_the_bot(
        fake: FakeBotApi, unlocked: TelegramOutbox) -> None:
    blocked, other = SessionKey("telegram", str(CHAT)), SessionKey("telegram", "5")
    fake.block(CHAT)
    assert await unlocked.unreachable([blocked, other]) == set()  # not known before a send
    assert not await unlocked.deliver(blocked, [Reply("halo")])
    assert await unlocked.unreachable([blocked, other, SessionKey("whatsapp", str(CHAT))]) \
        == {blocked}
    assert await unlocked.unreachable([]) == set()


@pytest.fixture
def unlocked(fake_bot: Bot, store: MemorySessionStore) -> TelegramOutbox:
    return TelegramOutbox(fake_bot, SendThrottle(**FAST), metrics=Metrics(), secret=SECRET,
                          sessions=store, kv=store, locked=False)


async def test_an_unlocked_outbox_sends_without_the_chats_lock_or_view(
        fake: FakeBotApi, unlocked: TelegramOutbox, store: MemorySessionStore) -> None:
    key = SessionKey("telegram", str(CHAT))
    alert = [Reply("Iuran tercatat.", ((Button("Stop", "go:alerts_stop:posted"),),))]
    async with store.chat(key) as slot:  # the member's update holds the chat meanwhile
        assert await asyncio.wait_for(unlocked.deliver(key, alert), 5)
        slot.session = None
    assert fake.sent_to(CHAT) == ["Iuran tercatat."]
    markup = fake.last_markup(CHAT) or {}
    assert markup["inline_keyboard"][0][0]["callback_data"].startswith("1go:alerts_stop:posted|")
    async with store.chat(key) as slot:  # nothing loaded or saved for the chat
        assert slot.session is None


async def test_an_unlocked_outbox_records_a_block_in_the_store_and_the_chats_view(
        fake: FakeBotApi, unlocked: TelegramOutbox, store: MemorySessionStore) -> None:
    fake.block(CHAT)
    assert not await unlocked.deliver(SessionKey("telegram", str(CHAT)), [Reply("halo")])
    assert await store.get(f"tg:blocked:{CHAT}") == "1"
    async with store.chat(SessionKey("telegram", str(CHAT))) as slot:  # cleared on next message
        assert slot.session is not None and slot.session.view == {"blocked": True}
    with pytest.raises(ValueError, match="whatsapp"):
        await unlocked.deliver(SessionKey("whatsapp", "628"), [Reply("halo")])


async def test_serve_needs_telegram_or_whatsapp_and_checks_whatsapp_settings(
        tmp_path: object) -> None:
    base = {"otp_outbox": "outbox.jsonl", "telegram_bot_token": "", "whatsapp_token": ""}
    with pytest.raises(SystemExit, match="or WHATSAPP_TOKEN"):
        await run_serve(Settings(_env_file=None, **base))  # type: ignore[arg-type]
    with pytest.raises(SystemExit, match="WHATSAPP_PHONE_NUMBER_ID"):
        await run_serve(Settings(_env_file=None, **{**base, "whatsapp_token": "t"}))  # type: ignore[arg-type]

"""Webhook mode over HTTP: registration, the secret header, duplicates, order, health, metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.e2e.harness import WEBHOOK_SECRET, Harness, harness
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.held_serve import held

CHAT = 6660001
COMMANDS = ["/bantuan", "/faq", "/petugas", "/menu", "/saldo", "/bantuan", "/faq"]


async def test_the_webhook_is_registered_with_its_secret_and_update_types(
        tg: Harness, fake: FakeBotApi) -> None:
    url = await tg.use_webhook()
    assert fake.webhook_url == url
    assert fake.webhook_secret == WEBHOOK_SECRET
    [call] = fake.calls("setWebhook")
    assert sorted(call.params["allowed_updates"]) == ["callback_query", "message"]


async def test_a_forged_or_missing_secret_is_refused_and_nothing_is_processed(
        tg: Harness, fake: FakeBotApi) -> None:
    await tg.use_webhook()
    for secret in ("not-the-secret", None, WEBHOOK_SECRET + "x", ""):
        update = fake.message_update(CHAT, "/menu")
        assert await fake.post_to_webhook(update, secret=secret) == 401
    await tg.channel.drain()
    assert fake.calls("sendMessage") == []
    assert tg.metrics.value("bot_updates_total", channel="telegram") == 0.0
    assert await tg.post(fake.message_update(CHAT, "/menu")) == 200
    assert fake.sent_to(CHAT) == ["Apa yang ingin Anda lakukan?"]


async def test_a_malformed_body_is_400(tg: Harness) -> None:
    url = await tg.use_webhook()
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET,
               "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        for body in (b"{oops", b'{"update_id": "x"}', b"[]"):
            async with http.post(url, data=body, headers=headers) as response:
                assert response.status == 400


async def test_a_duplicate_update_gets_one_reply(tg: Harness, fake: FakeBotApi) -> None:
    await tg.use_webhook()
    update = fake.message_update(CHAT, "/menu")
    assert await tg.post(update) == 200
    assert await tg.post(update) == 200  # Telegram retried: acknowledged, dropped
    assert fake.sent_to(CHAT) == ["Apa yang ingin Anda lakukan?"]
    assert tg.metrics.value("bot_duplicates_total") == 1.0


async def test_updates_posted_back_to_back_are_answered_in_order(tg: Harness,
                                                                 fake: FakeBotApi) -> None:
    await tg.use_webhook()
    reference = tg.member(CHAT + 1, webhook=True)
    expected = [text for command in COMMANDS for text in await reference.say(command)]
    for command in COMMANDS:  # each answered 200 at once, handled in the background
        assert await fake.post_to_webhook(fake.message_update(CHAT, command)) == 200
    await tg.channel.drain()
    assert fake.sent_to(CHAT) == expected


async def test_health_and_metrics_are_served_beside_the_webhook(tg: Harness,
                                                                fake: FakeBotApi) -> None:
    await tg.use_webhook()
    await tg.post(fake.message_update(CHAT, "/menu"))
    assert tg.server is not None
    async with aiohttp.ClientSession() as http:
        async with http.get(tg.server.make_url("/healthz")) as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok", "database": "ok", "redis": "ok"}
        async with http.get(tg.server.make_url("/metrics")) as response:
            text = await response.text()
    assert 'bot_updates_total{channel="telegram"} 1.0' in text
    assert 'bot_replies_total{channel="telegram"} 1.0' in text
    assert 'bot_update_seconds_count{channel="telegram"} 1.0' in text


async def test_a_full_backlog_answers_503_and_a_redelivery_is_served(
        tmp_path: Path, fake: FakeBotApi) -> None:
    gate = asyncio.Event()

    # the first update stays unfinished: the channel holds one
    async with harness(tmp_path, fake=fake, wrap=held(gate), max_backlog=1) as tg:
        await tg.use_webhook()
        first, second = (fake.message_update(CHAT, "/menu"),
                         fake.message_update(CHAT + 1, "/menu"))
        assert await fake.post_to_webhook(first) == 200
        assert await fake.post_to_webhook(second) == 503  # not taken: Telegram delivers it again
        assert tg.metrics.value("bot_errors_total", kind="overload") == 1.0
        gate.set()
        await tg.channel.drain()
        assert await fake.post_to_webhook(second) == 200
        await tg.channel.drain()
        assert fake.sent_to(CHAT + 1) == ["Apa yang ingin Anda lakukan?"]

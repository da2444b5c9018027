"""The fake Bot API's holding (``hold_after``): the first calls answered, later requests held
unrecorded, served at the release, or dropped when their client went away."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from urllib.parse import urlparse

import aiohttp
from aiogram import Bot

from tests.fakes.bot_api import FakeBotApi

TOKEN = "123456:TEST-telegram-token"  # the shared fixture's bot token
CHAT = 5001


async def _until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_the_first_calls_are_answered_then_requests_wait_for_the_release(
        fake: FakeBotApi, fake_bot: Bot) -> None:
    fake.hold_after(2)
    await fake_bot.get_me()  # another method does not count
    await fake_bot.send_message(CHAT, "one")
    await fake_bot.send_message(CHAT, "two")
    third = asyncio.create_task(fake_bot.send_message(CHAT, "three"))
    later = asyncio.create_task(fake_bot.get_me())  # every method is held from now on
    await _until(lambda: fake.held == 2)
    assert fake.sent_to(CHAT) == ["one", "two"]
    assert [call.method for call in fake.calls()] == ["getMe", "sendMessage", "sendMessage"]
    fake.release()
    assert (await third).text == "three"
    await later
    assert fake.sent_to(CHAT) == ["one", "two", "three"]
    assert (fake.held, fake.dropped) == (0, 0)
    await fake_bot.send_message(CHAT, "four")  # released: nothing is held any more
    assert fake.sent_to(CHAT)[-1] == "four"


async def test_a_held_request_whose_client_went_away_is_dropped_unrecorded(
        fake: FakeBotApi) -> None:
    fake.hold_after(0)
    body = json.dumps({"chat_id": CHAT, "text": "lost"}).encode()
    address = urlparse(fake.api_base)
    _, writer = await asyncio.open_connection(address.hostname, address.port)
    writer.write(f"POST /bot{TOKEN}/sendMessage HTTP/1.1\r\nHost: x\r\n"
                 "Content-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    await _until(lambda: fake.held == 1)
    writer.close()  # the bot's process died: its connections close
    await writer.wait_closed()
    await _until(lambda: fake.dropped == 1)
    assert fake.held == 0
    fake.release()
    async with aiohttp.ClientSession() as http:
        url = f"{fake.api_base}/bot{TOKEN}/sendMessage"
        async with http.post(url, json={"chat_id": CHAT, "text": "kept"}) as response:
            assert response.status == 200
    assert fake.sent_to(CHAT) == ["kept"]  # the dropped one never reached the platform

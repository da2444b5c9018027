"""Long polling: updates fetched with getUpdates, confirmed by offset, answered in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from channels.inbox import Inbox
from flows.ports import StoreUnavailable
from storage.inbox import Put
from tests.e2e.harness import Harness
from tests.fakes.bot_api import FakeBotApi

CHAT = 8880001


@asynccontextmanager
async def polling(tg: Harness) -> AsyncIterator[None]:
    task = asyncio.create_task(tg.channel.run_polling(handle_signals=False, timeout=1))
    try:
        yield
    finally:
        tg.channel.stop_polling()
        await asyncio.wait_for(task, 10)


async def _until(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_polling_answers_queued_updates_in_order(tg: Harness, fake: FakeBotApi) -> None:
    reference = tg.member(CHAT + 1)
    commands = ["/menu", "/bantuan", "/faq"]
    expected = [text for command in commands for text in await reference.say(command)]
    for command in commands:
        fake.push_update(fake.message_update(CHAT, command))
    async with polling(tg):
        await _until(lambda: len(fake.sent_to(CHAT)) == len(expected))
        await _until(lambda: fake.pending_updates == 0)  # confirmed by the next offset
    assert fake.sent_to(CHAT) == expected
    assert fake.calls("deleteWebhook")  # polling clears any webhook first
    assert fake.calls("getUpdates")


async def test_polling_handles_a_redelivered_update_once(tg: Harness,
                                                         fake: FakeBotApi) -> None:
    update = fake.message_update(CHAT, "/menu")
    async with polling(tg):
        fake.push_update(dict(update))
        await _until(lambda: len(fake.sent_to(CHAT)) == 1)
        fake.push_update(dict(update))  # as after a crash before the offset was confirmed
        await _until(lambda: fake.pending_updates == 0)  # taken and confirmed
        await tg.channel.drain()  # served: dropped by the engine as a repeat, or absorbed
        # by the inbox while the first delivery was still queued under the same update id
    assert fake.sent_to(CHAT) == ["Apa yang ingin Anda lakukan?"]
    assert tg.metrics.value("bot_duplicates_total") <= 1.0


async def test_stopping_polling_waits_for_the_update_in_progress(tg: Harness,
                                                                 fake: FakeBotApi) -> None:
    fake.fail_with_429("sendMessage", times=1, retry_after=1)  # holds the reply a second
    fake.push_update(fake.message_update(CHAT, "/menu"))
    async with polling(tg):
        await _until(lambda: len(fake.calls("sendMessage")) == 1)
    assert fake.sent_to(CHAT) == ["Apa yang ingin Anda lakukan?"]  # drained, not cut off


class DownInbox:
    """The channel's inbox, unreachable while ``down`` (Redis gone)."""

    def __init__(self, inner: Inbox) -> None:
        self.inner = inner
        self.down = True
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put(self, chat: str, payload: str, seq: int | None = None) -> Put:
        if self.down:
            self.refused += 1
            raise StoreUnavailable("Redis failed (ConnectionError)")
        return await self.inner.put(chat, payload, seq)


async def test_an_update_the_inbox_cannot_keep_is_not_confirmed_until_it_is_kept(
        tg: Harness, fake: FakeBotApi, caplog: pytest.LogCaptureFixture) -> None:
    inbox = DownInbox(tg.channel.mailroom.inbox)
    tg.channel.mailroom.inbox = inbox
    fake.push_update(fake.message_update(CHAT, "/menu"))
    async with polling(tg):
        await _until(lambda: inbox.refused >= 2)  # asked again, not confirmed
        assert fake.pending_updates == 1 and fake.sent_to(CHAT) == []
        inbox.down = False  # Redis is back
        await _until(lambda: fake.sent_to(CHAT) == ["Apa yang ingin Anda lakukan?"])
        await _until(lambda: fake.pending_updates == 0)  # confirmed once kept
    assert "the inbox is unreachable" in caplog.text

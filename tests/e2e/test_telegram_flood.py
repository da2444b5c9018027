"""Flood control end to end: 429 storms, per-chat pacing, and members who blocked the bot."""

from __future__ import annotations

import time
from pathlib import Path

from channels.telegram.throttle import SendThrottle
from tests.e2e.harness import Harness, harness
from tests.fakes.bot_api import FakeBotApi

CHAT = 7770001
COMMANDS = ["/bantuan", "/faq", "/menu", "/petugas"]


async def test_a_429_storm_delays_replies_but_delivers_every_one_in_order(
        tg: Harness, fake: FakeBotApi) -> None:
    await tg.use_webhook()
    reference = tg.member(CHAT + 1, webhook=True)
    expected = [text for command in COMMANDS for text in await reference.say(command)]
    fake.fail_with_429("sendMessage", times=3, retry_after=1)
    started = time.monotonic()
    for command in COMMANDS:
        assert await fake.post_to_webhook(fake.message_update(CHAT, command)) == 200
    await tg.channel.drain()
    assert fake.sent_to(CHAT) == expected
    assert [c.status for c in fake.calls("sendMessage")].count(429) == 3
    assert time.monotonic() - started >= 2.9  # retry_after honoured each time
    assert tg.metrics.value("bot_errors_total", kind="telegram") == 0.0


async def test_one_chat_gets_at_most_one_message_per_second(tmp_path: Path,
                                                            fake: FakeBotApi) -> None:
    async with harness(tmp_path, fake=fake, throttle=SendThrottle()) as world:
        await world.use_webhook()
        busy, other = world.member(CHAT), world.member(CHAT + 1)
        await fake.post_to_webhook(fake.message_update(CHAT, "/bantuan"))  # two replies
        await fake.post_to_webhook(fake.message_update(CHAT + 1, "/menu"))
        await world.channel.drain()
        first, second = fake.send_times(CHAT)
        assert second - first >= 0.95
        [other_sent] = fake.send_times(CHAT + 1)
        assert other_sent < second  # the other chat did not queue behind
        assert len(busy.new_texts()) == 2 and len(other.new_texts()) == 1


async def test_a_member_who_blocked_the_bot_is_recorded_and_not_retried(
        tg: Harness, fake: FakeBotApi) -> None:
    await tg.use_webhook()
    member = tg.member(CHAT, webhook=True)
    await member.say("/menu")
    fake.block(CHAT)
    await member.say("/bantuan")
    await member.say("/faq")
    attempts = [c.status for c in fake.calls("sendMessage") if c.targets(CHAT)]
    assert attempts == [200, 403, 403]  # one attempt per update, never a retry loop
    assert await tg.channel.is_blocked(CHAT)
    fake.unblock(CHAT)
    assert await member.say("/menu") == ["Apa yang ingin Anda lakukan?"]
    assert not await tg.channel.is_blocked(CHAT)

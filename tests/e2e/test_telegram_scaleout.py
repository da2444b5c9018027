"""Two ``serve`` processes behind a load balancer, sharing one Redis and one database.

Both web apps run in this test process, each with its own engine, Redis client, database
engine and aiogram bot, like two processes; the fake Bot API posts each update to one of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from channels.telegram.throttle import SendThrottle
from flows.types import SessionKey
from storage.sessions import redis_store_from_url
from tests.e2e.harness import Harness, harness
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.held_serve import held
from tests.flows.conftest import SITI

CHAT = 9990001
COMMANDS = ["/bantuan", "/faq", "/petugas", "/menu", "/saldo", "/bantuan", "/faq", "/menu"]


@dataclass
class Pair:
    a: Harness
    b: Harness
    url_a: str
    url_b: str

    async def post(self, update: dict[str, object], to: str) -> int:
        status = await self.a.fake.post_to_webhook(update, url=self.url_a if to == "a" else
                                                   self.url_b)
        await self.a.channel.drain()
        await self.b.channel.drain()
        return status

    def duplicates(self) -> float:
        return sum(h.metrics.value("bot_duplicates_total") for h in (self.a, self.b))


@pytest.fixture
async def pair(tmp_path: Path, fake: FakeBotApi, redis_url: str, unique_prefix: str,
               database_url: str) -> AsyncIterator[Pair]:
    pace = {"per_bot": 1000.0, "per_chat": 20.0}  # replies of one update take a while
    store_a = redis_store_from_url(redis_url, prefix=unique_prefix)
    store_b = redis_store_from_url(redis_url, prefix=unique_prefix)
    try:
        async with harness(tmp_path, fake=fake, store=store_a, database_url=database_url,
                           throttle=SendThrottle(**pace)) as a, \
                harness(tmp_path, fake=fake, store=store_b, database_url=database_url,
                        throttle=SendThrottle(**pace)) as b:
            yield Pair(a, b, await a.use_webhook(), await b.serve())
    finally:
        await store_a.aclose()
        await store_b.aclose()


async def test_a_conversation_alternating_between_processes_keeps_its_state(
        pair: Pair, fake: FakeBotApi) -> None:
    a, b = pair.a, pair.b
    member = a.member(CHAT)
    turn = iter("abababababab")

    async def send(update: dict[str, object]) -> None:
        assert await pair.post(update, next(turn)) == 200

    member.send = send
    await member.say("/daftar")
    await member.press("reg:agree")
    for answer in (SITI["nik"], SITI["kpj"], SITI["birth"]):
        await member.say(answer)
    assert await member.share_contact(SITI["phone"]) == [
        "Kode verifikasi 6 digit sudah dikirim lewat SMS ke 0812****7890. Ketik kode tersebut di "
        "sini; kode berlaku 5 menit."]
    done = await member.say(a.codes()[-1])
    assert done[1].startswith("Verifikasi berhasil!")
    balance = await member.say("cek saldo")
    assert "Total: Rp45.911.176" in balance[0]
    assert await b.accounts.linked_kpjs(SessionKey("telegram", str(CHAT))) == [SITI["kpj"]]
    assert len(fake.calls("deleteMessage")) == 2  # the NIK and the code, by either process


async def test_one_update_delivered_to_both_processes_is_handled_once(
        pair: Pair, fake: FakeBotApi) -> None:
    update = fake.message_update(CHAT, "/menu")
    assert await pair.post(update, "a") == 200
    assert await pair.post(update, "b") == 200
    assert fake.sent_to(CHAT) == ["Apa yang ingin Anda lakukan?"]
    assert pair.duplicates() == 1.0


async def test_back_to_back_updates_on_two_processes_are_answered_in_update_order(
        pair: Pair, fake: FakeBotApi) -> None:
    reference = pair.a.member(CHAT + 1)
    groups = [await reference.say(command) for command in COMMANDS]
    for index, command in enumerate(COMMANDS):
        update = fake.message_update(CHAT, command)
        url = pair.url_a if index % 2 == 0 else pair.url_b
        assert await fake.post_to_webhook(update, url=url) == 200  # no waiting in between
    await pair.a.channel.drain()
    await pair.b.channel.drain()
    assert fake.sent_to(CHAT) == [text for group in groups for text in group]
    assert pair.duplicates() == 0.0


async def test_a_later_update_on_a_fast_process_waits_for_the_earlier_one_on_a_slow_one(
        tmp_path: Path, fake: FakeBotApi, redis_url: str, unique_prefix: str,
        database_url: str) -> None:
    """Consecutive updates of one chat reach two processes; the one that got the earlier
    update is slow (its first answer waits): the later one is still answered after it."""
    gate = asyncio.Event()

    store_a = redis_store_from_url(redis_url, prefix=unique_prefix)
    store_b = redis_store_from_url(redis_url, prefix=unique_prefix)
    try:
        async with harness(tmp_path, fake=fake, store=store_a, database_url=database_url,
                           wrap=held(gate)) as a, \
                harness(tmp_path, fake=fake, store=store_b, database_url=database_url) as b:
            url_a, url_b = await a.use_webhook(), await b.serve()
            first, later = (fake.message_update(CHAT, "/menu"),
                            fake.message_update(CHAT, "/bantuan"))
            assert await fake.post_to_webhook(first, url=url_a) == 200
            assert await fake.post_to_webhook(later, url=url_b) == 200
            await b.channel.drain()  # b has nothing to run: a holds the chat's turn
            assert fake.sent_to(CHAT) == []
            gate.set()
            await a.channel.drain()
            reference = b.member(CHAT + 1)
            expected = [*await reference.say("/menu"), *await reference.say("/bantuan")]
            assert fake.sent_to(CHAT) == expected
            assert b.metrics.value("bot_updates_total", channel="telegram") == 2.0  # reference
    finally:
        await store_a.aclose()
        await store_b.aclose()

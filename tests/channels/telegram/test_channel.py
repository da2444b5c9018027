"""The channel between aiogram and the engine: events, dedupe, faults, blocked members, order.

Updates are fed straight into the real dispatcher; replies go over HTTP to the fake Bot API.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiogram.types import Update

from channels.telegram.channel import Serve, TelegramChannel
from channels.telegram.throttle import SendThrottle
from flows.engine import Deliver, Served
from flows.i18n import Catalog
from flows.types import Event, EventKind, SessionKey
from storage.models import AuditEvent
from tests.e2e import conftest as e2e_conftest
from tests.e2e.harness import Harness, harness
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.down_store import DownSessionStore

tg = e2e_conftest.tg
CHAT = 3001


class Recorder:
    """Wraps ``Engine.serve``: records events, optionally fails."""

    def __init__(self) -> None:
        self.events: list[tuple[SessionKey, Event]] = []
        self.results: list[Served] = []
        self.fail: Exception | None = None
        self.gates: dict[str, asyncio.Event] = {}  # chat id -> served once the event is set

    def wrap(self, serve: Serve) -> Serve:
        async def recorded(key: SessionKey, event: Event, deliver: Deliver, *,
                           requeue: bool = False) -> Served:
            self.events.append((key, event))
            if self.fail is not None:
                raise self.fail
            if key.chat_id in self.gates:
                await self.gates[key.chat_id].wait()
            result = await serve(key, event, deliver, requeue=requeue)
            self.results.append(result)
            return result
        return recorded


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def rec(tmp_path: Path, fake: FakeBotApi, recorder: Recorder) -> AsyncIterator[Harness]:
    async with harness(tmp_path, fake=fake, wrap=recorder.wrap) as world:
        yield world


async def _audit_actions(tg: Harness) -> list[str]:
    async with tg.database.connect() as conn:
        rows = await conn.execute(sa.select(AuditEvent.action).order_by(AuditEvent.id))
        return [row[0] for row in rows]


async def test_a_message_becomes_a_text_event_with_update_id_and_language(
        rec: Harness, recorder: Recorder) -> None:
    update = rec.fake.message_update(CHAT, "cek saldo", language_code="en-GB")
    await rec.feed(update)
    [(key, event)] = recorder.events
    assert key == SessionKey("telegram", str(CHAT))
    assert (event.kind, event.text, event.language_code) == (EventKind.TEXT, "cek saldo", "en-GB")
    assert event.update_id == str(update["update_id"])


async def test_a_command_becomes_a_command_event(rec: Harness, recorder: Recorder) -> None:
    await rec.feed(rec.fake.message_update(CHAT, "/saldo@fake_bot"))
    [(_, event)] = recorder.events
    assert (event.kind, event.data) == (EventKind.COMMAND, "saldo")


@pytest.mark.parametrize(("owner_offset", "own"), [(0, True), (1, False)])
async def test_a_contact_is_own_only_when_its_user_is_the_sender(
        rec: Harness, recorder: Recorder, owner_offset: int, own: bool) -> None:
    await rec.feed(rec.fake.contact_update(CHAT, "+6281234567890",
                                           contact_user_id=CHAT + owner_offset))
    [(_, event)] = recorder.events
    assert (event.kind, event.phone, event.contact_is_own) == (EventKind.CONTACT,
                                                               "+6281234567890", own)


async def test_a_contact_without_a_user_id_is_not_own(rec: Harness, recorder: Recorder) -> None:
    await rec.feed(rec.fake.contact_update(CHAT, "+6281234567890", contact_user_id=None))
    assert recorder.events[0][1].contact_is_own is False


async def test_a_button_is_verified_answered_and_passed_on(rec: Harness,
                                                           recorder: Recorder) -> None:
    member = rec.member(CHAT)
    await member.say("/menu")
    await member.press("go:faq")
    event = recorder.events[-1][1]
    assert (event.kind, event.data, event.language_code) == (EventKind.BUTTON, "go:faq", "id")
    calls = [c.method for c in rec.fake.calls()]
    assert calls[calls.index("answerCallbackQuery") + 1] == "sendMessage"  # answered first


async def test_a_forged_button_becomes_the_expired_button(rec: Harness,
                                                          recorder: Recorder) -> None:
    member = rec.member(CHAT)
    await member.say("/menu")
    message_id, signed = member.button("go:faq")
    texts = await member.press_raw(signed.replace("go:faq", "go:hapusdata"), message_id)
    assert recorder.events[-1][1].data == "go:expired_button"
    assert texts[0] == "Tombol itu sudah tidak berlaku."
    assert len(rec.fake.calls("answerCallbackQuery")) == 1


async def test_a_repeated_update_is_handled_once(rec: Harness, recorder: Recorder) -> None:
    update = rec.fake.message_update(CHAT, "/menu")
    await rec.feed(update)
    await rec.feed(update)
    assert recorder.results == [Served.ANSWERED, Served.REPEAT]
    assert len(rec.fake.sent_to(CHAT)) == 1
    assert rec.metrics.value("bot_duplicates_total") == 1.0
    assert rec.metrics.value("bot_updates_total", channel="telegram") == 1.0


async def test_an_update_is_answered_politely_when_the_session_store_is_down(
        tmp_path: Path, fake: FakeBotApi) -> None:
    async with harness(tmp_path, fake=fake, store=DownSessionStore()) as world:
        await world.feed(fake.message_update(CHAT, "/menu", language_code="en"))
        assert fake.sent_to(CHAT) == ["Sorry, the service is busy right now. Please try again "
                                      "in a few minutes."]
        assert world.metrics.value("bot_errors_total", kind="store") == 1.0
        assert world.metrics.value("bot_updates_total", channel="telegram") == 1.0


async def test_group_updates_go_to_the_hook_not_the_engine(tmp_path: Path, fake: FakeBotApi,
                                                           recorder: Recorder) -> None:
    seen: list[int] = []

    async def hook(update: Update) -> None:
        seen.append(update.update_id)

    async with harness(tmp_path, fake=fake, wrap=recorder.wrap, on_group_update=hook) as world:
        update = fake.message_update(-100123, "halo", user_id=CHAT, chat_type="supergroup")
        await world.feed(update)
    assert seen == [update["update_id"]]
    assert recorder.events == []
    assert fake.calls("sendMessage") == []


async def test_group_updates_are_ignored_without_a_hook(rec: Harness,
                                                        recorder: Recorder) -> None:
    await rec.feed(rec.fake.message_update(-5, "/saldo", user_id=CHAT, chat_type="group"))
    assert recorder.events == []
    assert rec.fake.calls() == []


async def test_a_fault_is_logged_with_the_update_id_only_and_answered_with_an_apology(
        rec: Harness, recorder: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    recorder.fail = RuntimeError("boom 3171014501900001")
    update = rec.fake.message_update(CHAT, "NIK saya 3171014501900001", language_code="en")
    with caplog.at_level(logging.ERROR, logger="channels.telegram.channel"):
        await rec.feed(update)
    assert rec.fake.sent_to(CHAT) == ["Sorry, something went wrong on our side. Please try "
                                      "again; what you typed before is kept."]
    assert rec.metrics.value("bot_errors_total", kind="internal") == 1.0
    assert f"update {update['update_id']} failed: RuntimeError" in caplog.text
    assert "3171014501900001" not in caplog.text


async def test_a_rejected_reply_is_followed_by_an_apology(tg: Harness) -> None:
    tg.fake.fail_method("sendMessage", 400, "Bad Request: can't parse entities", times=1)
    await tg.feed(tg.fake.message_update(CHAT, "/menu"))
    assert tg.fake.sent_to(CHAT) == ["Maaf, terjadi gangguan di sistem kami. Silakan coba lagi; "
                                     "data yang sudah Anda isi tetap tersimpan."]
    assert tg.metrics.value("bot_errors_total", kind="telegram") == 1.0


async def test_a_member_who_blocked_the_bot_is_recorded_and_not_sent_more(tg: Harness) -> None:
    tg.fake.block(CHAT)
    await tg.feed(tg.fake.message_update(CHAT, "/bantuan"))  # two replies
    assert [c.status for c in tg.fake.calls("sendMessage")] == [403]  # tried once, then stopped
    assert await tg.channel.is_blocked(CHAT)
    assert await _audit_actions(tg) == ["blocked"]
    async with tg.store.chat(SessionKey("telegram", str(CHAT))) as slot:
        assert slot.session is not None and slot.session.view == {"blocked": True}
    assert tg.metrics.value("bot_errors_total", kind="telegram") == 0.0  # not a fault


async def test_a_later_message_clears_the_blocked_mark(tg: Harness) -> None:
    tg.fake.block(CHAT)
    await tg.feed(tg.fake.message_update(CHAT, "/menu"))
    tg.fake.unblock(CHAT)
    await tg.feed(tg.fake.message_update(CHAT, "/menu"))
    assert not await tg.channel.is_blocked(CHAT)
    assert await _audit_actions(tg) == ["blocked", "unblocked"]
    assert len(tg.fake.sent_to(CHAT)) == 1


async def test_concurrent_updates_of_one_chat_are_answered_in_arrival_order(
        tg: Harness) -> None:
    commands = ["/bantuan", "/faq", "/petugas", "/menu", "/saldo"]
    reference = tg.member(CHAT + 1)
    expected = [await reference.say(command) for command in commands]
    updates = [tg.fake.message_update(CHAT, command) for command in commands]
    await asyncio.gather(*(tg.feed(update) for update in updates))
    assert tg.fake.sent_to(CHAT) == [text for group in expected for text in group]


async def test_a_slow_chat_does_not_hold_up_other_chats(rec: Harness,
                                                        recorder: Recorder) -> None:
    gate = recorder.gates[str(CHAT)] = asyncio.Event()  # a flow stuck on a slow service
    slow = asyncio.create_task(rec.feed(rec.fake.message_update(CHAT, "/menu")))
    await asyncio.wait_for(rec.feed(rec.fake.message_update(CHAT + 1, "/menu")), 5)
    assert not slow.done()
    gate.set()
    await slow
    assert len(rec.fake.sent_to(CHAT)) == 1


async def test_drain_waits_for_accepted_updates(tg: Harness) -> None:
    update = tg.fake.message_update(CHAT, "/menu")
    assert await tg.channel.take(tg.channel.parse(update), json.dumps(update))
    assert tg.fake.sent_to(CHAT) == []
    await tg.channel.drain()
    assert len(tg.fake.sent_to(CHAT)) == 1


async def test_drain_cancels_updates_still_running_after_the_timeout(
        rec: Harness, recorder: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    recorder.gates[str(CHAT)] = asyncio.Event()  # never set: an update stuck in a flow
    update = rec.fake.message_update(CHAT, "/menu")
    assert await rec.channel.take(rec.channel.parse(update), json.dumps(update))
    while not recorder.events:
        await asyncio.sleep(0.01)
    await rec.channel.drain(timeout=0.05)
    assert rec.channel.backlog == 0
    assert "handed back 1 telegram chats still running at shutdown" in caplog.text
    assert recorder.results == [] and rec.fake.sent_to(CHAT) == []


@pytest.mark.parametrize("payload", [[], "x", {"update_id": "not a number"}, {"message": {}}])
def test_parse_refuses_what_is_not_an_update(tg: Harness, payload: object) -> None:
    with pytest.raises(ValueError, match="update"):
        tg.channel.parse(payload)


async def test_latency_is_observed_per_update(tg: Harness) -> None:
    await tg.feed(tg.fake.message_update(CHAT, "/menu"))
    await tg.feed(tg.fake.message_update(CHAT, "/menu"))
    assert tg.metrics.value("bot_update_seconds_count", channel="telegram") == 2.0
    assert tg.metrics.value("bot_replies_total", channel="telegram") == 2.0


async def test_updates_beyond_the_concurrency_wait_their_turn(
        tmp_path: Path, fake: FakeBotApi, recorder: Recorder) -> None:
    gate = recorder.gates[str(CHAT)] = asyncio.Event()
    async with harness(tmp_path, fake=fake, wrap=recorder.wrap, concurrency=1) as one_slot:
        slow = asyncio.create_task(one_slot.feed(fake.message_update(CHAT, "/menu")))
        waiting = asyncio.create_task(one_slot.feed(fake.message_update(CHAT + 1, "/menu")))
        await asyncio.sleep(0.1)
        running = [key.chat_id for key, _ in recorder.events]
        assert running == [str(CHAT)]  # the second chat waits for the only slot
        gate.set()
        await asyncio.wait_for(asyncio.gather(slow, waiting), 5)
        assert [key.chat_id for key, _ in recorder.events] == [str(CHAT), str(CHAT + 1)]
        assert len(fake.sent_to(CHAT + 1)) == 1


def test_a_channel_needs_at_least_one_slot(tg: Harness) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        TelegramChannel(tg.bot, serve=tg.engine.serve, ports=tg.channel._ports,  # noqa: SLF001
                        throttle=SendThrottle(), metrics=tg.metrics, catalog=Catalog(),
                        concurrency=0)

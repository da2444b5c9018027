"""Contribution alerts end to end on Telegram (issue 16): demo members register and accept
the offer shown after linking, a planning pass and a worker of ``app.compose`` deliver each
kind through ``TelegramOutbox`` to the fake Bot API, exactly once; the stop button, an
unsubscription between planning and sending, quiet hours, a blocked bot, an English member,
/datasaya and /hapusdata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.ports import Result
from channels.telegram.chats import BlockedChats
from flows.alerts import ALERTS_VERSION
from flows.types import SessionKey
from storage.sessions import redis_store_from_url
from tests.conftest import delete_prefixed
from tests.e2e.alerts_harness import (
    AGUS,
    BUDI,
    AlertRig,
    Message,
    late_september_paid,
    october,
    rupiah,
    telegram_alerts,
    telegram_messages,
)
from tests.e2e.harness import Harness, Member, register
from tests.fakes.bot_api import FakeBotApi
from tests.flows.conftest import DEWI, SITI

EVERY = frozenset({"posted", "missing", "development"})
CHATS = {"siti": 5560001, "budi": 5560002, "agus": 5560003, "dewi": 5560004}
JAN_3 = datetime(2027, 1, 3, 3, 0, tzinfo=UTC)  # 10:00 in Jakarta, a month later
MISSING_BUTTONS = ["go:history", "go:handoff", "go:faq.report_employer",
                   "go:alerts_stop:missing"]


@pytest.fixture
async def tg(tmp_path: Path, fake: FakeBotApi) -> AsyncIterator[tuple[Harness, AlertRig]]:
    """One Telegram bot process with alerts, on the embedded backends."""
    async with telegram_alerts(tmp_path, fake=fake) as built:
        yield built


def assert_split(text: str, kpj: str, employer: int, employee: int) -> None:
    """A wage earner's posted alert: the month, the membership, the total and both parts."""
    assert "Oktober 2026" in text and kpj in text and "pemberi kerja" in text
    for amount in (employer + employee, employer, employee):
        assert rupiah(amount) in text, amount


def assert_development(text: str, kpj: str) -> None:
    """The yearly development alert: 2025's imported rate, in Indonesian digits."""
    assert "pengembangan JHT" in text and "2025" in text and "6,15%" in text and kpj in text


async def subscribe(member: Member, who: dict[str, str]) -> None:
    """Register, then accept the offer shown after linking and agree to the notice."""
    await register(member, who)
    member.button("go:alerts_on")  # the offer after linking: "Yes, send me alerts"
    await member.press("go:alerts_on")
    await member.press("alerts:agree")
    member.new_texts()


def since(world: Harness) -> int:
    """Where the fake's record of calls stands now."""
    return len(world.fake.calls())


def messages(world: Harness, chat: int, mark: int) -> list[Message]:
    return telegram_messages(world.fake, chat, mark)


# ----------------------------------------------------------------- every kind, once


async def test_each_kind_reaches_each_demo_member_once(
        tg: tuple[Harness, AlertRig]) -> None:
    world, rig = tg
    members = {name: world.member(chat) for name, chat in CHATS.items()}
    for name, who in (("siti", SITI), ("budi", BUDI), ("agus", AGUS), ("dewi", DEWI)):
        await subscribe(members[name], who)
    siti_key = SessionKey("telegram", str(CHATS["siti"]))
    assert await rig.runtime.alerts.kinds(siti_key) == EVERY
    consents = await world.accounts.consents(siti_key)
    assert (consents[-1].version, consents[-1].locale) == (ALERTS_VERSION, "id")

    mark = since(world)
    planned = await rig.plan()
    assert planned.new == {("posted", "telegram"): 3, ("missing", "telegram"): 1,
                           ("development", "telegram"): 4}
    drained = await rig.drain()
    assert drained.counts == {Result.SENT: 8}

    siti = messages(world, CHATS["siti"], mark)
    assert [m.buttons[-1] for m in siti] == [
        "go:alerts_stop:posted", "go:alerts_stop:missing", "go:alerts_stop:development"]
    assert_split(siti[0].text, "123*****901", *october(SITI["kpj"]))
    assert siti[0].buttons == ["go:check_balance", "go:alerts_stop:posted"]
    missing = siti[1]
    for fact in ("September 2026", "123*****901", "belum tercatat", "15 Oktober 2026", "HRD",
                 "175", "Lapak Asik"):
        assert fact in missing.text, fact
    assert missing.buttons == MISSING_BUTTONS
    assert_development(siti[2].text, "123*****901")
    assert siti[2].buttons == ["go:check_balance", "go:alerts_stop:development"]

    budi = messages(world, CHATS["budi"], mark)
    assert len(budi) == 2
    assert_split(budi[0].text, "234*****012", *october(BUDI["kpj"]))
    assert_development(budi[1].text, "234*****012")
    agus = messages(world, CHATS["agus"], mark)
    employer, employee = october(AGUS["kpj"])
    assert len(agus) == 2  # BPU: the total, no split
    assert "Oktober 2026" in agus[0].text and "345*****123" in agus[0].text
    assert rupiah(employer + employee) in agus[0].text and "pemberi kerja" not in agus[0].text
    assert_development(agus[1].text, "345*****123")
    dewi = messages(world, CHATS["dewi"], mark)  # inactive: the yearly development only
    assert [m.buttons[-1] for m in dewi] == ["go:alerts_stop:development"]
    assert not any("belum tercatat" in m.text for m in dewi)

    assert await rig.sent_count(siti_key) == 3
    assert rig.counted("posted", "telegram", "sent") == 3
    assert rig.counted("missing", "telegram", "planned") == 1

    mark = since(world)  # a second pass the same day (or a pass replayed): nothing again
    again = await rig.plan()
    assert again.total == 0 and again.already >= 1
    assert (await rig.drain()).counts == {}
    assert all(not messages(world, chat, mark) for chat in CHATS.values())
    assert await rig.depth() == 0


# --------------------------------------------------------------- stop, unsubscribe


async def test_the_stop_button_turns_that_kind_off_and_the_others_still_come(
        tg: tuple[Harness, AlertRig], tmp_path: Path) -> None:
    world, rig = tg
    siti = world.member(CHATS["siti"])
    await subscribe(siti, SITI)
    await rig.plan()
    await rig.drain()

    world.clock.at = JAN_3  # a month later: September paid late, November missing
    await late_september_paid(world.database, tmp_path)
    planned = await rig.plan()
    assert planned.new == {("posted", "telegram"): 1, ("missing", "telegram"): 1}
    siti.new_texts()
    answer = await siti.press("go:alerts_stop:missing")  # on December's missing alert
    assert any("/notifikasi" in text for text in answer)
    key = SessionKey("telegram", str(siti.chat_id))
    assert await rig.runtime.alerts.kinds(key) == {"posted", "development"}
    mark = since(world)
    drained = await rig.drain()
    assert drained.counts == {Result.SENT: 1, Result.SKIPPED: 1}
    [posted] = messages(world, siti.chat_id, mark)
    assert "September 2026" in posted.text and "123*****901" in posted.text
    assert posted.buttons[-1] == "go:alerts_stop:posted"
    assert rig.counted("missing", "telegram", "skipped") == 1

    world.clock.at = datetime(2027, 2, 3, 3, 0, tzinfo=UTC)  # the next month's pass
    later = await rig.plan()
    assert ("missing", "telegram") not in later.new  # turned off: not even planned


async def test_unsubscribed_between_planning_and_sending_is_not_sent(
        tg: tuple[Harness, AlertRig]) -> None:
    world, rig = tg
    siti, budi = world.member(CHATS["siti"]), world.member(CHATS["budi"])
    await subscribe(siti, SITI)
    await subscribe(budi, BUDI)
    assert (await rig.plan()).total == 5
    await siti.say("/notifikasi")
    await siti.press("alerts:off:posted")  # one kind off
    await budi.say("/keluar")
    await budi.press("acct:logout")  # unlinked: every kind off
    mark = since(world)
    drained = await rig.drain()
    assert drained.counts == {Result.SENT: 2, Result.SKIPPED: 3}
    assert [m.buttons[-1] for m in messages(world, siti.chat_id, mark)] == [
        "go:alerts_stop:missing", "go:alerts_stop:development"]
    assert not messages(world, budi.chat_id, mark)


# -------------------------------------------------------------------------- quiet hours


async def test_planned_at_night_waits_for_the_morning(tg: tuple[Harness, AlertRig]) -> None:
    world, rig = tg
    world.clock.at = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)  # 22:00 in Jakarta
    siti = world.member(CHATS["siti"])
    await subscribe(siti, SITI)
    mark = since(world)
    assert (await rig.plan()).total == 3
    night = await rig.drain()
    assert (night.counts, night.held) == ({}, 3)
    world.clock.at = datetime(2026, 12, 3, 23, 59, tzinfo=UTC)  # 06:59
    assert (await rig.drain()).held == 3
    assert not messages(world, siti.chat_id, mark)
    world.clock.at = datetime(2026, 12, 4, 0, 0, tzinfo=UTC)  # 07:00
    morning = await rig.drain()
    assert morning.counts == {Result.SENT: 3} and morning.held == 0
    assert len(messages(world, siti.chat_id, mark)) == 3


# --------------------------------------------------------------------------- blocked


def refused(world: Harness, chat_id: int) -> int:
    """How many calls to the chat the fake Bot API refused as blocked (403)."""
    return sum(1 for call in world.fake.calls() if call.status == 403 and call.targets(chat_id))


async def test_a_member_who_blocked_the_bot_is_skipped_and_recorded(
        tmp_path: Path, tg: tuple[Harness, AlertRig]) -> None:
    world, rig = tg
    siti, budi = world.member(CHATS["siti"]), world.member(CHATS["budi"])
    await subscribe(siti, SITI)
    await subscribe(budi, BUDI)
    world.fake.block(siti.chat_id)
    await rig.plan()
    mark = since(world)
    drained = await rig.drain()
    assert drained.counts == {Result.BLOCKED: 3, Result.SENT: 2}
    assert refused(world, siti.chat_id) == 1  # her later alerts of the batch were not tried
    assert await BlockedChats(world.store).is_blocked(siti.chat_id)
    assert rig.counted("missing", "telegram", "blocked") == 1
    assert not messages(world, siti.chat_id, mark)
    assert len(messages(world, budi.chat_id, mark)) == 2
    assert await rig.depth() == 0  # finished, not retried
    assert (await rig.drain()).counts == {}

    # Her late September contribution is posted: known blocked, it costs no send of the
    # bot's rate; once she writes again (unblocked), the next alert reaches her.
    await late_september_paid(world.database, tmp_path)
    world.clock.at = JAN_3
    assert (await rig.plan()).total == 3  # hers: September posted, November missing; Budi's
    assert (await rig.drain()).counts == {Result.BLOCKED: 2, Result.SENT: 1}
    assert refused(world, siti.chat_id) == 1
    assert rig.counted("posted", "telegram", "blocked") == 2

    world.fake.unblock(siti.chat_id)
    await siti.say("halo")
    assert not await BlockedChats(world.store).is_blocked(siti.chat_id)
    world.clock.at = datetime(2027, 2, 3, 3, 0, tzinfo=UTC)  # December missing too
    mark = since(world)
    await rig.plan()
    assert (await rig.drain()).counts == {Result.SENT: 2}
    [december] = messages(world, siti.chat_id, mark)
    assert "Desember 2026" in december.text


# --------------------------------------------------------------------------- English


async def english_alerts(world: Harness, rig: AlertRig, siti: Member) -> list[str]:
    """Siti subscribes in English; the texts of the alerts a pass then sends her."""
    await subscribe(siti, SITI)
    mark = since(world)
    await rig.plan()
    await rig.drain()
    return [m.text for m in messages(world, siti.chat_id, mark)]


def assert_english(texts: list[str]) -> None:
    employer, employee = october(SITI["kpj"])
    assert texts[0].startswith("The contribution for October 2026 for KPJ 123*****901")
    for amount in (employer + employee, employer, employee):
        assert f"Rp{amount:,}" in texts[0]
    assert "September 2026" in texts[1] and "employer" in texts[1] and "175" in texts[1]
    assert "2025" in texts[2] and "6.15%" in texts[2]


async def test_a_member_who_chose_english_gets_the_alert_in_english(
        tg: tuple[Harness, AlertRig]) -> None:
    world, rig = tg
    siti = world.member(CHATS["siti"])
    await siti.say("/bahasa")
    await siti.press("lang:en")
    assert_english(await english_alerts(world, rig, siti))


async def test_a_member_whose_telegram_is_english_gets_the_alert_in_english(
        tg: tuple[Harness, AlertRig]) -> None:
    world, rig = tg
    siti = world.member(CHATS["siti"], language_code="en")
    assert_english(await english_alerts(world, rig, siti))


# ------------------------------------------------------------- /datasaya, /hapusdata


async def test_my_data_counts_the_alerts_and_erasing_drops_the_queued_ones(
        tg: tuple[Harness, AlertRig], tmp_path: Path) -> None:
    world, rig = tg
    siti = world.member(CHATS["siti"])
    key = SessionKey("telegram", str(siti.chat_id))
    await subscribe(siti, SITI)
    await rig.plan()
    await rig.drain()
    mine = "\n".join(await siti.say("/datasaya"))
    assert "Notifikasi iuran yang aktif:" in mine and "Notifikasi terkirim: 3" in mine

    world.clock.at = JAN_3
    await late_september_paid(world.database, tmp_path)
    assert (await rig.plan()).total == 2  # queued for Siti
    await siti.say("/hapusdata")
    await siti.press("acct:erase")
    assert await rig.runtime.alerts.kinds(key) == frozenset()
    assert await rig.sent_count(key) == 0
    mark = since(world)
    assert await rig.depth() == 0  # the chat's queued jobs went with its data
    assert (await rig.drain()).counts == {}
    assert not messages(world, siti.chat_id, mark)


# ----------------------------------------------------------------------------- Redis


async def test_on_redis_each_kind_is_sent_once(tmp_path: Path, fake: FakeBotApi,
                                               redis_url: str, unique_prefix: str) -> None:
    store = redis_store_from_url(redis_url, prefix=unique_prefix)
    try:
        async with telegram_alerts(tmp_path, fake=fake, store=store) as (world, rig):
            siti = world.member(CHATS["siti"])
            await subscribe(siti, SITI)
            mark = since(world)
            assert (await rig.plan()).total == 3
            assert (await rig.drain()).counts == {Result.SENT: 3}
            assert (await rig.plan()).total == 0
            assert (await rig.drain()).counts == {}
            assert len(messages(world, siti.chat_id, mark)) == 3
            assert "Notifikasi terkirim: 3" in "\n".join(await siti.say("/datasaya"))
    finally:
        await delete_prefixed(redis_url, unique_prefix)
        await store.client.aclose()

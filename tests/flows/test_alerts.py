"""Contribution alerts in the conversation (issue 16): the offer after linking, the alerts
notice and its consent, /notifikasi's switches, the stop button on every alert, what the
alerts say per kind and segment in both languages, and /datasaya, /hapusdata, /keluar."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import pytest

from app.compose import build_engine, build_ports, open_database
from app.otp_delivery import OutboxOtpSender
from balance.service import ReferenceBalanceService
from domain.alerts import AlertJob, AlertKind
from flows.alerts import ALERTS_NOTICE, ALERTS_VERSION, alert_says
from flows.engine import Engine
from flows.types import Reply, SessionKey
from storage.accounts import SqlAccountStore
from storage.alerts import SqlAlertStore
from storage.sessions import MemorySessionStore
from tests.flows.conftest import ALWAYS, DEWI, SECRET, Chat, ManualClock

EVERY = {"posted", "missing", "development"}
LABEL_MAX = 20  # WhatsApp reply-button title limit
TODAY = date(2026, 11, 20)


@dataclass
class FakeMarks:
    """The alert queue's marks of each chat, as /datasaya and /hapusdata see them."""

    sent: dict[SessionKey, int] = field(default_factory=dict)
    forgotten: list[SessionKey] = field(default_factory=list)

    async def sent_count(self, key: SessionKey) -> int:
        return self.sent.get(key, 0)

    async def forget(self, key: SessionKey) -> int:
        self.forgotten.append(key)
        return self.sent.pop(key, 0)


@dataclass
class AlertWorld:
    engine: Engine
    accounts: SqlAccountStore
    alerts: SqlAlertStore
    marks: FakeMarks
    outbox: Path

    def chat(self, chat_id: str = "1001", language_code: str = "id") -> Chat:
        return Chat(self.engine, self.outbox, SessionKey("test", chat_id), language_code)

    def key(self, chat_id: str = "1001") -> SessionKey:
        return SessionKey("test", chat_id)


@asynccontextmanager
async def alert_world(tmp_path: Path, *, offered: bool = True) -> AsyncIterator[AlertWorld]:
    tmp_path = tmp_path / ("offered" if offered else "bare")
    tmp_path.mkdir()
    database = await open_database(f"sqlite:///{tmp_path / 'bot.db'}")
    accounts = SqlAccountStore(database, SECRET)
    store = MemorySessionStore()
    outbox = tmp_path / "outbox.jsonl"
    alerts, marks = SqlAlertStore(database), FakeMarks()
    ports = build_ports(kv=store, database=database, accounts=accounts,
                        balance=ReferenceBalanceService(database),
                        otp_sender=OutboxOtpSender(outbox), clock=ManualClock(), secret=SECRET,
                        hours=ALWAYS)
    if offered:
        ports = replace(ports, alerts=alerts, alert_marks=marks)
    try:
        yield AlertWorld(build_engine(store, ports, strict=True), accounts, alerts, marks,
                         outbox)
    finally:
        await database.dispose()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[AlertWorld]:
    async with alert_world(tmp_path) as built:
        yield built


@pytest.fixture
async def bare(tmp_path: Path) -> AsyncIterator[AlertWorld]:
    async with alert_world(tmp_path, offered=False) as built:
        yield built


async def _subscribed(world: AlertWorld, chat: Chat) -> None:
    """Link Siti and agree to every alert from the offer."""
    await chat.register()
    await chat.press("go:alerts_on")
    await chat.press("alerts:agree")


# ------------------------------------------------------------------ offer and consent


async def test_the_offer_after_linking_leads_to_the_notice_and_consent(
        world: AlertWorld) -> None:
    chat = world.chat()
    text = await chat.register()
    assert "KPJ 123*****901" in text
    # The offer's question is the last message and its buttons the only ones: [1] Yes, [2]
    # Not now (which shows the menu); no main menu above it to number them 7 and 8.
    assert chat.replies[-1].text.endswith("?")
    assert chat.buttons == ["go:alerts_on", "go:menu"]
    assert "iuran Anda sudah masuk" in text
    notice = await chat.press("go:alerts_on")
    assert "21.00" in notice and "/hapusdata" in notice and "/notifikasi" in notice
    assert chat.buttons[:2] == ["alerts:agree", "alerts:decline"]
    assert await world.alerts.kinds(chat.key) == frozenset()
    done = await chat.press("alerts:agree")
    assert "notifikasi sudah aktif" in done
    assert await world.alerts.kinds(chat.key) == EVERY
    consents = await world.accounts.consents(chat.key)
    assert [(c.version, c.locale) for c in consents][-1] == (ALERTS_VERSION, "id")
    assert {"alerts:off:posted", "alerts:off:missing", "alerts:off:development"} <= set(
        chat.buttons)


async def test_no_offer_when_subscribed_or_not_offered(world: AlertWorld,
                                                       bare: AlertWorld) -> None:
    chat = world.chat()
    await _subscribed(world, chat)
    await chat.register(DEWI)  # a second person on the same chat
    assert "go:alerts_on" not in chat.buttons
    plain = bare.chat()
    await plain.register()
    assert "KPJ 123*****901" in plain.text and "go:alerts_on" not in plain.buttons
    assert "go:check_balance" in plain.buttons  # no offer: the main menu


async def test_declining_turns_nothing_on_and_records_nothing(world: AlertWorld) -> None:
    chat = world.chat()
    await chat.register()
    await chat.press("go:alerts_on")
    text = await chat.press("alerts:decline")
    assert "tidak ada notifikasi yang diaktifkan" in text
    assert await world.alerts.kinds(chat.key) == frozenset()
    assert ALERTS_VERSION not in {c.version for c in await world.accounts.consents(chat.key)}


async def test_the_notice_says_what_the_brief_asks() -> None:
    for fact in ("recorded", "missing after its due date", "yearly JHT development",
                 "21:00 and 07:00 WIB", "a record of each alert sent", "none is sent twice",
                 "Stop these alerts", "/alerts", "/logout", "/deletedata"):
        assert fact in ALERTS_NOTICE, fact


# --------------------------------------------------------------------------- switches


async def test_switches_turn_one_kind_off_and_on(world: AlertWorld) -> None:
    chat = world.chat()
    await _subscribed(world, chat)
    text = await chat.say("/notifikasi")
    assert text.count(": aktif") == 3
    await chat.press("alerts:off:posted")
    assert await world.alerts.kinds(chat.key) == {"missing", "development"}
    assert "alerts:on:posted" in chat.buttons and "Iuran sudah masuk: nonaktif" in chat.text
    await chat.press("alerts:on:posted")  # agreed before: no notice again
    assert await world.alerts.kinds(chat.key) == EVERY
    assert "alerts:off:posted" in chat.buttons


async def test_turning_on_without_consent_shows_the_notice_for_that_kind(
        world: AlertWorld) -> None:
    chat = world.chat(language_code="en")
    await chat.register()
    text = await chat.say("/alerts")
    assert text.count(": off") == 3 and "alerts:on:missing" in chat.buttons
    notice = await chat.press("alerts:on:missing")
    assert "Do you agree?" in notice
    await chat.press("alerts:agree")
    assert await world.alerts.kinds(chat.key) == {"missing"}
    assert "Contribution late (past its due date): on" in chat.text
    consents = await world.accounts.consents(chat.key)
    assert (consents[-1].version, consents[-1].locale) == (ALERTS_VERSION, "en")


async def test_the_stop_button_works_from_any_state(world: AlertWorld) -> None:
    chat = world.chat()
    await _subscribed(world, chat)
    await chat.say("/daftar")  # in the middle of another flow
    text = await chat.press("go:alerts_stop:missing")
    assert await world.alerts.kinds(chat.key) == {"posted", "development"}
    assert "/notifikasi" in text and "Iuran terlambat (lewat jatuh tempo)" in text
    assert "go:check_balance" in chat.buttons  # back at the main menu
    await chat.press("go:alerts_stop:nonsense")
    assert await world.alerts.kinds(chat.key) == {"posted", "development"}


async def test_not_linked_points_to_registration(world: AlertWorld) -> None:
    chat = world.chat()
    text = await chat.say("/notifikasi")
    assert "/daftar" in text and "go:register" in chat.buttons
    await chat.press("go:alerts_on")
    assert "/daftar" in chat.text
    assert await world.alerts.kinds(chat.key) == frozenset()


async def test_not_offered_is_said_politely(bare: AlertWorld) -> None:
    chat = bare.chat()
    await chat.register()
    for command in ("/notifikasi", "/alerts"):
        assert "notifikasi iuran tidak tersedia" in await chat.say(command)
    assert "tidak tersedia" in await chat.press("go:alerts_stop:posted")
    assert "tidak tersedia" in await chat.press("go:alerts_on")


async def test_alerts_are_listed_in_help(world: AlertWorld) -> None:
    assert "/notifikasi" in await world.chat().say("/bantuan")
    assert "/alerts" in await world.chat("1002", "en").say("/help")


# ------------------------------------------------------------------------- the alerts


def _job(kind: AlertKind, segment: str = "PU", *, employer_part: int = 0,
         employee_part: int = 0, rate: str = "") -> AlertJob:
    period = "2025" if kind is AlertKind.DEVELOPMENT else "2026-10"
    return AlertJob("telegram", "42", kind, period, "12345678901", segment, employer_part,
                    employee_part, rate)


def _render(world: AlertWorld, job: AlertJob, locale: str,
            today: date = TODAY) -> list[Reply]:
    return world.engine.render(alert_says(job, today), locale)


def _buttons(replies: list[Reply]) -> list[str]:
    return [b.data for r in replies for row in r.buttons for b in row]


POSTED_PU = _job(AlertKind.POSTED, employer_part=250_046, employee_part=135_160)


async def test_posted_for_a_wage_earner_splits_the_parts(world: AlertWorld) -> None:
    replies = _render(world, POSTED_PU, "id")
    assert replies[0].text == ("Iuran bulan Oktober 2026 untuk KPJ 123*****901 sudah masuk: "
                               "Rp385.206 (pemberi kerja Rp250.046 + Anda Rp135.160).")
    assert _buttons(replies) == ["go:check_balance", "go:alerts_stop:posted"]
    english = _render(world, POSTED_PU, "en")[0].text
    assert english == ("The contribution for October 2026 for KPJ 123*****901 has been "
                       "recorded: Rp385,206 (employer Rp250,046 + you Rp135,160).")


@pytest.mark.parametrize("segment", ["BPU", "PMI"])
async def test_posted_for_a_member_who_pays_has_no_split(world: AlertWorld,
                                                         segment: str) -> None:
    job = _job(AlertKind.POSTED, segment, employee_part=36_800)
    assert _render(world, job, "id")[0].text == (
        "Iuran mandiri bulan Oktober 2026 untuk KPJ 123*****901 sudah masuk: Rp36.800.")
    assert _render(world, job, "en")[0].text == (
        "Your self-paid contribution for October 2026 for KPJ 123*****901 has been recorded: "
        "Rp36,800.")


async def test_posted_for_a_wage_earner_without_an_employer_part_has_no_split(
        world: AlertWorld) -> None:
    job = _job(AlertKind.POSTED, employee_part=36_800)
    assert _render(world, job, "id")[0].text == (
        "Iuran bulan Oktober 2026 untuk KPJ 123*****901 sudah masuk: Rp36.800.")


async def test_missing_for_a_wage_earner_says_what_to_do(world: AlertWorld) -> None:
    job = _job(AlertKind.MISSING)
    text = _render(world, job, "id")[0].text
    for fact in ("Oktober 2026", "123*****901", "belum tercatat", "15 November 2026", "HRD",
                 "175", "Lapak Asik", "pelanggaran perusahaan, bukan kesalahan Anda"):
        assert fact in text, fact
    assert _buttons(_render(world, job, "id")) == [
        "go:history", "go:handoff", "go:faq.report_employer", "go:alerts_stop:missing"]
    english = _render(world, job, "en")[0].text
    assert "November 15, 2026" in english or "15 November 2026" in english
    assert "the employer's offence, not yours" in english


@pytest.mark.parametrize("segment", ["BPU", "PMI"])
async def test_missing_for_a_member_who_pays_is_a_reminder(world: AlertWorld,
                                                           segment: str) -> None:
    job = _job(AlertKind.MISSING, segment)
    replies = _render(world, job, "id")
    text = replies[0].text
    assert text.startswith(
        "Pengingat: iuran bulan Oktober 2026 untuk KPJ 123*****901 belum tercatat")
    assert "sudah lewat" in text and "JMO" in text and "rekening pribadi" in text
    assert "HRD" not in text
    assert _buttons(replies) == ["go:faq.pay_contribution", "go:history",
                                 "go:alerts_stop:missing"]
    early = _render(world, job, "en", date(2026, 11, 10))[0].text
    assert "not recorded yet; it is due by" in early


async def test_development_in_the_members_number_format(world: AlertWorld) -> None:
    job = _job(AlertKind.DEVELOPMENT, rate="7.19")
    replies = _render(world, job, "id")
    assert replies[0].text == ("Hasil pengembangan JHT tahun 2025 sebesar 7,19% sudah "
                               "ditambahkan ke saldo JHT KPJ 123*****901.")
    assert "of 7.19% has" in _render(world, job, "en")[0].text
    assert "of 6% has" in _render(world, _job(AlertKind.DEVELOPMENT, rate="6.00"), "en")[0].text
    assert _buttons(replies) == ["go:check_balance", "go:alerts_stop:development"]


async def test_every_alert_fits_whatsapp_limits(world: AlertWorld) -> None:
    jobs = [POSTED_PU, *(_job(kind, segment, employee_part=1, rate="5.59")
                         for kind in AlertKind for segment in ("PU", "BPU", "PMI"))]
    for job in jobs:
        for locale in ("id", "en"):
            for reply in _render(world, job, locale):
                assert len(reply.text) <= 1024
                for row in reply.buttons:
                    assert len(row) <= 3
                    for button in row:
                        assert 0 < len(button.label) <= LABEL_MAX, button.label


async def test_alert_topics_answer_from_the_buttons(world: AlertWorld) -> None:
    chat = world.chat()
    text = await chat.press("go:faq.report_employer")
    assert "175" in text and "Lapak Asik" in text and "faq:yes" in chat.buttons
    text = await chat.press("go:faq.pay_contribution")
    assert "JMO" in text and "rekening pribadi" in text
    await chat.press("faq:yes")
    assert "go:check_balance" in chat.buttons  # thanked, back at the main menu


async def test_switch_labels_fit_whatsapp_limits(world: AlertWorld) -> None:
    for locale in ("id", "en"):
        chat = world.chat(f"20{locale}", locale)
        await chat.register()
        await chat.press("go:alerts_on")
        await chat.press("alerts:agree")
        await chat.press("alerts:off:posted")
        labels = [b.label for r in chat.replies for row in r.buttons for b in row]
        assert labels and all(0 < len(label) <= LABEL_MAX for label in labels), labels


# ------------------------------------------------------- /datasaya, /hapusdata, /keluar


async def test_my_data_lists_the_alerts_and_how_many_were_sent(world: AlertWorld) -> None:
    chat = world.chat()
    await _subscribed(world, chat)
    await chat.press("alerts:off:development")
    world.marks.sent[chat.key] = 3
    text = await chat.say("/datasaya")
    assert ("Notifikasi iuran yang aktif:\n• Iuran sudah masuk\n"
            "• Iuran terlambat (lewat jatuh tempo)") in text
    assert "Hasil pengembangan JHT tahunan" not in text
    assert "Notifikasi terkirim: 3" in text
    world.marks.sent[chat.key] = 0
    assert "Notifikasi terkirim" not in await chat.say("/datasaya")


async def test_erasing_ends_alerts_and_forgets_the_marks(world: AlertWorld) -> None:
    chat = world.chat()
    await _subscribed(world, chat)
    world.marks.sent[chat.key] = 2
    assert "notifikasi iuran" in await chat.say("/hapusdata")
    await chat.press("acct:erase")
    assert await world.alerts.kinds(chat.key) == frozenset()
    assert world.marks.forgotten == [chat.key] and chat.key not in world.marks.sent


async def test_unlinking_ends_alerts(world: AlertWorld) -> None:
    chat = world.chat()
    await _subscribed(world, chat)
    world.marks.sent[chat.key] = 2
    assert "notifikasi iuran berhenti" in await chat.say("/keluar")
    await chat.press("acct:logout")
    assert await world.alerts.kinds(chat.key) == frozenset()
    assert world.marks.sent[chat.key] == 2  # kept: no alert is ever sent twice


async def test_privacy_commands_work_without_alerts(bare: AlertWorld) -> None:
    chat = bare.chat()
    await chat.register()
    assert "Notifikasi" not in await chat.say("/datasaya")
    await chat.say("/hapusdata")
    assert "dihapus" in await chat.press("acct:erase")

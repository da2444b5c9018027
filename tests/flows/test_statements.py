"""Statements, the chart and the projection from the balance card, on the embedded backends
with the real document maker (PDF and PNG made in its threads): what each kind of member gets,
the hourly limit, /datasaya and /hapusdata, and that only a linked chat gets anything.

The engine's catalog is not strict here: the new texts reach the catalogs with this change."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pytest

from app.compose import build_engine, build_ports, open_database
from app.documents import DocumentsUnavailable, PooledDocumentMaker, statement_key
from app.otp_delivery import OutboxOtpSender
from balance.service import ReferenceBalanceService
from domain.gaps import ContributionRecord, Period
from flows.i18n import Catalog
from flows.ports import IssuedStatement, SessionBackend, StatementRecord
from flows.statements import statement_window
from flows.types import Reply, SayKind, SessionKey
from statements.chart import YearBar
from statements.data import StatementData
from statements.projection import Projection
from statements.signing import verify_pdf
from storage.accounts import SqlAccountStore
from storage.sessions import MemorySessionStore, redis_store_from_url
from storage.statements import SqlStatementIssueStore
from tests.conftest import delete_prefixed
from tests.flows.conftest import DEWI, SECRET, SITI, Chat, ManualClock

AGUS = {"nik": "3578031212920002", "kpj": "34567890123", "birth": "12-12-1992",
        "phone": "081398765432"}


@dataclass
class RecordingMaker:
    """The real document maker, keeping what the flow asked it to make."""

    inner: PooledDocumentMaker
    statements: list[StatementData] = field(default_factory=list)
    charts: list[tuple[tuple[YearBar, ...], Projection | None]] = field(default_factory=list)

    failing: bool = False

    async def statement(self, data: StatementData, *, locale: str,
                        issued_at: datetime) -> IssuedStatement:
        self.statements.append(data)
        if self.failing:
            raise DocumentsUnavailable("the statement could not be made")
        return await self.inner.statement(data, locale=locale, issued_at=issued_at)

    async def chart(self, bars: Sequence[YearBar], *, locale: str,
                    projection: Projection | None) -> bytes:
        self.charts.append((tuple(bars), projection))
        return await self.inner.chart(bars, locale=locale, projection=projection)


@dataclass
class Setup:
    maker: RecordingMaker
    issued: SqlStatementIssueStore
    accounts: SqlAccountStore
    clock: ManualClock
    outbox: Path
    engine_chat: Chat

    def chat(self, chat_id: str, language_code: str = "id") -> Chat:
        return Chat(self.engine_chat.engine, self.outbox, SessionKey("test", chat_id),
                    language_code)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async with setup_on(f"sqlite:///{tmp_path / 'bot.db'}", tmp_path) as built:
        yield built


@pytest.fixture
async def setup_on_each(database_url: str, tmp_path: Path) -> AsyncIterator[Setup]:
    """:func:`setup` on a SQLite file and on the real PostgreSQL."""
    async with setup_on(database_url, tmp_path) as built:
        yield built


@pytest.fixture(params=["memory", "redis"])
async def setup_on_each_store(request: pytest.FixtureRequest, tmp_path: Path,
                              unique_prefix: str) -> AsyncIterator[Setup]:
    """:func:`setup` on the in-process store and on a real Redis (the hourly counters live in
    the key-value port)."""
    if request.param == "memory":
        async with setup_on(f"sqlite:///{tmp_path / 'bot.db'}", tmp_path) as built:
            yield built
        return
    url = str(request.getfixturevalue("redis_url"))
    store = redis_store_from_url(url, prefix=unique_prefix)
    try:
        async with setup_on(f"sqlite:///{tmp_path / 'bot.db'}", tmp_path, store) as built:
            yield built
    finally:
        await store.aclose()
        await delete_prefixed(url, unique_prefix)


@asynccontextmanager
async def setup_on(url: str, tmp_path: Path,
                   store: SessionBackend | None = None) -> AsyncIterator[Setup]:
    database = await open_database(url)
    store = store if store is not None else MemorySessionStore()
    accounts = SqlAccountStore(database, SECRET)
    clock = ManualClock()
    outbox = tmp_path / "outbox.jsonl"
    catalog = Catalog()
    maker = RecordingMaker(PooledDocumentMaker(secret=SECRET, catalog=catalog,
                                                 verify_url="https://bot.example/verify"))
    issued = SqlStatementIssueStore(database, SECRET)
    ports = build_ports(kv=store, database=database, accounts=accounts,
                        balance=ReferenceBalanceService(database),
                        otp_sender=OutboxOtpSender(outbox), clock=clock, secret=SECRET,
                        documents=maker, statements=issued, development_rate=0.06)
    engine = build_engine(store, ports, catalog=catalog, strict=True)
    try:
        yield Setup(maker, issued, accounts, clock, outbox, Chat(engine, outbox))
    finally:
        maker.inner.close()
        await database.dispose()


def attached(chat: Chat, kind: SayKind) -> Reply:
    found = [r for r in chat.replies if r.kind is kind]
    assert len(found) == 1, [r.kind for r in chat.replies]
    assert found[0].attachment is not None
    return found[0]


async def card_of(chat: Chat, member: dict[str, str] = SITI) -> None:
    await chat.register(member)
    await chat.say("/saldo")
    assert {"bal:statement", "bal:chart"} <= set(chat.buttons)


async def test_a_statement_of_the_last_12_months_is_a_signed_pdf(setup: Setup) -> None:
    chat = setup.engine_chat
    await card_of(chat)
    await chat.press("bal:statement")
    assert chat.buttons[0] == "stmt:last12"
    assert {f"stmt:year:{y}" for y in range(2019, 2027)} <= set(chat.buttons)
    await chat.press("stmt:last12")
    reply = attached(chat, SayKind.DOCUMENT)
    assert reply.attachment is not None
    assert reply.attachment.mime == "application/pdf"
    assert reply.attachment.filename == "statement-2025-11-2026-10.pdf"
    verdict = verify_pdf(reply.attachment.content, statement_key(SECRET))
    assert verdict.genuine, verdict.reason
    assert verdict.code is not None and verdict.code in reply.text
    data = setup.maker.statements[-1]
    assert (data.period_label_from, data.period_label_to) == ("2025-11", "2026-10")
    assert [m.period for m in data.months][:2] == ["2025-11", "2025-12"]
    assert len(data.months) == 12
    unpaid = [m.period for m in data.months if m.paid_on is None]
    assert unpaid == ["2026-09"]  # Siti's employer did not pay September
    assert data.employer == "PT Maju Bersama" and data.segment == "PU"
    assert data.balance_total == data.employer_total + data.employee_total + data.development
    recorded = await setup.issued.lookup(verdict.code)
    assert recorded is not None
    assert (recorded.initials, recorded.kpj_masked) == ("S.R.", "*******8901")
    assert recorded.total == data.balance_total


async def test_a_year_statement_covers_that_calendar_year(setup: Setup) -> None:
    chat = setup.engine_chat
    await card_of(chat)
    await chat.press("bal:statement")
    await chat.say("2025")  # a year typed works like its button
    attached(chat, SayKind.DOCUMENT)
    data = setup.maker.statements[-1]
    assert (data.period_label_from, data.period_label_to) == ("2025-01", "2025-12")
    assert all(m.paid_on is not None for m in data.months)
    assert sum(m.employer_part for m in data.months) > 0


async def test_an_older_year_without_a_button_can_be_typed(setup: Setup) -> None:
    chat = setup.engine_chat
    await card_of(chat)
    question = await chat.press("bal:statement")
    assert "stmt:year:2017" not in chat.buttons  # eight buttons: 2019 to 2026
    assert "2016" in question and "2018" in question
    await chat.say("2017")
    attached(chat, SayKind.DOCUMENT)
    data = setup.maker.statements[-1]
    assert (data.period_label_from, data.period_label_to) == ("2017-01", "2017-12")


async def test_a_member_paying_their_own_gets_no_employer(setup: Setup) -> None:
    chat = setup.engine_chat
    await card_of(chat, AGUS)
    await chat.press("bal:statement")
    await chat.press("stmt:year:2020")
    attached(chat, SayKind.DOCUMENT)
    data = setup.maker.statements[-1]
    assert data.segment == "BPU" and data.employer == ""
    assert all(m.employer_part == 0 and m.employee_part > 0 for m in data.months)


async def test_an_inactive_members_last_12_months_end_with_the_last_contribution(
        setup: Setup) -> None:
    chat = setup.engine_chat
    await chat.register(DEWI)
    await chat.say("/saldo")
    await chat.press("kpj:0")  # the KPJ she registered with: contributions 2014-06 to 2019-12
    await chat.press("bal:statement")
    await chat.press("stmt:last12")
    attached(chat, SayKind.DOCUMENT)
    data = setup.maker.statements[-1]
    assert data.kpj == DEWI["kpj"]
    assert (data.period_label_from, data.period_label_to) == ("2019-01", "2019-12")
    assert all(m.paid_on is not None for m in data.months)


async def test_at_most_three_statements_an_hour(setup_on_each_store: Setup) -> None:
    setup = setup_on_each_store
    chat = setup.engine_chat
    await card_of(chat)
    for minute in range(3):
        await chat.say("/saldo")
        await chat.press("bal:statement")
        await chat.press("stmt:last12")
        attached(chat, SayKind.DOCUMENT)
        setup.clock.advance(60 * (minute + 1))
    await chat.say("/saldo")
    await chat.press("bal:statement")
    text = await chat.press("stmt:last12")
    assert not any(r.kind is SayKind.DOCUMENT for r in chat.replies)
    assert "3" in text and "17.00 WIB" in text.replace(":", ".")  # first at 16.00 WIB
    assert len(setup.maker.statements) == 3
    assert len(await setup.issued.for_subject(chat.key)) == 3


async def test_statements_that_failed_do_not_count_against_the_hour(setup: Setup) -> None:
    chat = setup.engine_chat
    await card_of(chat)
    setup.maker.failing = True
    for _ in range(4):
        await chat.say("/saldo")
        await chat.press("bal:statement")
        await chat.press("stmt:last12")
        assert not any(r.kind is SayKind.DOCUMENT for r in chat.replies)
    setup.maker.failing = False
    await chat.say("/saldo")
    await chat.press("bal:statement")
    await chat.press("stmt:last12")
    attached(chat, SayKind.DOCUMENT)


async def test_mydata_lists_the_statements_and_erasure_forgets_them(setup_on_each: Setup
                                                                    ) -> None:
    setup = setup_on_each
    chat = setup.engine_chat
    await card_of(chat)
    await chat.press("bal:statement")
    await chat.press("stmt:last12")
    code = (await setup.issued.for_subject(chat.key))[0].code
    assert code in await chat.say("/datasaya")
    await chat.say("/hapusdata")
    await chat.press("acct:erase")
    assert await setup.issued.for_subject(chat.key) == []
    assert await setup.issued.lookup(code) is None
    assert code not in await chat.say("/datasaya")


async def test_the_chart_and_the_projection_with_another_wage_growth(setup: Setup) -> None:
    chat = setup.engine_chat
    await card_of(chat)
    await chat.press("bal:chart")
    photo = attached(chat, SayKind.PHOTO)
    assert photo.attachment is not None and photo.attachment.mime == "image/png"
    assert photo.attachment.content.startswith(b"\x89PNG")
    bars, projection = setup.maker.charts[-1]
    assert projection is None
    assert [b.year for b in bars] == list(range(2016, 2027))
    assert [b.missing_months for b in bars if b.missing_months] == [1]  # 2026-09
    assert bars[-1].employer > bars[0].employer  # the balance year by year, cumulative
    assert "chart:project" in chat.buttons
    await chat.press("chart:project")
    await chat.say("31-02-1990")  # not a date: asked again
    assert not setup.maker.charts[-1][1]
    await chat.say(SITI["birth"])
    attached(chat, SayKind.PHOTO)
    first = setup.maker.charts[-1][1]
    assert first is not None
    assert (first.age_56_year, first.rate, first.wage_growth) == (2046, 0.06, 0.03)
    assert first.monthly_contribution > 0
    await chat.press("chart:g:8")
    faster = setup.maker.charts[-1][1]
    assert faster is not None and faster.wage_growth == 0.08 and faster.at_56 > first.at_56
    assert "chart:g:0" in chat.buttons


async def test_a_chat_unlinked_since_the_card_gets_nothing(setup: Setup) -> None:
    chat = setup.engine_chat
    await card_of(chat)
    await chat.press("bal:statement")
    await setup.accounts.unlink_all(chat.key, setup.clock.now())
    await chat.press("stmt:last12")
    assert not any(r.kind is SayKind.DOCUMENT for r in chat.replies)
    assert "go:register" in chat.buttons
    assert setup.maker.statements == []


async def test_no_personal_data_in_the_project_logs(setup: Setup, caplog: pytest.LogCaptureFixture
                                            ) -> None:
    chat = setup.engine_chat
    with caplog.at_level(logging.DEBUG):
        await card_of(chat)
        await chat.press("bal:statement")
        await chat.press("stmt:last12")
        await chat.say("/saldo")
        await chat.press("bal:chart")
        await chat.press("chart:project")
        await chat.say(SITI["birth"])
    own = {"app", "balance", "channels", "flows", "statements", "storage", "support"}
    records = [r for r in caplog.records if r.name.split(".")[0] in own]
    assert records, "the engine logs each handled update"
    logged = "\n".join(f"{r.getMessage()} {r.args!r}" for r in records)
    for secret in (SITI["kpj"], SITI["nik"], "Siti", "Rahayu", SITI["birth"], "1990-01-05"):
        assert secret not in logged


async def test_without_documents_the_card_offers_neither(tmp_path: Path) -> None:
    database = await open_database(f"sqlite:///{tmp_path / 'bot.db'}")
    store = MemorySessionStore()
    ports = build_ports(kv=store, database=database, secret=SECRET, clock=ManualClock(),
                        otp_sender=OutboxOtpSender(tmp_path / "outbox.jsonl"))
    chat = Chat(build_engine(store, ports, catalog=Catalog(), strict=True),
                tmp_path / "outbox.jsonl")
    try:
        await chat.register()
        await chat.say("/saldo")
        assert "bal:refresh" in chat.buttons
        assert not {"bal:statement", "bal:chart"} & set(chat.buttons)
        assert ports.statements is None
    finally:
        await database.dispose()


def test_a_pdf_of_the_flow_is_not_kept_in_the_records() -> None:
    """What is recorded of a statement is its summary only (no bytes, no months)."""
    from flows.ports import StatementRecord

    assert set(StatementRecord.__dataclass_fields__) == {
        "code", "initials", "kpj_masked", "period_from", "period_to", "total", "issued_at"}



async def test_a_document_that_cannot_be_made_is_a_polite_apology(setup: Setup) -> None:
    chat = setup.engine_chat
    await card_of(chat)
    await chat.press("bal:statement")
    setup.maker.inner.close()  # the pools are gone, as when the process stops
    text = await chat.press("stmt:last12")
    assert not any(r.kind is SayKind.DOCUMENT for r in chat.replies)
    assert "coba lagi" in text.lower()
    assert await setup.issued.for_subject(chat.key) == []


@pytest.mark.parametrize(("day", "paid_to", "end"), [
    (date(2026, 12, 4), "2026-10", "2026-10"),   # November not owed until 15 December
    (date(2026, 12, 15), "2026-10", "2026-10"),  # the due date itself: still not late
    (date(2026, 12, 16), "2026-10", "2026-11"),  # late from the 16th: listed as not paid
    (date(2026, 12, 4), "2026-11", "2026-11"),   # paid before its due date: listed
])
def test_the_last_12_months_end_with_the_last_month_owed(day: date, paid_to: str,
                                                          end: str) -> None:
    periods = [f"2025-{m:02d}" for m in range(1, 13)] + [
        f"2026-{m:02d}" for m in range(1, int(paid_to[5:]) + 1)]
    record = ContributionRecord.of(periods, "PU", "active")
    first, last = statement_window(record, day, None)
    assert str(last) == end
    assert str(first) == str(Period.parse(end).shifted(-11))


@pytest.mark.parametrize(("day", "reached"), [
    (date(2026, 11, 30), False),  # November 2026: contributions until November still count
    (date(2026, 12, 1), True),    # the birthday month: nothing left to project
    (date(2027, 3, 1), True),
])
def test_the_claim_age_is_reached_in_the_56th_birthday_month(day: date, reached: bool) -> None:
    from flows.statements import _reached_claim_age

    assert _reached_claim_age(date(1970, 12, 31), day) is reached


async def test_a_code_that_names_another_statement_is_issued_again(
        setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    chat = setup.engine_chat
    await card_of(chat)
    store, real, refused = setup.issued, setup.issued.record, []

    async def first_code_taken(key: SessionKey, issued: StatementRecord) -> bool:
        if not refused:
            refused.append(issued.code)
            return False
        return await real(key, issued)

    monkeypatch.setattr(store, "record", first_code_taken)
    await chat.say("/saldo")
    await chat.press("bal:statement")
    await chat.press("stmt:last12")
    document = attached(chat, SayKind.DOCUMENT)
    [kept] = await real.__self__.for_subject(chat.key)
    assert kept.code != refused[0] and kept.code in document.text
    assert len(setup.maker.statements) == 2

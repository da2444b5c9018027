"""After a handoff full of personal data and /hapusdata, nothing raw is left anywhere.

A member at the code step asks for an agent and writes their NIK, phone number (two forms),
KPJ, email and the pending code; the agent answers quoting the NIK and writes a note. The desk
must only ever see masked forms. After /hapusdata every file under DATA_DIR (bytes) and every
text column of every table is searched for the raw values: nothing is found. Run on a SQLite
file under a temporary DATA_DIR and on the real PostgreSQL.

Two stand-ins for systems outside the bot are left out of the search, on purpose:
- the reference balance service's ``member`` table (and its ``contribution`` table) hold the
  demo members' NIK and phone number because they play BPJS's own database. With SQLite they
  live in their own file outside DATA_DIR; with PostgreSQL these two tables, and only these,
  are skipped;
- the OTP outbox file plays the SMS gateway (it holds the code and the number it was sent to),
  so it is written outside DATA_DIR.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from app.compose import build_engine, build_ports
from app.otp_delivery import OutboxOtpSender
from balance.service import ReferenceBalanceService, seed_demo_members
from channels.console.desk import ConsoleDesk
from storage.accounts import SqlAccountStore
from storage.db import create_engine, migrate
from storage.sessions import MemorySessionStore
from storage.tickets import SqlTicketStore
from support.desk import DeskService
from tests.flows.conftest import ALWAYS, SECRET, SITI, ManualClock, RecordingOutbox, World

# The balance service's own records (BPJS's database in production): not the bot's data.
STAND_IN_TABLES = frozenset({"member", "contribution", "contribution_change"})
NIK, PHONE, PHONE_E164, KPJ, EMAIL = (SITI["nik"], SITI["phone"], "+6281234567890",
                                      SITI["kpj"], "siti@example.com")
MASKED = ("3171********0001", "0812****7890", "123*****901", "s***@example.com", "******")


@pytest.fixture(params=["sqlite", "postgresql"])
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, Path]:
    """The bot's database, the balance service's, and DATA_DIR."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if request.param == "sqlite":
        return (f"sqlite:///{data_dir / 'bot.db'}",
                f"sqlite:///{tmp_path / 'bpjs' / 'members.db'}", data_dir)
    url: str = request.getfixturevalue("postgres_url")
    return url, url, data_dir


@pytest.fixture
async def leak_world(urls: tuple[str, str, Path],
                     tmp_path: Path) -> AsyncIterator[tuple[World, Path, AsyncEngine]]:
    url, members_url, data_dir = urls
    database = create_engine(url)
    await migrate(database)
    members = database if members_url == url else create_engine(members_url)
    if members is not database:
        await migrate(members)
    await seed_demo_members(members)
    store, clock = MemorySessionStore(), ManualClock()
    accounts, tickets = SqlAccountStore(database, SECRET), SqlTicketStore(database)
    balance = ReferenceBalanceService(members)
    sms_gateway = tmp_path / "sms" / "outbox.jsonl"
    desk_lines: list[str] = []
    ports = build_ports(kv=store, accounts=accounts, balance=balance,
                        otp_sender=OutboxOtpSender(sms_gateway), clock=clock, secret=SECRET,
                        tickets=tickets, desk=ConsoleDesk(desk_lines.append), hours=ALWAYS)
    engine = build_engine(store, ports, strict=True)
    delivered = RecordingOutbox([])
    desk = DeskService(engine=engine, tickets=tickets, outbox=delivered, clock=clock)
    yield (World(engine, store, accounts, balance, clock, sms_gateway, tickets, desk,
                 desk_lines, delivered.delivered, delivered), data_dir, database)
    await database.dispose()
    if members is not database:
        await members.dispose()


async def _text_in_tables(database: AsyncEngine) -> dict[str, str]:
    """Every table's text values, cast in the database, keyed by table name."""
    async with database.connect() as conn:
        names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        found: dict[str, str] = {}
        for name in sorted(set(names) - STAND_IN_TABLES):
            rows = (await conn.execute(sa.text(f'SELECT * FROM "{name}"'))).all()  # noqa: S608
            found[name] = "\n".join(str(value) for row in rows for value in row)
    return found


def _files_holding(data_dir: Path, raw: list[str]) -> list[tuple[str, str]]:
    needles = [value.encode() for value in raw]
    return [(str(path.relative_to(data_dir)), needle.decode())
            for path in sorted(data_dir.rglob("*")) if path.is_file()
            for needle in needles if needle in path.read_bytes()]


async def test_nothing_raw_is_left_after_a_handoff_and_erasure(
        leak_world: tuple[World, Path, AsyncEngine]) -> None:
    world, data_dir, database = leak_world
    chat = world.chat("9009")
    await chat.reach_code_step()
    code = chat.codes()[-1]
    await chat.say("/petugas")
    await chat.press("ho:yes")
    ticket = await world.tickets.active_for(chat.key)
    assert ticket is not None
    await world.desk.claim(ticket.id, "Rina")
    await chat.say(f"NIK saya {NIK} dan HP {PHONE}, KPJ {KPJ}")
    assert chat.deleted, "the member is told the message with the NIK was deleted"
    await chat.say(f"nomor lain {PHONE_E164}, email {EMAIL}")
    await chat.say(f"kodenya {code} belum bisa dipakai")
    assert chat.deleted, "the member is told the message with the code was deleted"
    await world.desk.reply(ticket.id, "Rina", f"NIK {NIK} dan email {EMAIL} sudah kami cek.")
    await world.desk.note(ticket.id, "Rina", f"HP {PHONE}, KPJ {KPJ}")
    raw = [NIK, PHONE, PHONE_E164, PHONE_E164.removeprefix("+"), KPJ, EMAIL, code]

    desk = "\n".join(world.desk_lines)
    assert [value for value in raw if value in desk] == [], desk
    assert all(masked in desk for masked in MASKED), desk
    before = await _text_in_tables(database)
    assert "3171********0001" in before["ticket_line"], "the transcript holds masked forms"

    await chat.say("/hapusdata")
    await chat.press("acct:erase")
    assert "telah dihapus" in chat.text

    tables = await _text_in_tables(database)
    assert {"ticket", "ticket_line", "chat_link", "consent_record", "audit_event"} <= set(tables)
    assert [(name, value) for name, text in tables.items() for value in raw
            if value in text] == []
    assert chat.key.chat_id not in tables["ticket"], "no ticket row names the chat"
    assert _files_holding(data_dir, [*raw, *MASKED[:3]]) == []

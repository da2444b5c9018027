"""A whole engine on the embedded backends (in-process store, SQLite, reference balance
service, OTP outbox file) driven like a member would: no fakes of the conversation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from app.compose import build_engine, build_ports, open_database
from app.otp_delivery import OutboxOtpSender
from balance.service import ReferenceBalanceService
from channels.console.desk import ConsoleDesk
from flows.engine import Engine
from flows.hours import BusinessHours
from flows.ports import SessionBackend
from flows.types import Event, Reply, SayKind, SessionKey
from storage.accounts import SqlAccountStore
from storage.sessions import MemorySessionStore
from storage.tickets import SqlTicketStore
from support.desk import DeskService

SECRET = b"test-secret"
SITI = {"nik": "3171014501900001", "kpj": "12345678901", "birth": "05-01-1990",
        "phone": "081234567890"}
DEWI = {"nik": "5171046303880004", "kpj": "45678901234", "birth": "23-03-1988",
        "phone": "087711223344"}
ALWAYS = BusinessHours.parse(days="mon-sun", hours="00:00-23:59")  # agents never away


@dataclass
class ManualClock:
    """A clock the test moves by hand."""

    at: datetime = field(default_factory=lambda: datetime(2026, 11, 20, 9, 0, tzinfo=UTC))

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@dataclass
class RecordingOutbox:
    """Delivers agent-side replies to a list (the member's screen); can play a blocked bot."""

    delivered: list[Reply]
    reachable: bool = True

    async def deliver(self, key: SessionKey, replies: list[Reply]) -> bool:
        if not self.reachable:
            return False
        self.delivered.extend(replies)
        return True

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.delivered)


@dataclass
class Chat:
    """One member's chat with the engine."""

    engine: Engine
    outbox: Path
    key: SessionKey = field(default_factory=lambda: SessionKey("test", "1001"))
    language_code: str = "id"
    replies: list[Reply] = field(default_factory=list)

    async def send(self, event: Event) -> list[Reply]:
        self.replies = await self.engine.handle(self.key, event)
        return self.replies

    async def say(self, text: str) -> str:
        await self.send(Event.message(text, language_code=self.language_code))
        return self.text

    async def press(self, data: str) -> str:
        await self.send(Event.button(data, language_code=self.language_code))
        return self.text

    async def share(self, phone: str, *, own: bool = True) -> str:
        await self.send(Event.contact(phone, own=own, language_code=self.language_code))
        return self.text

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.replies)

    @property
    def buttons(self) -> list[str]:
        return [b.data for r in self.replies for row in r.buttons for b in row]

    @property
    def deleted(self) -> bool:
        return any(r.kind is SayKind.DELETE_MEMBER_MESSAGE for r in self.replies)

    def codes(self) -> list[str]:
        if not self.outbox.exists():
            return []
        lines = [json.loads(line) for line in self.outbox.read_text().splitlines()]
        return [line["code"] for line in lines if "code" in line]  # not the lock notices

    async def reach_phone_step(self, member: dict[str, str] = SITI) -> str:
        await self.say("/daftar")
        if "reg:agree" in self.buttons:
            await self.press("reg:agree")
        for answer in (member["nik"], member["kpj"], member["birth"]):
            await self.say(answer)
        return self.text

    async def reach_code_step(self, member: dict[str, str] = SITI) -> str:
        await self.reach_phone_step(member)
        return await self.share(member["phone"])

    async def register(self, member: dict[str, str] = SITI) -> str:
        await self.reach_code_step(member)
        return await self.say(self.codes()[-1])


@dataclass
class World:
    """The engine's parts, for tests that look behind the conversation."""

    engine: Engine
    store: MemorySessionStore
    accounts: SqlAccountStore
    balance: ReferenceBalanceService
    clock: ManualClock
    outbox: Path
    tickets: SqlTicketStore
    desk: DeskService
    desk_lines: list[str]
    delivered: list[Reply]
    member_outbox: RecordingOutbox

    def chat(self, chat_id: str = "1001", language_code: str = "id") -> Chat:
        return Chat(self.engine, self.outbox, SessionKey("test", chat_id), language_code)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with world_on(tmp_path, MemorySessionStore()) as built:
        yield built


@asynccontextmanager
async def world_on(tmp_path: Path, store: SessionBackend) -> AsyncIterator[World]:
    """The world of the flow tests on ``store`` (the property tests also run it on Redis)."""
    database = await open_database(f"sqlite:///{tmp_path / 'bot.db'}")
    accounts = SqlAccountStore(database, SECRET)
    clock = ManualClock()
    outbox = tmp_path / "outbox.jsonl"
    balance = ReferenceBalanceService(database)
    tickets = SqlTicketStore(database)
    desk_lines: list[str] = []
    ports = build_ports(kv=store, database=database, accounts=accounts, balance=balance,
                        otp_sender=OutboxOtpSender(outbox), clock=clock, secret=SECRET,
                        tickets=tickets, desk=ConsoleDesk(desk_lines.append), hours=ALWAYS)
    engine = build_engine(store, ports, strict=True)
    delivered: list[Reply] = []
    outbox_to_member = RecordingOutbox(delivered)
    desk = DeskService(engine=engine, tickets=tickets, outbox=outbox_to_member, clock=clock)
    # World names the in-process store's type; tests on Redis use only the SessionStore half.
    try:
        yield World(engine, cast(MemorySessionStore, store), accounts, balance, clock, outbox,
                    tickets, desk, desk_lines, delivered, outbox_to_member)
    finally:
        await database.dispose()


@pytest.fixture
def chat(world: World) -> Chat:
    return world.chat()

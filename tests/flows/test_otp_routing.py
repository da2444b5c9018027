"""Where a code goes: only the contacts on file, in the order of ``OTP_CHANNELS``; a way that
fails falls through to the next; "Code didn't arrive?" sends a new code by the next way; when
nothing can be sent the member hears the alternatives and the step is kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.compose import build_engine, build_ports, open_database
from flows.ports import OtpDeliveryFailed, OtpDestination
from flows.types import SessionKey
from storage.accounts import SqlAccountStore
from storage.sessions import MemorySessionStore
from tests.flows.conftest import SECRET, SITI, Chat, ManualClock

AWAIT = "otp:await_code"


@dataclass
class Ways:
    """A sender of every kind that records what went where; ``down`` kinds fail."""

    down: set[str] = field(default_factory=set)
    sent: list[tuple[str, str, str]] = field(default_factory=list)  # kind, address, code
    tried: list[str] = field(default_factory=list)
    warned: list[OtpDestination] = field(default_factory=list)

    async def send(self, to: OtpDestination, code: str, locale: str) -> None:
        self.tried.append(to.kind)
        if to.kind in self.down:
            raise OtpDeliveryFailed(f"{to.kind} is down", reason="server")
        self.sent.append((to.kind, to.address, code))

    async def warn(self, to: OtpDestination) -> None:
        if to.kind in self.down:
            raise OtpDeliveryFailed(f"{to.kind} is down", reason="server")
        self.warned.append(to)


@dataclass
class Setup:
    chat: Chat
    ways: Ways
    clock: ManualClock
    engine_store: MemorySessionStore

    async def code_step(self, member: dict[str, str] = SITI, typed: str = "") -> str:
        await self.chat.reach_phone_step(member)
        return await self.chat.say(typed or member["phone"])

    def last_code(self) -> str:
        return self.ways.sent[-1][2]

    async def state(self) -> str:
        async with self.engine_store.chat(self.chat.key) as slot:
            assert slot.session is not None
            return slot.session.state


@pytest.fixture
def channels() -> tuple[str, ...]:
    return ("whatsapp", "sms", "email")


@pytest.fixture
async def setup(tmp_path: Path, channels: tuple[str, ...]) -> AsyncIterator[Setup]:
    database = await open_database(f"sqlite:///{tmp_path / 'bot.db'}")
    store, clock, ways = MemorySessionStore(), ManualClock(), Ways()
    ports = build_ports(kv=store, database=database,
                        accounts=SqlAccountStore(database, SECRET), otp_sender=ways,
                        clock=clock, secret=SECRET, otp_channels=channels)
    engine = build_engine(store, ports, strict=True)
    chat = Chat(engine, tmp_path / "unused.jsonl", SessionKey("test", "2001"), "id")
    try:
        yield Setup(chat, ways, clock, store)
    finally:
        await database.dispose()


async def test_the_code_goes_by_the_first_way_and_the_member_is_told_where(
        setup: Setup) -> None:
    answer = await setup.code_step()
    assert setup.ways.sent[0][:2] == ("whatsapp", "+6281234567890")
    assert "WhatsApp ke 0812****7890" in answer
    assert "otp:resend" in setup.chat.buttons
    assert "Berhasil" in await setup.chat.say(setup.last_code()) or "berhasil" in setup.chat.text


async def test_a_way_that_fails_falls_through_to_the_next(setup: Setup) -> None:
    setup.ways.down = {"whatsapp"}
    answer = await setup.code_step()
    assert setup.ways.tried == ["whatsapp", "sms"]
    assert setup.ways.sent[0][0] == "sms" and "SMS ke 0812****7890" in answer


async def test_code_didnt_arrive_sends_a_new_code_by_the_next_way(setup: Setup) -> None:
    await setup.code_step()
    first = setup.last_code()
    setup.clock.advance(61)
    answer = await setup.chat.press("otp:resend")
    assert [kind for kind, _, _ in setup.ways.sent] == ["whatsapp", "sms"]
    assert "SMS ke 0812****7890" in answer and setup.last_code() != first
    setup.clock.advance(61)
    answer = await setup.chat.press("otp:resend")
    assert setup.ways.sent[-1][:2] == ("email", "siti@example.com")
    assert "email ke s***@example.com" in answer
    assert "berhasil" in (await setup.chat.say(setup.last_code())).lower()


async def test_code_didnt_arrive_still_waits_a_minute(setup: Setup) -> None:
    await setup.code_step()
    setup.clock.advance(20)
    answer = await setup.chat.press("otp:resend")
    assert len(setup.ways.sent) == 1  # the existing limit holds: 60 s between codes
    assert "40 detik" in answer


async def test_when_nothing_can_be_sent_the_member_hears_the_alternatives(
        setup: Setup) -> None:
    setup.ways.down = {"whatsapp", "sms", "email"}
    answer = await setup.code_step()
    assert setup.ways.tried == ["whatsapp", "sms", "email"] and setup.ways.sent == []
    assert "JMO" in answer and "175" in answer
    assert await setup.state() == AWAIT  # the step is kept
    setup.ways.down = set()
    setup.clock.advance(61)
    await setup.chat.press("otp:resend")
    assert setup.ways.sent[0][0] == "whatsapp"


async def test_the_code_never_goes_to_a_number_the_member_typed(setup: Setup) -> None:
    answer = await setup.code_step(typed="081299998888")
    assert {address for _, address, _ in setup.ways.sent} == {"+6281234567890"}
    assert "berbeda" in answer  # told the code goes to the contact on file


@pytest.mark.parametrize("channels", [("email", "sms")])
async def test_otp_channels_sets_the_order(setup: Setup) -> None:
    answer = await setup.code_step()
    assert setup.ways.sent[0][:2] == ("email", "siti@example.com")
    assert "email ke s***@example.com" in answer


async def test_the_lock_notice_goes_by_the_first_way_that_sends_notices(
        setup: Setup) -> None:
    setup.ways.down = {"whatsapp"}  # authentication templates carry no notices
    await setup.code_step()
    for wrong in ("000000", "111111", "222222", "333333", "444444"):
        if wrong != setup.last_code():
            await setup.chat.say(wrong)
    assert [w.kind for w in setup.ways.warned] == ["sms"]


async def test_a_session_saved_with_one_destination_still_works(setup: Setup) -> None:
    await setup.code_step()
    async with setup.engine_store.chat(setup.chat.key) as slot:  # as sessions were saved
        assert slot.session is not None
        data = {"kpj": SITI["kpj"], "dest_kind": "sms", "dest": "+6281234567890"}
        slot.session = type(slot.session)(slot.session.state, slot.session.locale, data,
                                          slot.session.updated_at)
    setup.clock.advance(61)
    await setup.chat.press("otp:resend")
    assert setup.ways.sent[-1][:2] == ("sms", "+6281234567890")

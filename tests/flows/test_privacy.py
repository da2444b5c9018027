"""Personal data stays out of logs and the audit table; only a verified chat gets linked."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date

import pytest
import sqlalchemy as sa

from app.compose import build_ports
from app.logsetup import RedactingFormatter
from flows.account import ERASED_NOTICE
from flows.engine import Engine
from flows.i18n import Catalog
from flows.ports import IdentityMatch, TicketStatus
from flows.types import SessionKey
from storage.accounts import pseudonym
from tests.flows.conftest import SECRET, SITI, Chat, World

BUDI = {"nik": "3273021708850003", "kpj": "23456789012", "birth": "17-08-1985",
        "phone": "085612345678"}
# WhatsApp chat ids are phone numbers: the audit log must never hold one.
PHONE_LIKE_CHAT_ID = "6281377778888"
PROJECT_LOGGERS = ("flows", "storage", "bot", "balance", "run_bot")


def _secrets(member: dict[str, str]) -> set[str]:
    national = member["phone"].removeprefix("0")
    day, month, year = member["birth"].split("-")
    return {member["nik"], member["kpj"], member["phone"], "+62" + national, "62" + national,
            member["birth"], f"{year}-{month}-{day}"}


def _leaks(texts: Iterable[str], secrets: set[str]) -> list[tuple[str, str]]:
    return [(secret, text[:200]) for text in texts for secret in secrets if secret in text]


def _raw_texts(record: logging.LogRecord) -> list[str]:
    return [record.getMessage(), repr(record.args), str(record.msg), record.exc_text or ""]


async def _wrong_code_then_lock(chat: Chat) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    for answer in (BUDI["nik"], BUDI["kpj"], BUDI["birth"]):
        await chat.say(answer)
    await chat.share("+62 856-1234-5678")
    right = chat.codes()[-1]
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(5):
        await chat.say(wrong)
    assert "dikunci" in chat.text


async def _mismatch(chat: Chat) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    for answer in (SITI["nik"], BUDI["kpj"], SITI["birth"]):
        await chat.say(answer)
    assert "tidak cocok" in chat.text


async def _whole_life(world: World) -> tuple[list[str], list[Chat]]:
    """Register, check, log out, register again, erase; plus a locked and a mismatched try."""
    siti = world.chat(PHONE_LIKE_CHAT_ID)
    assert "123*****901" in await siti.register()
    await siti.say(f"SALDO {SITI['kpj']}")
    await siti.say("/keluar")
    await siti.press("acct:logout")
    world.clock.advance(61)
    await siti.say(
        f"DAFTAR SALDO#{SITI['nik']}#{SITI['birth']}#{SITI['kpj']}#siti@example.com")
    await siti.share(SITI["phone"])
    await siti.say(" ".join(siti.codes()[-1]))  # a code typed with spaces
    await siti.say("/hapusdata")
    await siti.press("acct:erase")
    # The mismatch comes first: once Budi's membership is locked, its KPJ is refused earlier.
    stranger = world.chat("3003")
    await _mismatch(stranger)
    budi = world.chat("2002")
    await _wrong_code_then_lock(budi)
    return [*siti.codes(), *budi.codes()], [siti, budi, stranger]


async def test_no_identifier_or_code_reaches_a_log_record(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    codes, _ = await _whole_life(world)
    assert len(codes) >= 3 and caplog.records
    secrets = _secrets(SITI) | _secrets(BUDI) | set(codes)
    own = [r for r in caplog.records if r.name.split(".")[0] in PROJECT_LOGGERS]
    assert own, "the engine logs each handled update"
    assert _leaks((t for r in own for t in _raw_texts(r)), secrets) == []
    formatter = RedactingFormatter("%(name)s %(levelname)s %(message)s")
    # Every record, third-party debug output included, is clean once formatted.
    assert _leaks((formatter.format(r) for r in caplog.records), secrets) == []


class _LeakyBalance:
    """A balance client whose error message carries the NIK it was given."""

    async def verify_identity(self, nik: str, kpj: str, birth_date: date) -> IdentityMatch | None:
        raise RuntimeError(f"lookup failed for nik={nik} kpj={kpj} born {birth_date}")


async def test_a_traceback_with_a_nik_is_redacted_when_formatted(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    ports = world.engine._ports  # noqa: SLF001 - rebuild with one faulty port
    engine = Engine(sessions=world.store, catalog=Catalog(strict=True),
                    ports=build_ports(kv=ports.kv, accounts=ports.accounts,
                                      balance=_LeakyBalance(), otp_sender=ports.otp_sender,
                                      clock=ports.clock, secret=ports.secret))
    chat = Chat(engine, world.outbox, SessionKey("test", "4004"))
    caplog.set_level(logging.DEBUG)
    await chat.say("/daftar")
    await chat.press("reg:agree")
    await chat.say(SITI["nik"])
    await chat.say(SITI["kpj"])
    assert "Traceback" not in await chat.say(SITI["birth"])
    assert "kesalahan" in chat.text or "coba lagi" in chat.text
    failed = [r for r in caplog.records if r.exc_info and r.name == "flows.engine"]
    assert failed, "the unexpected fault is logged with its traceback"
    assert SITI["nik"] not in failed[0].getMessage(), "the engine's own message has no NIK"
    formatter = RedactingFormatter("%(message)s")
    text = formatter.format(failed[0])
    assert "RuntimeError" in text and "Traceback" in text
    assert _leaks([text], _secrets(SITI)) == []


async def test_audit_rows_hold_no_chat_id_identifier_or_code(world: World) -> None:
    codes, chats = await _whole_life(world)
    query = sa.text("SELECT subject, action, detail FROM audit_event ORDER BY id")
    async with world.accounts._engine.connect() as conn:  # noqa: SLF001 - look behind the port
        rows = [tuple(str(v) for v in row) for row in (await conn.execute(query)).all()]
    actions = [action for _, action, _ in rows]
    for expected in ("consent_given", "otp_sent", "linked", "unlinked", "erased",
                     "otp_locked", "identity_mismatch"):
        assert expected in actions, (expected, actions)
    subjects = {subject for subject, _, _ in rows}
    assert subjects == {pseudonym(chat.key, SECRET) for chat in chats}
    forbidden = (_secrets(SITI) | _secrets(BUDI) | set(codes)
                 | {PHONE_LIKE_CHAT_ID, "+" + PHONE_LIKE_CHAT_ID, "siti@example.com"})
    assert _leaks((value for row in rows for value in row), forbidden) == []


async def test_a_chat_stopped_at_the_code_is_not_linked(world: World) -> None:
    chat = world.chat("5005")
    await chat.say("/daftar")
    await chat.press("reg:agree")
    for answer in (SITI["nik"], SITI["kpj"], SITI["birth"]):
        await chat.say(answer)
    assert "0812****7890" in await chat.share(SITI["phone"])
    assert chat.codes(), "a code was sent"
    assert await world.accounts.linked_kpjs(chat.key) == []
    text = await chat.say("/saldo")
    assert "123*****901" not in text and "go:register" in chat.buttons
    world.clock.advance(31 * 60)  # the member walked away from the code step
    assert "123*****901" not in await chat.say("riwayat iuran")
    assert "go:register" in chat.buttons
    assert await world.accounts.linked_kpjs(chat.key) == []


async def test_a_code_from_another_chat_links_only_the_chat_that_asked(world: World) -> None:
    asker = world.chat("6006")
    await asker.say("/daftar")
    await asker.press("reg:agree")
    for answer in (SITI["nik"], SITI["kpj"], SITI["birth"]):
        await asker.say(answer)
    await asker.share(SITI["phone"])
    intruder = world.chat("7007")
    assert "123*****901" not in await intruder.say(asker.codes()[-1])
    assert await world.accounts.linked_kpjs(intruder.key) == []
    assert "123*****901" in await asker.say(asker.codes()[-1])
    assert await world.accounts.linked_kpjs(asker.key) == [SITI["kpj"]]


async def test_erasure_mid_handoff_forgets_the_tickets_and_tells_the_desk(world: World) -> None:
    chat = world.chat("8008")
    await chat.say("/petugas")
    await chat.press("ho:yes")
    earlier = await world.tickets.active_for(chat.key)
    assert earlier is not None
    await chat.say("saldo saya belum masuk, NIK 3171014501900001")
    await world.desk.reply(earlier.id, "Rina", "Baik, kami periksa.")
    await world.desk.close(earlier.id, "Rina", "dijelaskan")
    await chat.press("rate:5")
    await chat.say("/petugas")
    await chat.press("ho:yes")
    ticket = await world.tickets.active_for(chat.key)
    assert ticket is not None and ticket.id != earlier.id
    await chat.say("satu lagi: HP saya 081234567890")
    assert "ho:" not in " ".join(chat.buttons)
    await chat.say("/hapusdata")
    assert "acct:erase" in chat.buttons, "not relayed: the erasure is asked to confirm"
    await chat.press("acct:erase")
    assert "telah dihapus" in chat.text
    for number in (earlier.id, ticket.id):
        assert await world.tickets.last_lines(number) == []
        erased = await world.tickets.get(number)
        assert erased is not None and erased.status is TicketStatus.CLOSED
        assert erased.key.chat_id == ""
    assert await world.tickets.active_for(chat.key) is None
    assert world.desk_lines[-1] == f"[desk] #{ticket.id} {ERASED_NOTICE}"
    assert sum(ERASED_NOTICE in line for line in world.desk_lines) == 1, "the open one only"
    assert await chat.say("halo") != "", "the bot answers again; nothing is relayed"
    assert not world.desk_lines[-1].endswith("member: halo")

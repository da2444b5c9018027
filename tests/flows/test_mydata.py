"""/datasaya (/mydata): the member's right of access in chat, through the whole engine."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from app.compose import build_ports
from flows.consent import CONSENT_VERSION
from flows.engine import Engine
from flows.i18n import Catalog
from flows.ports import BalanceServiceUnavailable
from tests.flows.conftest import DEWI, SITI, Chat, World

PERSONAL = (SITI["kpj"], SITI["nik"], SITI["phone"], "Siti", "Rahayu", DEWI["kpj"], "Dewi",
            "56789012345")


def shown(chat: Chat) -> str:
    """Everything on the member's screen: texts, button labels and button data."""
    return "\n".join([chat.text, *(f"{b.label} {b.data}" for r in chat.replies
                                   for row in r.buttons for b in row)])


def assert_nothing_unmasked(chat: Chat) -> None:
    screen = shown(chat)
    assert not [value for value in PERSONAL if value in screen], screen


async def test_an_unlinked_chat_hears_plainly_that_nothing_is_kept(world: World) -> None:
    chat = world.chat("new")
    text = await chat.say("/datasaya")
    assert "tidak menyimpan data pribadi apa pun" in text
    assert "Bahasa Indonesia" in text and "go:delete_data" not in chat.buttons
    english = world.chat("new-en", "en")
    text = await english.say("/mydata")
    assert "the bot holds no personal data about it" in text and "English" in text


async def test_a_linked_chat_sees_its_data_masked(chat: Chat) -> None:
    await chat.register()
    text = await chat.say("/datasaya")
    assert "Berikut data yang disimpan bot tentang chat ini" in text
    assert "Bahasa: Bahasa Indonesia" in text
    assert "• KPJ 123*****901 · S*** R*****" in text
    assert (f"Persetujuan: diberikan pada 20 November 2026 (versi pemberitahuan "
            f"{CONSENT_VERSION})") in text
    assert "Permintaan bantuan yang masih aktif: tidak ada" in text
    assert {"go:logout", "go:delete_data", "go:menu"} <= set(chat.buttons)
    assert_nothing_unmasked(chat)


async def test_in_english_and_from_free_text(world: World) -> None:
    chat = world.chat("en", "en")
    await chat.register()
    text = await chat.say("what data do you keep")
    assert "This is what the bot holds about this chat" in text
    assert "Language: English" in text and "• KPJ 123*****901 · S*** R*****" in text
    assert "Consent: given on" in text and CONSENT_VERSION in text
    assert "Open request for help: none" in text
    assert_nothing_unmasked(chat)
    id_chat = world.chat("id-free")
    await id_chat.register(DEWI)
    assert "Berikut data yang disimpan" in await id_chat.say("data apa yang disimpan")


async def test_an_open_request_is_shown(chat: Chat, world: World) -> None:
    await chat.register()
    ticket = await world.tickets.open(chat.key, "id", "balance question",
                                      world.clock.now() - timedelta(days=1))
    text = await chat.say("/datasaya")
    assert f"Permintaan bantuan #{ticket.id}: menunggu petugas, diajukan 19 November 2026" \
        in text
    await world.tickets.claim(ticket.id, "Rina", world.clock.now())
    text = await chat.say("/datasaya")
    assert f"#{ticket.id}: sedang ditangani petugas" in text


async def test_a_chat_linked_to_two_people_lists_both_masked(chat: Chat, world: World) -> None:
    await chat.register()
    await world.accounts.link(chat.key, DEWI["kpj"], world.clock.now() + timedelta(minutes=1))
    text = await chat.say("/datasaya")
    assert "• KPJ 123*****901 · S*** R*****\n• KPJ 456*****234 · D*** L******" in text
    assert "567*****345" not in text, "Dewi's other KPJ is not linked here: not held"
    assert_nothing_unmasked(chat)


async def test_the_buttons_unlink_and_erase(chat: Chat) -> None:
    await chat.register()
    await chat.say("/datasaya")
    await chat.press("go:logout")
    await chat.press("acct:logout")
    text = await chat.say("/datasaya")
    assert "tidak menyimpan data pribadi apa pun" in text, "link and consent are gone"
    await chat.register()
    await chat.say("/datasaya")
    assert "Hapus data Anda?" in await chat.press("go:delete_data")
    await chat.press("acct:erase")
    assert "tidak menyimpan data pribadi apa pun" in await chat.say("/datasaya")


async def test_consent_without_a_link_is_shown(chat: Chat) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    await chat.say("/batal")
    text = await chat.say("/datasaya")
    assert "Kepesertaan yang terhubung: tidak ada" in text
    assert "Persetujuan: diberikan pada 20 November 2026" in text
    assert "go:logout" not in chat.buttons and "go:delete_data" in chat.buttons


class _Down:
    def __getattr__(self, name: str) -> object:
        async def fail(*args: object, **kwargs: object) -> object:
            raise BalanceServiceUnavailable("down")
        return fail


async def test_the_balance_service_down_still_lists_the_memberships(chat: Chat,
                                                                     world: World) -> None:
    await chat.register()
    ports = world.engine._ports  # noqa: SLF001
    down = Engine(sessions=world.store, catalog=Catalog(strict=True), strict=True,
                  ports=build_ports(kv=ports.kv, accounts=ports.accounts, balance=_Down(),
                                    otp_sender=ports.otp_sender, clock=ports.clock,
                                    secret=ports.secret))
    down_chat = Chat(down, world.outbox, chat.key)
    text = await down_chat.say("/datasaya")
    assert "• KPJ 123*****901\n" in text and "S*** R*****" not in text
    assert "Permintaan bantuan" not in text, "no ticket store on this engine: not shown"


async def test_help_names_the_command(chat: Chat) -> None:
    assert "/datasaya" in await chat.say("/bantuan")


def test_the_telegram_command_menu_offers_it_in_both_languages() -> None:
    from channels.telegram.keyboards import commands
    from flows.routes import COMMANDS

    for language in ("id", "en"):
        found = {c.command: c.description for c in commands(language)}
        assert "datasaya" in found and COMMANDS["datasaya"] == "my_data"
    assert COMMANDS["mydata"] == "my_data"


async def test_no_identifier_reaches_a_log_record(world: World,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    chat = world.chat("6281377778888")
    await chat.register()
    await world.accounts.link(chat.key, DEWI["kpj"], world.clock.now() + timedelta(minutes=1))
    for text in ("/datasaya", "cek saldo", "riwayat iuran", "data saya"):
        await chat.say(text)
    logged = "\n".join(record.getMessage() for record in caplog.records
                       if record.name.split(".")[0] in ("flows", "storage", "app", "channels",
                                                        "balance"))
    assert logged, "the engine logs each handled update"
    assert not [value for value in PERSONAL if value in logged]

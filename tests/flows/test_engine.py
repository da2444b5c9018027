"""The engine's contract: declared states only, global commands, faults answered politely."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from app.compose import build_ports
from flows import routes
from flows.engine import Engine
from flows.flow import Context, Flow, Outcome, mermaid, step
from flows.i18n import Catalog
from flows.menu import MENU
from flows.ports import BalanceServiceUnavailable, DatabaseUnavailable, IdentityMatch
from flows.types import Event, Session, SessionKey
from tests.flows.conftest import SITI, Chat, World


def test_every_state_a_step_can_return_is_declared(world: World) -> None:
    declared = world.engine.states
    for flow in routes.FLOWS:
        for state, declared_step in flow.steps.items():
            assert state.startswith(flow.name + ":"), state
            assert declared_step.goes_to <= declared, (state, declared_step.goes_to - declared)
    for name, entry in routes.ENTRIES.items():
        assert entry.goes_to <= declared, (name, entry.goes_to - declared)


def test_every_command_leads_to_an_entry() -> None:
    assert set(routes.COMMANDS.values()) <= set(routes.ENTRIES)


def test_every_intent_has_an_entry() -> None:
    from flows.intents import INTENTS

    assert set(INTENTS) <= set(routes.ENTRIES)


def test_flows_draw_as_mermaid() -> None:
    from flows import registration

    drawing = mermaid(registration.FLOW, [("/daftar", "registration:consent")])
    assert drawing.startswith("stateDiagram-v2")
    assert "registration__ask_nik --> registration__ask_kpj" in drawing


@pytest.mark.parametrize("command", ["/batal", "/menu", "/bantuan", "/bahasa"])
@pytest.mark.parametrize("steps", [
    [],
    ["/daftar"],
    ["/daftar", "!reg:agree"],
    ["/daftar", "!reg:agree", SITI["nik"]],
    ["/daftar", "!reg:agree", SITI["nik"], SITI["kpj"]],
    ["/daftar", "!reg:agree", SITI["nik"], SITI["kpj"], SITI["birth"]],
    ["/daftar", "!reg:agree", SITI["nik"], SITI["kpj"], SITI["birth"], SITI["phone"]],
    ["/hapusdata"],
    ["/bahasa"],
    ["cara klaim jht"],
])
async def test_global_commands_work_from_every_state(world: World, command: str,
                                                     steps: list[str]) -> None:
    chat = world.chat()
    for item in steps:
        await (chat.press(item[1:]) if item.startswith("!") else chat.say(item))
    before = await _session(world, chat.key) if steps else None
    text = await chat.say(command)
    assert text.strip()
    session = await _session(world, chat.key)
    if command != "/bahasa":
        assert session.state == MENU
    elif before is None or before.state in (MENU, "start:choose_language"):
        assert session.state == "start:choose_language"
    else:
        assert (session.state, session.data) == (before.state, before.data), \
            "a language question keeps the current step and its answers"
    if command == "/batal":
        assert "nik" not in session.data and "kpj" not in session.data


async def _session(world: World, key: SessionKey) -> Session:
    async with world.store.chat(key) as slot:
        assert slot.session is not None
        return slot.session


async def test_typed_batal_cancels_mid_flow(chat: Chat, world: World) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    await chat.say(SITI["nik"])
    assert "Dibatalkan" in await chat.say("batal")
    assert (await _session(world, chat.key)).state == MENU


async def test_unknown_twice_offers_a_human(chat: Chat) -> None:
    await chat.say("/menu")
    first = await chat.say("qwertyuiop asdfgh")
    assert "belum mengerti" in first and "masih" not in first
    second = await chat.say("zxcvbnm lkjhgf")
    assert "masih belum mengerti" in second and "petugas" in second
    assert chat.buttons == ["go:handoff:not_understood", "go:menu"]


async def test_unknown_command_is_answered(chat: Chat) -> None:
    assert "/bantuan" in await chat.say("/tidakada")


async def test_stale_button_says_menu_expired(chat: Chat) -> None:
    await chat.say("/menu")
    assert "tidak berlaku" in await chat.press("otp:resend")
    assert "tidak berlaku" in await chat.press("go:nonexistent")


async def test_language_follows_platform_then_choice(world: World) -> None:
    english = world.chat("en1", language_code="en-GB")
    assert "Please choose your language" in await english.say("/start")
    assert "I can show your JHT balance" in english.text, "the welcome follows the platform"
    assert "English" in await english.press("lang:en")
    assert "Check balance" in " ".join(b.label for r in english.replies for row in r.buttons
                                       for b in row)
    await english.say("/language")
    await english.press("lang:id")
    assert "Baik" in english.text


async def test_stale_flow_times_out(chat: Chat, world: World) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    world.clock.advance(31 * 60)
    text = await chat.say(SITI["nik"])
    assert "batas waktu" in text
    assert (await _session(world, chat.key)).state == MENU


async def test_unknown_stored_state_is_reset(chat: Chat, world: World) -> None:
    async with world.store.chat(chat.key) as slot:
        slot.session = Session("removed:state", "id", {"x": 1}, 1.0)
    assert (await chat.say("halo")).strip()
    assert (await _session(world, chat.key)).state == MENU


class _DownBalance:
    async def verify_identity(self, nik: str, kpj: str, birth_date: date) -> IdentityMatch | None:
        raise BalanceServiceUnavailable("down")


async def test_balance_service_down_keeps_answers(world: World) -> None:
    ports = world.engine._ports  # noqa: SLF001 - rebuild with one faulty port
    faulty = Engine(sessions=world.store, catalog=Catalog(strict=True),
                    ports=build_ports(kv=ports.kv, accounts=ports.accounts, balance=_DownBalance(),
                                      otp_sender=ports.otp_sender, clock=ports.clock,
                                      secret=ports.secret))
    chat = Chat(faulty, world.outbox)
    await chat.say("/daftar")
    await chat.press("reg:agree")
    await chat.say(SITI["nik"])
    await chat.say(SITI["kpj"])
    assert "tidak dapat dihubungi" in await chat.say(SITI["birth"])
    session = await _session(world, chat.key)
    assert session.state == "registration:ask_birth_date"
    assert session.data["kpj"] == SITI["kpj"], "nothing typed so far is lost"


class _DownAccounts:
    def __getattr__(self, name: str) -> object:
        async def fail(*args: object, **kwargs: object) -> object:
            raise DatabaseUnavailable("down")
        return fail


async def test_database_down_is_answered_politely(world: World) -> None:
    ports = world.engine._ports  # noqa: SLF001
    faulty = Engine(sessions=world.store, catalog=Catalog(strict=True),
                    ports=build_ports(kv=ports.kv, accounts=_DownAccounts(), balance=ports.balance,
                                      otp_sender=ports.otp_sender, clock=ports.clock,
                                      secret=ports.secret))
    chat = Chat(faulty, world.outbox)
    assert "tidak dapat diakses" in await chat.say("cek saldo")


async def test_a_crashing_step_gets_an_apology_and_keeps_state(world: World,
                                                               caplog: pytest.LogCaptureFixture
                                                               ) -> None:
    async def crash(ctx: Context) -> Outcome:
        raise ZeroDivisionError

    async def wrong_state(ctx: Context) -> Outcome:
        return Outcome("nowhere:at_all")

    flow = Flow("boom", {"boom:crash": step(crash, MENU), "boom:wrong": step(wrong_state, MENU)})
    engine = Engine(sessions=world.store, ports=world.engine._ports,  # noqa: SLF001
                    catalog=Catalog(strict=True), flows=(*routes.FLOWS, flow))
    for state in ("boom:crash", "boom:wrong"):
        key = SessionKey("test", state)
        async with world.store.chat(key) as slot:
            slot.session = Session(state, "en", {"kept": True}, world.clock.now().timestamp())
        with caplog.at_level(logging.ERROR):
            replies = await engine.handle(key, Event.message("hello", language_code="en"))
        assert "something went wrong" in replies[0].text
        session = await _session(world, key)
        assert session.state == state and session.data == {"kept": True}
    assert "Traceback" not in "".join(r.text for r in replies)


async def test_long_and_strange_messages_are_answered(chat: Chat) -> None:
    for text in ("", " ", "x" * 4000 + "y" * 10, "🙂🙂🙂", "\x00\x07\x1b[31m",
                 "'; DROP TABLE members; --", "<script>alert(1)</script>"):
        assert (await chat.say(text)).strip()


async def test_balance_needs_a_linked_chat(chat: Chat) -> None:
    text = await chat.say("cek saldo")
    assert "go:register" in chat.buttons and "dihubungkan" in text
    await chat.register()
    text = await chat.say("cek saldo")
    assert "123*****901" in text and "Rp" in text


def test_committed_flow_diagrams_match_the_tables() -> None:
    from pathlib import Path

    from flows.diagrams import document

    committed = Path(__file__).resolve().parents[2] / "docs" / "flows.md"
    assert committed.read_text(encoding="utf-8") == document(), \
        "regenerate: uv run python -m flows.diagrams > docs/flows.md"


@pytest.mark.parametrize("typed", ["lebih lama", "Lebih lama ▶", "LEBIH LAMA!", "selanjutnya",
                                   "berikutnya", "next"])
async def test_a_typed_paging_label_or_word_turns_the_page(chat: Chat, typed: str) -> None:
    await chat.register()
    assert "halaman 1 dari" in await chat.say("riwayat iuran")
    assert "hist:older" in chat.buttons
    assert "halaman 2 dari" in await chat.say(typed)


@pytest.mark.parametrize("typed", ["sebelumnya", "previous", "back", "◀ lebih baru"])
async def test_a_typed_backward_word_goes_back_a_page(chat: Chat, typed: str) -> None:
    await chat.register()
    await chat.say("riwayat iuran")
    await chat.press("hist:older")
    assert "halaman 1 dari" in await chat.say(typed)


async def test_typed_labels_are_read_only_against_the_last_buttons(chat: Chat) -> None:
    await chat.say("/menu")
    assert "halaman" not in await chat.say("selanjutnya"), "no paging button on screen"
    await chat.say("/menu")
    assert "go:faq" in chat.buttons
    text = await chat.say("pertanyaan umum")
    assert "go:faq.claim_jht" in chat.buttons, text
    assert "dapat diklaim" in await chat.say("KLAIM JHT!"), "an FAQ label, typed loosely"


async def test_a_typed_label_is_relayed_while_talking_to_an_agent(chat: Chat,
                                                                  world: World) -> None:
    await chat.say("/petugas")
    await chat.press("ho:yes")
    await chat.say("Ya, hubungkan")
    assert any("Ya, hubungkan" in line for line in world.desk_lines)


@pytest.mark.parametrize("blank", ["", "   ", "\t \n"])
async def test_an_empty_line_is_no_miss_and_gets_a_gentle_prompt(chat: Chat,
                                                                 blank: str) -> None:
    await chat.say("/menu")
    for _ in range(3):
        assert "Silakan ketik pertanyaan Anda" in await chat.say(blank)
        assert "go:handoff:not_understood" not in chat.buttons
    first = await chat.say("qwertyuiop asdfgh")
    assert "belum mengerti" in first and "masih" not in first, "the blanks were no misses"


@pytest.mark.parametrize("ack", ["ok", "oke", "Okay!", "okee", "sip", "siap kak", "baik pak",
                                 "ok ok"])
async def test_an_acknowledgement_gets_a_short_answer(chat: Chat, ack: str) -> None:
    await chat.say("/menu")
    assert await chat.say(ack) == "Baik. Ada lagi yang bisa saya bantu?"
    await chat.say(ack)
    assert "go:handoff:not_understood" not in chat.buttons, "never counted as a miss"


async def test_english_fallback_suggests_english_phrases(world: World) -> None:
    english = world.chat("en-fallback", language_code="en")
    await english.say("/start")
    await english.press("lang:en")
    text = await english.say("qwertyuiop asdfgh")
    assert '"check balance"' in text and "cek saldo" not in text
    assert "/help" in await english.say("/nosuchcommand")
    assert "All right." in await english.say("okay")

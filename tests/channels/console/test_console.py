"""The console channel over the real engine: numbered buttons, typed contacts, stopping."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from channels.console.channel import ConsoleChannel, render
from flows.menu import MENU
from flows.types import Button, Event, EventKind, Reply, SayKind, SessionKey
from tests.flows import conftest as flows_conftest
from tests.flows.conftest import SITI, World

world = flows_conftest.world  # the engine fixture of the flow tests, reused here

Line = str | Callable[[], str] | None
CONSOLE_KEY = SessionKey("console", "local")


@dataclass
class Script:
    """Lines typed by the member; a callable line is computed when it is read (a code that
    is only known once sent). Runs out with ``None`` (end of input)."""

    lines: list[Line]
    output: list[str] = field(default_factory=list)
    reads: int = 0

    async def read(self) -> str | None:
        self.reads += 1
        if not self.lines:
            return None
        line = self.lines.pop(0)
        return line() if callable(line) else line

    def write(self, text: str) -> None:
        self.output.append(text)

    @property
    def text(self) -> str:
        return "\n".join(self.output)


@dataclass
class Recorder:
    """Passes events to the engine and keeps them for the test to inspect."""

    world: World
    events: list[Event] = field(default_factory=list)

    async def handle(self, key: SessionKey, event: Event) -> list[Reply]:
        self.events.append(event)
        return await self.world.engine.handle(key, event)


async def _converse(world: World, lines: list[Line]) -> tuple[Script, Recorder]:
    script, recorder = Script(lines), Recorder(world)
    channel = ConsoleChannel(recorder.handle, read=script.read, write=script.write)
    await asyncio.wait_for(channel.run(), timeout=20)
    return script, recorder


def _last_code(world: World) -> Callable[[], str]:
    def read_code() -> str:
        lines = world.outbox.read_text(encoding="utf-8").splitlines()
        return str(json.loads(lines[-1])["code"])
    return read_code


async def _state(world: World) -> str:
    async with world.store.chat(CONSOLE_KEY) as slot:
        assert slot.session is not None
        return slot.session.state


async def test_start_prints_numbered_buttons_and_a_number_presses_one(world: World) -> None:
    script, recorder = await _converse(world, ["2"])
    first = script.output[0] + script.output[1]
    assert "[1] Bahasa Indonesia" in first and "[2] English" in first
    assert recorder.events[0] == Event.message("/start")
    assert recorder.events[1] == Event.button("lang:en")
    assert "English" in script.output[2] and "[1] Check balance" in script.text


async def test_typing_a_label_presses_that_button(world: World) -> None:
    lines: list[Line] = ["  bahasa INDONESIA ", "riwayat IURAN", "riwayat iuran saya"]
    script, recorder = await _converse(world, lines)
    assert recorder.events[1] == Event.button("lang:id")
    assert "[2] Riwayat Iuran" in script.text
    assert recorder.events[2] == Event.button("go:history")
    # Text that is no label stays a message for the engine to classify.
    assert recorder.events[3] == Event.message("riwayat iuran saya")


async def test_a_number_out_of_range_is_typed_text(world: World) -> None:
    _, recorder = await _converse(world, ["7", "0"])
    assert [e.kind for e in recorder.events[1:]] == [EventKind.TEXT, EventKind.TEXT]


async def test_registration_on_the_console_with_a_typed_phone(world: World) -> None:
    lines: list[Line] = ["1", "/daftar", "1", SITI["nik"], SITI["kpj"], SITI["birth"],
                         "0812 3456 7890", _last_code(world)]
    script, recorder = await _converse(world, lines)
    assert "(pesan terakhir Anda dihapus)" in script.text, "the NIK message is deleted"
    assert "(ketik nomor HP Anda untuk membagikannya)" in script.text
    assert "deleted your last message" not in script.text and "type your" not in script.text
    phone_event = recorder.events[7]
    assert phone_event.kind is EventKind.CONTACT and phone_event.contact_is_own
    assert phone_event.phone == "0812 3456 7890"
    assert "123*****901" in script.output[-2]
    assert await world.accounts.linked_kpjs(CONSOLE_KEY) == [SITI["kpj"]]
    assert await _state(world) == MENU


async def test_a_command_at_the_phone_step_stays_a_command(world: World) -> None:
    lines: list[Line] = ["1", "/daftar", "1", SITI["nik"], SITI["kpj"], SITI["birth"], "/batal"]
    script, recorder = await _converse(world, lines)
    assert recorder.events[-1] == Event.message("/batal")
    assert "Dibatalkan" in script.text
    assert await _state(world) == MENU


async def test_typed_batal_at_the_phone_step_cancels(world: World) -> None:
    lines: list[Line] = ["1", "/daftar", "1", SITI["nik"], SITI["kpj"], SITI["birth"], "batal"]
    script, _ = await _converse(world, lines)
    assert "Dibatalkan" in script.output[-2]
    assert await _state(world) == MENU


async def test_quit_stops_without_reading_further(world: World) -> None:
    script, recorder = await _converse(world, ["/QUIT", "/menu"])
    assert recorder.events == [Event.message("/start")]
    assert script.lines == ["/menu"], "nothing after /quit is read"


@pytest.mark.parametrize("word", ["/exit", "/q", "  /quit  "])
async def test_every_quit_word_stops(world: World, word: str) -> None:
    _, recorder = await _converse(world, [word, "/menu"])
    assert len(recorder.events) == 1


async def test_end_of_input_stops(world: World) -> None:
    script, recorder = await _converse(world, ["1"])
    assert len(recorder.events) == 2
    assert script.reads == 2, "the second read returned None and ended the loop"


async def test_a_superscript_digit_is_typed_text(world: World) -> None:
    _, recorder = await _converse(world, ["²"])
    assert recorder.events[-1].kind is EventKind.TEXT


def test_render_numbers_buttons_from_the_given_number() -> None:
    reply = Reply("Pilih:\nsatu baris lagi",
                  ((Button("A", "a"), Button("B", "b")), (Button("C", "c"),)))
    assert render(reply, 4) == ("bot> Pilih:\n     satu baris lagi\n"
                                "    [4] A   [5] B\n    [6] C")


def test_render_marks_deletion_and_contact_requests_in_the_reply_language() -> None:
    deleted = render(Reply("NIK dihapus.", kind=SayKind.DELETE_MEMBER_MESSAGE, locale="id"))
    assert deleted == "  (pesan terakhir Anda dihapus) NIK dihapus."
    ask = render(Reply("Nomor HP?", ((Button("Bagikan", "contact"),),), SayKind.ASK_CONTACT,
                       "id"))
    assert ask.splitlines() == ["bot> Nomor HP?", "    [1] Bagikan",
                                "    (ketik nomor HP Anda untuk membagikannya)"]
    english = render(Reply("Phone?", ((Button("Share", "contact"),),), SayKind.ASK_CONTACT,
                           "en"))
    assert english.splitlines()[-1] == "    (type your phone number to share it)"
    gone = render(Reply("NIK deleted.", kind=SayKind.DELETE_MEMBER_MESSAGE, locale="en"))
    assert gone == "  (deleted your last message) NIK deleted."


async def test_the_last_message_is_numbered_first_and_picks_the_right_button() -> None:
    events: list[Event] = []
    replies = [Reply("one", ((Button("A", "a"), Button("B", "b")),)),
               Reply("plain"),
               Reply("two", ((Button("C", "c"),), (Button("D", "d"),)))]

    async def handle(key: SessionKey, event: Event) -> list[Reply]:
        events.append(event)
        return replies

    script = Script(["4", "b", "5", "2"])
    await ConsoleChannel(handle, read=script.read, write=script.write).run()
    assert script.output[:3] == ["bot> one\n    [3] A   [4] B", "bot> plain",
                                 "bot> two\n    [1] C\n    [2] D"]
    assert events[1:] == [Event.button("b"), Event.button("b"), Event.message("5"),
                          Event.button("d")]


async def test_the_same_action_twice_in_a_turn_has_one_number() -> None:
    events: list[Event] = []
    replies = [Reply("Belum terhubung.", ((Button("Daftar", "go:register"),),)),
               Reply("Menu:", ((Button("Cek Saldo", "go:check_balance"),
                                Button("Daftar / Hubungkan", "go:register")),))]

    async def handle(key: SessionKey, event: Event) -> list[Reply]:
        events.append(event)
        return replies

    script = Script(["2", "3"])
    await ConsoleChannel(handle, read=script.read, write=script.write).run()
    assert script.output[:2] == ["bot> Belum terhubung.\n    [2] Daftar",
                                 "bot> Menu:\n    [1] Cek Saldo   [2] Daftar / Hubungkan"]
    assert events[1:] == [Event.button("go:register"), Event.message("3")]


async def test_main_menu_numbers_do_not_shift_after_an_offer(world: World) -> None:
    script, recorder = await _converse(world, ["1", "cek saldo", "1"])
    menu_line = next(line for line in script.output[-1].splitlines() if "Cek Saldo" in line)
    assert "[1] Cek Saldo" in menu_line
    assert recorder.events[-1] == Event.button("go:check_balance"), \
        "1 is the main menu's first button, even after an offer to register"


@pytest.mark.parametrize("typed", ["lebih lama", "LEBIH LAMA ▶", "selanjutnya", "next"])
async def test_a_typed_label_without_its_arrow_presses_the_button(typed: str) -> None:
    events: list[Event] = []
    replies = [Reply("Halaman 1", ((Button("◀ Lebih baru", "hist:newer"),
                                    Button("Lebih lama ▶", "hist:older")),))]

    async def handle(key: SessionKey, event: Event) -> list[Reply]:
        events.append(event)
        return replies

    script = Script([typed, "sebelumnya", "back"])
    await ConsoleChannel(handle, read=script.read, write=script.write).run()
    assert events[1:] == [Event.button("hist:older"), Event.button("hist:newer"),
                          Event.button("hist:newer")]


async def test_choosing_the_share_contact_button_asks_to_type_the_number(world: World) -> None:
    lines: list[Line] = ["1", "/daftar", "1", SITI["nik"], SITI["kpj"], SITI["birth"], "1",
                         SITI["phone"]]
    script, recorder = await _converse(world, lines)
    assert any(out.strip() == "(ketik nomor HP Anda untuk membagikannya)"
               for out in script.output)
    assert recorder.events[-1].kind is EventKind.CONTACT

"""The OTP step as a new member meets it: a wrong code, a stray digit, a code inside a
sentence, the resend rules, in both languages. The clock starts at 16:00 WIB."""

from __future__ import annotations

import pytest

from channels.console.channel import ConsoleChannel
from flows.types import Event, SessionKey
from tests.flows.conftest import SITI, Chat, World

LANGS = ("id", "en")
WORDS = {
    "id": {"seconds": "detik", "at": "pukul {} WIB", "digits": "6 digit",
           "deleted": "dihapus", "one_code": "satu kode", "locked": "dikunci"},
    "en": {"seconds": "seconds", "at": "at {} WIB", "digits": "6 digits",
           "deleted": "deleted", "one_code": "one code", "locked": "locked"},
}
CLOCK = {"id": "{:02d}.{:02d}", "en": "{:02d}:{:02d}"}


def at(lang: str, hour: int, minute: int) -> str:
    return WORDS[lang]["at"].format(CLOCK[lang].format(hour, minute))


def wrong_code(chat: Chat) -> str:
    return next(c for c in ("000000", "111111", "222222") if c not in chat.codes())


@pytest.mark.parametrize("lang", LANGS)
async def test_a_wrong_code_offers_a_new_code(world: World, lang: str) -> None:
    chat = world.chat("w1", lang)
    await chat.reach_code_step()
    world.clock.advance(61)
    await chat.say(wrong_code(chat))
    assert "otp:resend" in chat.buttons, chat.text
    await chat.press("otp:resend")
    assert len(chat.codes()) == 2
    await chat.say(chat.codes()[-1])
    assert await world.accounts.linked_kpjs(chat.key) == [SITI["kpj"]]


@pytest.mark.parametrize("lang", LANGS)
async def test_a_wrong_code_right_after_sending_says_when_a_new_code_can_come(
        world: World, lang: str) -> None:
    chat = world.chat("w2", lang)
    await chat.reach_code_step()
    world.clock.advance(10)
    text = await chat.say(wrong_code(chat))
    assert "50 " + WORDS[lang]["seconds"] in text and "otp:resend" in chat.buttons


@pytest.mark.parametrize("lang", LANGS)
async def test_a_wrong_code_after_three_codes_this_hour_says_the_time(world: World,
                                                                      lang: str) -> None:
    chat = world.chat("w3", lang)
    await chat.reach_code_step()
    for _ in range(2):
        world.clock.advance(61)
        await chat.press("otp:resend")
    assert len(chat.codes()) == 3
    text = await chat.say(wrong_code(chat))
    assert "otp:resend" not in chat.buttons
    assert at(lang, 17, 0) in text, text


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("typed", ["1", "12345", "1234567"])
async def test_a_stray_number_is_not_a_code_and_nothing_is_said_deleted(
        world: World, lang: str, typed: str) -> None:
    chat = world.chat("s1", lang)
    await chat.reach_code_step()
    for _ in range(5):  # never counted as a wrong try
        text = await chat.say(typed)
        assert not chat.deleted and WORDS[lang]["deleted"] not in text
        assert WORDS[lang]["digits"] in text, text
    await chat.say(chat.codes()[-1])
    assert await world.accounts.linked_kpjs(chat.key) == [SITI["kpj"]]


async def test_console_button_one_after_a_wrong_code_asks_for_a_new_code(world: World) -> None:
    chat = Chat(world.engine, world.outbox, SessionKey("console", "local"))
    await chat.reach_code_step()
    world.clock.advance(61)
    console = ConsoleChannel(world.engine.handle, read=_no_input, write=lambda _: None,
                             language_code="id")
    await console.send(Event.message(wrong_code(chat), language_code="id"))
    assert console.event_for("1") == Event.button("otp:resend", language_code="id")


async def _no_input() -> str | None:
    return None


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("template", ["kodenya {}", "kode saya {}", "my code is {} {}",
                                      "Kode OTP: {}."])
async def test_a_code_inside_a_short_sentence_is_accepted_and_deleted(
        world: World, lang: str, template: str) -> None:
    chat = world.chat("c1", lang)
    await chat.reach_code_step()
    code = chat.codes()[-1]
    parts = (code[:3], code[3:]) if template.count("{}") == 2 else (code,)
    await chat.say(template.format(*parts))
    assert chat.deleted
    assert await world.accounts.linked_kpjs(chat.key) == [SITI["kpj"]]


@pytest.mark.parametrize("lang", LANGS)
async def test_two_codes_in_one_message_are_deleted_and_one_is_asked_for(world: World,
                                                                        lang: str) -> None:
    chat = world.chat("c2", lang)
    await chat.reach_code_step()
    code = chat.codes()[-1]
    text = await chat.say(f"kode {code} atau {wrong_code(chat)}")
    assert chat.deleted and WORDS[lang]["one_code"] in text, text
    assert await world.accounts.linked_kpjs(chat.key) == []
    await chat.say(code)
    assert await world.accounts.linked_kpjs(chat.key) == [SITI["kpj"]]


@pytest.mark.parametrize("lang", LANGS)
async def test_lockout_says_until_when(world: World, lang: str) -> None:
    chat = world.chat("l1", lang)
    await chat.reach_code_step()
    for _ in range(5):
        text = await chat.say(wrong_code(chat))
    assert WORDS[lang]["locked"] in text and CLOCK[lang].format(16, 15) + " WIB" in text, text


async def test_one_second_is_singular_in_english(world: World) -> None:
    chat = world.chat("p1", "en")
    await chat.reach_code_step()
    world.clock.advance(59)
    text = await chat.press("otp:resend")
    assert "1 second," in text and "1 seconds" not in text, text

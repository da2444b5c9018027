"""A typed number presses that button of the last turn, on every channel (the engine's
contract the channels rely on): ``Session.shown[n-1]``, the share-contact button left out,
a label that reads as the text first; never in a captive state or a state reading digits."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows import routes
from flows.engine import Engine
from flows.flow import Context, Flow, Outcome, say, step
from flows.i18n import Catalog
from flows.menu import MENU
from flows.typed_buttons import (
    CONTACT,
    SHOWN_MAX,
    label_key,
    shown_buttons,
    typed_number,
    typed_press,
)
from flows.types import Button, Event, Reply, Session, SessionKey, Text
from tests.flows.conftest import SITI, Chat, World

# --- the pure contract ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "number"), [
    ("1", 1), ("2.", 2), ("3)", 3), (" 4 ", 4), ("12", 12), ("07", 7), ("0", 0),
    ("123", None), ("1..", None), ("(1)", None), ("1 2", None), ("", None), ("satu", None),
    ("١", None), ("２", None), ("-1", None), ("1.5", None),
])
def test_a_number_is_one_or_two_ascii_digits_with_an_optional_dot_or_paren(
        text: str, number: int | None) -> None:
    assert typed_number(text) == number


def test_shown_buttons_are_every_reply_row_by_row_without_the_contact_button() -> None:
    replies = [
        Reply("a", ((Button("A1", "a:1"), Button("A2", "a:2")), (Button("A3", "a:3"),))),
        Reply("no buttons"),
        Reply("b", ((Button("Share my number", CONTACT), Button("B1", "b:1")),)),
    ]
    assert shown_buttons(replies) == (("A1", "a:1"), ("A2", "a:2"), ("A3", "a:3"),
                                      ("B1", "b:1"))
    many = [Reply("x", tuple((Button(str(i), f"x:{i}"),) for i in range(40)))]
    assert len(shown_buttons(many)) == SHOWN_MAX


labels = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=SHOWN_MAX)


@given(labels, st.data())
def test_a_number_presses_that_button_unless_a_label_reads_as_the_text(
        shown: list[str], data: st.DataObject) -> None:
    n = data.draw(st.integers(1, len(shown)))
    text = f"{n}{data.draw(st.sampled_from(['', '.', ')']))}"
    index = typed_press(text, shown)
    same = [i for i, label in enumerate(shown) if label_key(label) == label_key(text)]
    assert index == (same[0] if same else n - 1)
    assert typed_press(text, shown, numbers=False) == (same[0] if same else None)


@given(labels, st.integers(0, 999))
def test_a_number_beyond_the_buttons_presses_nothing_unless_a_label_reads_so(
        shown: list[str], n: int) -> None:
    if 1 <= n <= len(shown) and n < 100:
        return
    index = typed_press(str(n), shown)
    same = [i for i, label in enumerate(shown) if label_key(label) == label_key(str(n))]
    assert index == (same[0] if same else None)


def test_a_label_equal_to_the_text_wins_over_the_position() -> None:
    assert typed_press("1", ["2", "1"]) == 1
    assert typed_press("2024", ["2025", "2024"]) == 1
    assert typed_press("2", ["2025", "2024"]) == 1, "no label reads 2: the second button"
    assert typed_press("3", ["2025", "2024"]) is None


# --- the engine, with a small flow of its own -------------------------------------------------

PICK, DIGITS, CAPTIVE = "pick:choose", "pick:digits", "pick:captive"


async def _echo(ctx: Context) -> Outcome:
    event = ctx.event
    return Outcome(MENU, (say("{kind}|{data}|{text}", kind=event.kind.value, data=event.data,
                              text=event.text),), data={})


PICK_FLOW = Flow("pick", {state: step(_echo, MENU) for state in (PICK, DIGITS, CAPTIVE)},
                 captive=frozenset({CAPTIVE}), digits=frozenset({DIGITS}))


class _Echo(Catalog):
    """Renders the echo's template as is (it is no member-facing text)."""

    def render(self, text: Text, locale: str) -> str:
        if text.msgid == "{kind}|{data}|{text}":
            return "{kind}|{data}|{text}".format_map(text.params)
        return super().render(text, locale)


async def _typed(world: World, state: str, shown: Sequence[tuple[str, str]], text: str) -> str:
    engine = Engine(sessions=world.store, ports=world.engine._ports,  # noqa: SLF001
                    catalog=_Echo(), flows=(*routes.FLOWS, PICK_FLOW), strict=True)
    key = SessionKey("test", f"typed-{state}")
    async with world.store.chat(key) as slot:
        slot.session = Session(state, "en", {}, world.clock.now().timestamp(),
                               shown=tuple(shown))
    replies = await engine.handle(key, Event.message(text))
    return replies[0].text


SHOWN = (("Check balance", "pick:one"), ("Older ▶", "pick:two"), ("5", "pick:five"))


@pytest.mark.parametrize(("text", "pressed"), [
    ("1", "pick:one"), ("2.", "pick:two"), ("3)", "pick:five"), ("5", "pick:five"),
    ("next", "pick:two"), ("older", "pick:two"),
])
async def test_the_engine_reads_a_typed_number_or_label_as_the_press(
        world: World, text: str, pressed: str) -> None:
    assert await _typed(world, PICK, SHOWN, text) == f"button|{pressed}|"


@pytest.mark.parametrize("text", ["4", "0", "123", "1 2"])
async def test_a_number_no_button_carries_stays_typed_text(world: World, text: str) -> None:
    assert await _typed(world, PICK, SHOWN, text) == f"text||{text}"


async def test_no_number_is_a_press_in_a_captive_state(world: World) -> None:
    assert await _typed(world, CAPTIVE, SHOWN, "1") == "text||1"
    assert await _typed(world, CAPTIVE, SHOWN, "older") == "text||older"


async def test_a_state_reading_digits_keeps_a_typed_number_but_still_knows_labels(
        world: World) -> None:
    assert await _typed(world, DIGITS, SHOWN, "1") == "text||1"
    assert await _typed(world, DIGITS, SHOWN, "12") == "text||12"
    assert await _typed(world, DIGITS, SHOWN, "5") == "button|pick:five|", "a label still wins"
    assert await _typed(world, DIGITS, SHOWN, "check balance") == "button|pick:one|"


async def test_after_a_step_timed_out_only_a_button_that_works_anywhere_is_pressed(
        world: World) -> None:
    """An alert delivered to a chat resting in a half-finished step keeps its buttons as the
    shown ones; when the step has timed out, a typed number still presses a ``go:`` button
    (it works from every state) but not the step's own buttons."""
    engine = Engine(sessions=world.store, ports=world.engine._ports,  # noqa: SLF001
                    catalog=Catalog(), flows=(*routes.FLOWS, PICK_FLOW), strict=True)
    key = SessionKey("test", "typed-stale")
    shown = (("Own", "pick:one"), ("Stop these alerts", "go:alerts_stop:posted"))
    for text, pressed in (("2", True), ("1", False)):
        async with world.store.chat(key) as slot:
            slot.session = Session(PICK, "en", {}, world.clock.now().timestamp() - 7200,
                                   shown=shown)
        texts = [reply.text for reply in await engine.handle(key, Event.message(text))]
        assert texts[0] == "Your previous step timed out, so I started over."
        assert any("alerts" in t for t in texts[1:]) is pressed, texts


# --- the real flows --------------------------------------------------------------------------


async def test_a_number_presses_the_main_menu_button(chat: Chat, world: World) -> None:
    await chat.say("/menu")
    assert chat.buttons[:2] == ["go:check_balance", "go:history"]
    typed = await chat.say("2")
    await chat.say("/menu")
    assert typed == await chat.press("go:history")
    await chat.say("/menu")
    await chat.say("4.")
    assert chat.buttons[0].startswith("go:faq."), "the fourth button: the FAQ topics"
    await chat.say("1")
    assert chat.buttons[:2] == ["faq:yes", "faq:no"], "the first topic answered"


async def test_the_kept_buttons_are_those_a_number_counts(chat: Chat, world: World) -> None:
    await chat.say("/menu")
    async with world.store.chat(chat.key) as slot:
        assert slot.session is not None
        kept = slot.session.shown
    assert [data for _, data in kept] == chat.buttons


async def test_a_short_number_at_the_code_step_is_a_code_not_the_resend_button(
        chat: Chat, world: World) -> None:
    await chat.reach_code_step()
    await chat.say("000000" if chat.codes()[-1] != "000000" else "111111")
    assert "otp:resend" in chat.buttons, "a wrong code offers a new one"
    codes = len(chat.codes())
    await chat.say("1")
    assert len(chat.codes()) == codes, "no new code was sent"
    async with world.store.chat(chat.key) as slot:
        assert slot.session is not None
        assert slot.session.state == "otp:await_code"


async def test_a_short_number_at_the_birth_date_step_is_not_the_retry_button(
        chat: Chat, world: World) -> None:
    await chat.reach_phone_step({**SITI, "birth": "06-01-1990"})
    assert "reg:retry_nik" in chat.buttons, "the date does not match the NIK"
    await chat.say("1")
    async with world.store.chat(chat.key) as slot:
        assert slot.session is not None
        assert slot.session.state == "registration:ask_birth_date", "not back to the NIK"


@pytest.mark.parametrize("text", ["1", "12", "3."])
async def test_a_short_number_where_no_button_is_shown_is_the_members_answer(
        chat: Chat, world: World, text: str) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    await chat.say(SITI["nik"])
    assert not chat.buttons, "the KPJ question shows no button"
    await chat.say(text)
    async with world.store.chat(chat.key) as slot:
        assert slot.session is not None
        assert slot.session.state == "registration:ask_kpj", "read as a (too short) KPJ"


def test_the_contact_button_is_never_counted() -> None:
    reply = Reply("phone?", ((Button("Share my number", CONTACT),),
                             (Button("Yes, use this number", "reg:same"),)))
    assert shown_buttons([reply]) == (("Yes, use this number", "reg:same"),)

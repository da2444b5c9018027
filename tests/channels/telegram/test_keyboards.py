"""Signed callback data, the share-contact keyboard and the command menu."""

from __future__ import annotations

import pytest

from channels.telegram.keyboards import (
    MAX_CALLBACK_BYTES,
    commands,
    contact_keyboard,
    inline_keyboard,
    sign,
    verify,
)
from flows.routes import COMMANDS as ENGINE_COMMANDS
from flows.routes import LISTED
from flows.types import Button

SECRET = b"k" * 32


def test_signed_data_round_trips_for_the_same_chat() -> None:
    signed = sign(SECRET, 42, "hist:year:2024")
    assert signed.startswith("1hist:year:2024|")
    assert verify(SECRET, 42, signed) == "hist:year:2024"
    assert verify(SECRET, "42", signed) == "hist:year:2024"


def test_data_holding_the_separator_still_round_trips() -> None:
    assert verify(SECRET, 7, sign(SECRET, 7, "a|b")) == "a|b"


@pytest.mark.parametrize("tamper", [
    lambda s: s.replace("hist:older", "hist:newer"),  # other data, same tag
    lambda s: "2" + s[1:],  # unknown format version
    lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),  # one tag character changed
    lambda s: s.rpartition("|")[0],  # no tag at all
    lambda s: "",
])
def test_a_forged_button_does_not_verify(tamper: object) -> None:
    signed = sign(SECRET, 42, "hist:older")
    assert callable(tamper)
    assert verify(SECRET, 42, tamper(signed)) is None


def test_a_button_of_another_chat_or_key_does_not_verify() -> None:
    signed = sign(SECRET, 42, "go:menu")
    assert verify(SECRET, 43, signed) is None
    assert verify(b"other-key", 42, signed) is None
    assert verify(SECRET, 42, None) is None


def test_data_longer_than_telegram_allows_is_refused_when_rendering() -> None:
    longest = "x" * (MAX_CALLBACK_BYTES - 8)
    assert len(sign(SECRET, 1, longest).encode()) == MAX_CALLBACK_BYTES
    with pytest.raises(ValueError, match="too long"):
        sign(SECRET, 1, longest + "x")


def test_inline_keyboard_keeps_the_rows_and_signs_every_button() -> None:
    rows = ((Button("A", "go:a"), Button("B", "go:b")), (Button("C", "go:c"),))
    markup = inline_keyboard(SECRET, 5, rows)
    assert [[b.text for b in row] for row in markup.inline_keyboard] == [["A", "B"], ["C"]]
    assert [verify(SECRET, 5, b.callback_data) for row in markup.inline_keyboard
            for b in row] == ["go:a", "go:b", "go:c"]


def test_the_contact_keyboard_is_one_time_and_requests_the_contact() -> None:
    markup = contact_keyboard(((Button("Bagikan nomor HP saya", "contact"),),))
    assert markup.one_time_keyboard and markup.resize_keyboard
    [[key]] = markup.keyboard
    assert key.text == "Bagikan nomor HP saya"
    assert key.request_contact is True


def test_the_command_menu_exists_in_both_languages_and_every_command_is_routed() -> None:
    indonesian, english = commands("id"), commands("en")
    assert [c.command for c in indonesian] == [c.command for c in english]
    assert [c.command for c in indonesian] == [command.name for command in LISTED]
    assert {c.command for c in indonesian} <= set(ENGINE_COMMANDS)
    described = {c.command: (c.description, e.description)
                 for c, e in zip(indonesian, english, strict=True)}
    assert described["saldo"] == ("Cek saldo JHT", "Check JHT balance")
    assert all(0 < len(c.description) <= 256 for c in indonesian + english)

"""Typed text read as a press of a button on screen: "lebih lama" presses "Lebih lama ▶", "2"
presses the second button.

Labels and typed text are compared by their words only: case, arrows, emoji and punctuation do
not count. Paging words ("selanjutnya", "next", "sebelumnya", "back", ...) press the button
whose label carries a forward (▶) or backward (◀) arrow. A number (one or two ASCII digits,
optionally followed by "." or ")") presses that button of :func:`shown_buttons`, counted from
1, unless a label itself reads as the typed text (rating "1".."5", year "2024": the label
wins). Pure; the engine applies it on every channel, and channels that print numbers next to
buttons number them with :func:`shown_buttons`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from flows.types import Reply

CONTACT = "contact"
"""The data of the share-my-number button: it sends a contact, never its label or a number."""
SHOWN_MAX = 24
"""At most this many buttons of one turn are kept (and can be typed by number)."""
_NON_WORD = re.compile(r"[^\w]+")
_NUMBER = re.compile(r"([0-9]{1,2})[.)]?")
_FORWARD_ARROWS = ("▶", "►", "→", "»", "⏩", "➡")
_BACKWARD_ARROWS = ("◀", "◄", "←", "«", "⏪", "⬅")
_FORWARD_WORDS = frozenset({
    "selanjutnya", "berikutnya", "lanjut", "lanjutkan", "halaman berikutnya",
    "halaman selanjutnya", "next", "next page", "more", "older",
})
_BACKWARD_WORDS = frozenset({
    "sebelumnya", "halaman sebelumnya", "kembali", "previous", "previous page", "prev",
    "back", "newer",
})


def label_key(text: str) -> str:
    """The words of a label or typed line: case-folded, accents, arrows, emoji and
    punctuation dropped, spaces collapsed (``"  Lebih lama ▶"`` -> ``"lebih lama"``)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NON_WORD.sub(" ", plain).replace("_", " ").split())


def typed_choice(text: str, labels: Sequence[str]) -> int | None:
    """The index of the label ``text`` stands for, or ``None``: the same words as a label,
    else a paging word and the one label carrying an arrow that way."""
    key = label_key(text)
    if not key:
        return None
    for index, label in enumerate(labels):
        if label_key(label) == key:
            return index
    arrows = (_FORWARD_ARROWS if key in _FORWARD_WORDS else
              _BACKWARD_ARROWS if key in _BACKWARD_WORDS else ())
    if not arrows:
        return None
    found = [i for i, label in enumerate(labels) if any(a in label for a in arrows)]
    return found[0] if len(found) == 1 else None


def shown_buttons(replies: Iterable[Reply]) -> tuple[tuple[str, str], ...]:
    """The ``(label, data)`` of every button one turn showed, in the order a number presses
    them: reply by reply, row by row, left to right; the share-contact button left out. This
    is what :attr:`~flows.types.Session.shown` keeps, at most :data:`SHOWN_MAX` of them."""
    shown = tuple((button.label, button.data) for reply in replies for row in reply.buttons
                  for button in row if button.data != CONTACT)
    return shown[:SHOWN_MAX]


def typed_number(text: str) -> int | None:
    """``n`` for one or two ASCII digits, optionally followed by "." or ")" (``"2"``,
    ``" 2. "``, ``"12)"``), else ``None``."""
    found = _NUMBER.fullmatch(text.strip())
    return None if found is None else int(found.group(1))


def typed_press(text: str, labels: Sequence[str], *, numbers: bool = True) -> int | None:
    """The index of the button ``text`` presses among ``labels`` (the turn's
    :func:`shown_buttons`), or ``None``: a label with the same words, a paging word, else
    (when ``numbers``) a button's number."""
    index = typed_choice(text, labels)
    if index is not None or not numbers:
        return index
    number = typed_number(text)
    return number - 1 if number is not None and 1 <= number <= len(labels) else None

"""Typed text read as a press of a button on screen: "lebih lama" presses "Lebih lama ▶".

Labels and typed text are compared by their words only: case, arrows, emoji and punctuation do
not count. Paging words ("selanjutnya", "next", "sebelumnya", "back", ...) press the button
whose label carries a forward (▶) or backward (◀) arrow. Pure; used by the engine for every
channel and by the console for its numbered buttons.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_NON_WORD = re.compile(r"[^\w]+")
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

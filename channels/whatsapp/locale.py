"""Which language a chat's replies are in, read back from the replies themselves.

WhatsApp sends no language with a message, and the engine keeps the member's choice in the
session, which only it reads. The channel's own few words (the list button "Pilih"/"Choose",
the phone confirmation, the template language) must match the conversation, so
:class:`LocaleGuesser` recognises the fixed parts of the catalogs' translations in the rendered
text and labels. Text found in both languages (``"FAQ"``, ``"English"``) proves nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from babel.messages.pofile import read_po

from flows.i18n import DOMAIN, LOCALES, LOCALES_DIR
from flows.types import Reply

__all__ = ["LocaleGuesser"]

_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_MIN_FRAGMENT = 6  # shorter fixed parts ("KPJ ", "Rp") say nothing about the language


class LocaleGuesser:
    """Guesses the locale of rendered replies from the translations in the catalogs."""

    def __init__(self, directory: Path = LOCALES_DIR) -> None:
        found = {loc: _fragments(directory / loc / "LC_MESSAGES" / f"{DOMAIN}.po", loc)
                 for loc in LOCALES}
        shared = set.intersection(*found.values()) if found else set()
        self._fragments = {loc: tuple(sorted(frags - shared, key=len, reverse=True))
                           for loc, frags in found.items()}

    def guess(self, replies: Sequence[Reply]) -> str | None:
        """The locale most of the replies' fixed wording belongs to; ``None`` when unclear."""
        texts = [r.text for r in replies] + [b.label for r in replies
                                             for row in r.buttons for b in row]
        scores = {loc: _score(frags, texts) for loc, frags in self._fragments.items()}
        best = max(scores.values(), default=0)
        winners = [loc for loc, score in scores.items() if score == best]
        return winners[0] if best and len(winners) == 1 else None


def _score(fragments: Iterable[str], texts: Sequence[str]) -> int:
    return sum(1 for fragment in fragments if any(fragment in text for text in texts))


def _fragments(path: Path, locale: str) -> set[str]:
    if not path.exists():
        return set()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    found: set[str] = set()
    for message in catalog:
        if not message.id:
            continue
        raw = message.string
        strings = [raw] if isinstance(raw, str) else list(raw or ())
        for text in strings:
            found.update(part.strip() for part in _PLACEHOLDER.split(text or "")
                         if len(part.strip()) >= _MIN_FRAGMENT)
    return found

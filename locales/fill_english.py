"""Fill empty English translations with their msgid (the source text is English).

    uv run python -m locales.fill_english

Run it after ``pybabel update``; edit an English ``msgstr`` by hand to change wording without
changing the message id.
"""

from __future__ import annotations

from babel.messages.pofile import read_po, write_po

from flows.i18n import LOCALES_DIR


def main() -> int:
    """Copy msgid to every empty English msgstr; print how many were filled."""
    path = LOCALES_DIR / "en" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale="en")
    filled = 0
    for message in catalog:
        strings = (message.string,) if isinstance(message.string, str) else message.string
        if message.id and not all(strings):
            message.string = message.id
            message.flags.discard("fuzzy")
            filled += 1
    with path.open("wb") as handle:
        write_po(handle, catalog, sort_output=True)
    print(f"filled {filled} English entr{'y' if filled == 1 else 'ies'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Translation of message ids into the member's language (gettext catalogs via Babel).

Message ids are the English source text. Catalogs live in ``locales/<lang>/LC_MESSAGES/
messages.po`` and are read directly (no compile step), so a fresh clone runs as it is.
Parameters that are :class:`~flows.types.Money` or dates are formatted for the locale.
"""

from __future__ import annotations

import gettext
import io
import string
from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import (
    format_decimal,
    get_currency_symbol,
    get_group_symbol,
    get_minus_sign_symbol,
)

from flows.types import Money, Month, Text

LOCALES: tuple[str, ...] = ("id", "en")
DEFAULT_LOCALE = "id"
LOCALES_DIR = Path(__file__).resolve().parents[1] / "locales"
DOMAIN = "messages"
# CLDR "English (Indonesia)" names dates as Indonesians expect ("17 August 2026").
_BABEL_LOCALE = {"id": "id_ID", "en": "en_ID"}
# Rupiah carry their home symbol (Rp) and the reader's digit grouping: Rp12.345.678 in
# Indonesian, Rp12,345,678 in English (whose texts write 3.7% with a decimal point).
_MONEY_LOCALE = {"id_ID": "id_ID", "en_ID": "en"}
_RUPIAH_HOME = "id_ID"


def N_(msgid: str) -> str:  # noqa: N802 - the gettext convention for a no-op marker
    """Mark ``msgid`` for extraction by ``pybabel extract`` without translating it now."""
    return msgid


def pick_locale(language_code: str) -> str:
    """The supported locale for a platform language code ("en-US" -> "en"), else Indonesian."""
    lang = language_code.strip().lower().replace("_", "-").split("-", 1)[0]
    return lang if lang in LOCALES else DEFAULT_LOCALE


def placeholders(text: str) -> set[str]:
    """The ``{name}`` fields of a message."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _load(locale: str, directory: Path) -> gettext.NullTranslations:
    path = directory / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class MissingTranslation(KeyError):
    """A strict catalog was asked for a message id that no catalog holds."""


class Catalog:
    """Renders :class:`Text` in a locale; loaded once at start-up.

    A ``strict`` catalog (the tests use one) raises :class:`MissingTranslation` for a message
    id missing from any locale, so every message the flows can say is proven translated.
    """

    def __init__(self, directory: Path = LOCALES_DIR, *, strict: bool = False) -> None:
        self._translations = {loc: _load(loc, directory) for loc in LOCALES}
        self._strict = strict
        self._known = {loc: _msgids(loc, directory) for loc in LOCALES} if strict else {}

    def render(self, text: Text, locale: str) -> str:
        """The translated, formatted message."""
        tr = self._translations.get(locale) or self._translations[DEFAULT_LOCALE]
        if self._strict and any(text.msgid not in ids for ids in self._known.values()):
            raise MissingTranslation(text.msgid)
        if text.plural is not None and text.n is not None:
            template = tr.ngettext(text.msgid, text.plural, text.n)
        else:
            template = tr.gettext(text.msgid)
        values = {name: self.format_value(value, locale) for name, value in text.params.items()}
        if text.n is not None:
            values.setdefault("n", self.format_value(text.n, locale))
        return template.format_map(_Strict(values)) if "{" in template else template

    def format_value(self, value: Any, locale: str) -> str:
        """One parameter value as the locale writes it."""
        if isinstance(value, Text):
            return self.render(value, locale)
        if isinstance(value, tuple):
            return "\n".join(self.format_value(item, locale) for item in value)
        babel_locale = _BABEL_LOCALE.get(locale, _BABEL_LOCALE[DEFAULT_LOCALE])
        formatter = next((f for kind, f in _FORMATTERS if isinstance(value, kind)), None)
        return formatter(value, babel_locale) if formatter else str(value)


def _money(value: Money, locale: str) -> str:
    """Rupiah as ``format_decimal(x, format="Rp#,##0")`` writes them in the reader's locale,
    without parsing the pattern for every amount (a balance card holds four; tests compare
    with Babel)."""
    minus, symbol, group = _money_symbols(locale)
    digits = f"{abs(value.rupiah):,}".replace(",", group)
    return f"{minus if value.rupiah < 0 else ''}{symbol}{digits}"


@cache
def _money_symbols(locale: str) -> tuple[str, str, str]:
    reader = _MONEY_LOCALE.get(locale, locale)
    return (get_minus_sign_symbol(reader), get_currency_symbol("IDR", _RUPIAH_HOME),
            get_group_symbol(reader))


@lru_cache(maxsize=4096)  # a few dates recur in every answer (today, recent months)
def _month(value: Month, locale: str) -> str:
    return format_date(date(value.year, value.month, 1), "MMMM y", locale=locale)


@lru_cache(maxsize=4096)
def _date(value: date, locale: str) -> str:
    return format_date(value, "long", locale=locale)


def _number(value: int, locale: str) -> str:
    return str(value) if isinstance(value, bool) else format_decimal(value, locale=locale)


# Order matters: datetime is a date, bool is an int.
_FORMATTERS: tuple[tuple[type, Callable[[Any, str], str]], ...] = (
    (Money, _money),
    (Month, _month),
    (datetime, lambda v, loc: format_datetime(v, "d MMM y HH:mm", locale=loc)),
    (date, _date),
    (int, _number),
)


def _msgids(locale: str, directory: Path) -> frozenset[str]:
    path = directory / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    return frozenset(m.id if isinstance(m.id, str) else m.id[0]
                     for m in catalog if m.id and m.string)


class _Strict(dict[str, str]):
    """A format mapping that leaves an unknown ``{field}`` visible instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)

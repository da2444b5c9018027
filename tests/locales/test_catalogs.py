"""Both catalogs are complete, clean, consistent with each other and with the code."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog as PoCatalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.i18n import LOCALES, LOCALES_DIR, Catalog, MissingTranslation, pick_locale, placeholders
from flows.types import Money, Text
from locales.extractor import extract

_CATALOG = Catalog()

ROOT = Path(__file__).resolve().parents[2]


def _catalog(locale: str) -> PoCatalog:
    with (LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


def _entries(locale: str) -> dict[str, tuple[tuple[str, ...], tuple[str, ...], set[str]]]:
    """msgid -> (msgid forms, msgstr forms, flags)."""
    out = {}
    for message in _catalog(locale):
        if not message.id:
            continue
        ids = (message.id,) if isinstance(message.id, str) else tuple(message.id)
        strings = ((message.string,) if isinstance(message.string, str)
                   else tuple(message.string or ()))
        out[ids[0]] = (ids, strings, set(message.flags))
    return out


def _code_msgids() -> set[str]:
    found: set[str] = set()
    paths = [path for folder in ("flows", "channels", "app", "statements")
             for path in ROOT.joinpath(folder).rglob("*.py")]
    for path in sorted(paths):
        with path.open("rb") as handle:
            for _, _, message, _ in extract(handle, (), (), {}):
                found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated_without_fuzzy_entries(locale: str) -> None:
    problems = [ids[0][:60] for ids, strings, flags in _entries(locale).values()
                if not all(s.strip() for s in strings) or "fuzzy" in flags]
    assert problems == []


@pytest.mark.parametrize("locale", LOCALES)
def test_placeholders_of_each_translation_match_its_msgid(locale: str) -> None:
    for ids, strings, _ in _entries(locale).values():
        expected = set().union(*(placeholders(i) for i in ids))
        for string in strings:
            assert placeholders(string) == expected, (ids[0][:60], string[:60])


def test_both_locales_hold_the_same_msgids() -> None:
    assert set(_entries("id")) == set(_entries("en"))


def test_catalogs_hold_exactly_what_the_code_says() -> None:
    in_code = _code_msgids()
    in_catalog = set(_entries("id"))
    assert in_code - in_catalog == set(), "run the pybabel steps in the README"
    assert in_catalog - in_code == set(), "stale entries: run pybabel update"


def test_template_is_in_sync_with_the_catalogs() -> None:
    with (LOCALES_DIR / "messages.pot").open("rb") as handle:
        template = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}
    assert template == set(_entries("id"))


def test_babel_extract_does_not_miss_nested_markers() -> None:
    method = [("**.py", "locales.extractor:extract")]
    rows = list(extract_from_dir(str(ROOT / "flows"), method_map=method,
                                 options_map={"**.py": {}},
                                 keywords={"N_": None, "ngettext": (1, 2)}))
    assert any(row[2] == "Check balance" for row in rows)


def test_rupiah_and_dates_are_formatted_for_each_language() -> None:
    catalog = Catalog()
    assert catalog.format_value(Money(12_345_678), "id") == "Rp12.345.678"
    assert catalog.format_value(Money(12_345_678), "en") == "Rp12,345,678"
    assert catalog.format_value(date(2026, 8, 17), "id") == "17 Agustus 2026"
    assert catalog.format_value(date(2026, 8, 17), "en") == "17 August 2026"


def test_plural_forms_choose_by_count() -> None:
    catalog = Catalog()
    one = Text("That code is not right. You have {n} try left.",
               plural="That code is not right. You have {n} tries left.", n=1)
    four = Text(one.msgid, plural=one.plural, n=4)
    assert catalog.render(one, "en").endswith("1 try left.")
    assert catalog.render(four, "en").endswith("4 tries left.")
    assert "4 kali" in catalog.render(four, "id")


def test_strict_catalog_refuses_an_untranslated_message() -> None:
    with pytest.raises(MissingTranslation):
        Catalog(strict=True).render(Text("Not in any catalog"), "id")
    assert Catalog().render(Text("Not in any catalog"), "id") == "Not in any catalog"


@pytest.mark.parametrize(("code", "expected"), [
    ("en-US", "en"), ("en", "en"), ("id", "id"), ("in", "id"), ("ms", "id"), ("", "id"),
    ("EN_gb", "en"),
])
def test_platform_language_code_picks_a_locale(code: str, expected: str) -> None:
    assert pick_locale(code) == expected


@settings(max_examples=300)
@given(rupiah=st.integers(min_value=-10**13, max_value=10**13), locale=st.sampled_from(LOCALES))
def test_rupiah_are_written_exactly_as_babel_writes_them(rupiah: int, locale: str) -> None:
    reader = {"id": "id_ID", "en": "en"}[locale]
    expected = format_decimal(rupiah, format="Rp#,##0", locale=reader)
    assert _CATALOG.format_value(Money(rupiah), locale) == expected
    if locale == "id":
        assert expected == format_currency(rupiah, "IDR", locale="id_ID", format="¤#,##0",
                                           currency_digits=False)


@pytest.mark.parametrize(("locale", "written"), [("id", "Rp8.612.151"), ("en", "Rp8,612,151")])
def test_a_balance_reads_as_members_expect(locale: str, written: str) -> None:
    assert _CATALOG.format_value(Money(8_612_151), locale) == written

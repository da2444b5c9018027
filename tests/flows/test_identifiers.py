"""Tests for :mod:`flows.identifiers`: table-driven cases per parser, then properties."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.identifiers import (
    PROVINCE_CODES,
    Nik,
    Problem,
    find_otp,
    holds_otp,
    mask_email,
    mask_kpj,
    mask_nik,
    mask_phone,
    parse_birth_date,
    parse_email,
    parse_kpj,
    parse_nik,
    parse_otp,
    parse_phone,
    same_phone,
)

TODAY = date(2025, 6, 15)
WOMAN_NIK = "3171014501900001"  # a woman born 05-01-1990 (day 45 = 5 + 40)


# --- NIK -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("3171010501900001", ("31", 5, 1, 90, False)),
        (WOMAN_NIK, ("31", 5, 1, 90, True)),
        ("3171 0145 0190 0001", ("31", 5, 1, 90, True)),
        ("3171.0145.0190.0001", ("31", 5, 1, 90, True)),
        ("3171-0145-0190-0001", ("31", 5, 1, 90, True)),
        (" 3171014501900001\n", ("31", 5, 1, 90, True)),
        ("3171017101900001", ("31", 31, 1, 90, True)),  # woman's highest day: 31 + 40
        ("1101013112859999", ("11", 31, 12, 85, False)),  # Aceh
        ("9671014106050001", ("96", 1, 6, 5, True)),  # Papua Barat Daya, created in 2022
        ("3171012902000001", ("31", 29, 2, 0, False)),  # leap day: 2000 (and not 1900)
        ("3171016902960001", ("31", 29, 2, 96, True)),  # woman's leap day
    ],
)
def test_parse_nik_accepts(text: str, fields: tuple[str, int, int, int, bool]) -> None:
    nik = parse_nik(text)
    assert isinstance(nik, Nik)
    assert (nik.province, nik.day, nik.month, nik.yy, nik.female) == fields
    assert nik.digits == re.sub(r"\D", "", text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", Problem.EMPTY),
        ("   ", Problem.EMPTY),
        ("3171O14501900001", Problem.NOT_DIGITS),  # letter O for zero
        ("NIK 3171014501900001", Problem.NOT_DIGITS),
        ("٣١٧١٠١٤٥٠١٩٠٠٠٠١", Problem.NOT_DIGITS),  # Arabic-Indic digits
        ("--", Problem.NOT_DIGITS),
        ("317101450190001", Problem.TOO_SHORT),
        ("31710145019000011", Problem.TOO_LONG),
        ("0071014501900001", Problem.BAD_PROVINCE),
        ("1071014501900001", Problem.BAD_PROVINCE),
        ("2071014501900001", Problem.BAD_PROVINCE),
        ("3771014501900001", Problem.BAD_PROVINCE),
        ("5471014501900001", Problem.BAD_PROVINCE),  # Timor Timur, gone before NIKs existed
        ("9771014501900001", Problem.BAD_PROVINCE),
        ("3171010001900001", Problem.BAD_BIRTH_DATE_IN_NIK),  # day 0
        ("3171013201900001", Problem.BAD_BIRTH_DATE_IN_NIK),  # day 32
        ("3171014001900001", Problem.BAD_BIRTH_DATE_IN_NIK),  # day 40: neither man nor woman
        ("3171017201900001", Problem.BAD_BIRTH_DATE_IN_NIK),  # woman, day 32
        ("3171013104900001", Problem.BAD_BIRTH_DATE_IN_NIK),  # 31 April
        ("3171010500900001", Problem.BAD_BIRTH_DATE_IN_NIK),  # month 0
        ("3171010513900001", Problem.BAD_BIRTH_DATE_IN_NIK),  # month 13
        ("3171012902010001", Problem.BAD_BIRTH_DATE_IN_NIK),  # 29 Feb in neither 1901 nor 2001
        ("3171014501900000", Problem.BAD_SERIAL),
    ],
)
def test_parse_nik_rejects(text: str, problem: Problem) -> None:
    assert parse_nik(text) is problem


def test_nik_matches_birth_date_day_month_and_two_digit_year() -> None:
    nik = parse_nik(WOMAN_NIK)
    assert isinstance(nik, Nik)
    assert nik.matches_birth_date(date(1990, 1, 5))
    assert nik.matches_birth_date(date(1890, 1, 5))  # the century is not encoded


@pytest.mark.parametrize("stated", [date(1990, 1, 6), date(1990, 2, 5), date(1991, 1, 5)])
def test_nik_birth_date_mismatch_is_detected(stated: date) -> None:
    nik = parse_nik(WOMAN_NIK)
    assert isinstance(nik, Nik)
    assert not nik.matches_birth_date(stated)


def test_nik_and_typed_birth_date_agree_end_to_end() -> None:
    nik, birth = parse_nik("3171 0145 0190 0001"), parse_birth_date("5 Januari 1990", TODAY)
    assert isinstance(nik, Nik)
    assert isinstance(birth, date)
    assert nik.matches_birth_date(birth)


def test_nik_repr_never_shows_the_full_number() -> None:
    nik = parse_nik(WOMAN_NIK)
    assert WOMAN_NIK not in repr(nik)
    assert "3171********0001" in repr(nik)


def test_province_codes_are_the_38_provinces() -> None:
    assert len(PROVINCE_CODES) == 38
    assert {"11", "21", "31", "36", "51", "65", "76", "82", "91", "96"} <= PROVINCE_CODES


# --- KPJ and OTP -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12345678901", "12345678901"),
        ("123 4567 8901", "12345678901"),
        ("123-456-789.01", "12345678901"),
        ("", Problem.EMPTY),
        ("1234567890a", Problem.NOT_DIGITS),
        ("1234567890", Problem.TOO_SHORT),
        ("123456789012", Problem.TOO_LONG),
    ],
)
def test_parse_kpj(text: str, expected: str | Problem) -> None:
    assert parse_kpj(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("123456", "123456"),
        ("123 456", "123456"),
        ("123-456", "123456"),
        (" 123456\n", "123456"),
        ("", Problem.EMPTY),
        ("12a456", Problem.NOT_DIGITS),
        ("١٢٣٤٥٦", Problem.NOT_DIGITS),
        ("12345", Problem.TOO_SHORT),
        ("1234567", Problem.TOO_LONG),
    ],
)
def test_parse_otp(text: str, expected: str | Problem) -> None:
    assert parse_otp(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("637633", "637633"),
        ("kodenya 637633", "637633"),
        ("kode saya 637633", "637633"),
        ("my code is 637 633", "637633"),
        ("Kode OTP: 637-633.", "637633"),
        ("1", None),  # a console button number or a stray digit
        ("12345", None),
        ("1234567", None),
        ("kode 637633 atau 123456", None),  # two codes: which one?
        ("nik 3171014501900001", None),
        ("６３７６３３", None),  # full-width digits are not what was sent
        ("kode saya " + "sekali lagi " * 10 + "637633", None),  # not a short message
    ],
)
def test_find_otp_takes_one_code_from_a_short_message(text: str, expected: str | None) -> None:
    assert find_otp(text) == expected


@pytest.mark.parametrize(
    ("text", "holds_code"),
    [
        ("637633", True),
        ("kodenya 637 633", True),
        ("kode 637633 atau 123456", True),
        ("kode saya " + "sekali lagi " * 10 + "637633", True),
        ("1", False),
        ("12345", False),
        ("1234567", False),
        ("3171014501900001", False),
        ("halo", False),
    ],
)
def test_holds_otp_only_for_a_message_that_looks_like_a_code(text: str, holds_code: bool) -> None:
    assert holds_otp(text) is holds_code


# --- Birth date ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("05-01-1990", date(1990, 1, 5)),
        ("5-1-1990", date(1990, 1, 5)),
        ("05/01/1990", date(1990, 1, 5)),
        ("05.01.1990", date(1990, 1, 5)),
        ("05 01 1990", date(1990, 1, 5)),
        ("5/1/1990", date(1990, 1, 5)),
        ("5 1 1990", date(1990, 1, 5)),
        ("05.01.1990", date(1990, 1, 5)),
        ("5 - 1 - 1990", date(1990, 1, 5)),
        ("05011990", date(1990, 1, 5)),
        ("1990-01-05", date(1990, 1, 5)),
        ("5 Januari 1990", date(1990, 1, 5)),
        ("5 JAN 1990", date(1990, 1, 5)),
        ("05-Jan-1990", date(1990, 1, 5)),
        ("17 Agustus 1985", date(1985, 8, 17)),
        ("17 Agt 1985", date(1985, 8, 17)),
        ("17 August 1985", date(1985, 8, 17)),
        ("1 Mei 2000", date(2000, 5, 1)),
        ("1 Okt 2000", date(2000, 10, 1)),
        ("25 Des 1970", date(1970, 12, 25)),
        ("5 sept. 1990", date(1990, 9, 5)),
        ("January 5, 1990", date(1990, 1, 5)),
        ("Jan 5th 1990", date(1990, 1, 5)),
        ("29-02-2000", date(2000, 2, 29)),
        ("29-02-1996", date(1996, 2, 29)),
        ("15-06-2025", TODAY),
        ("15-06-1905", date(1905, 6, 15)),  # exactly 120 years old
        ("05-01-1990" + " " * 100, date(1990, 1, 5)),
    ],
)
def test_parse_birth_date_accepts(text: str, expected: date) -> None:
    assert parse_birth_date(text, TODAY) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", Problem.EMPTY),
        ("  ", Problem.EMPTY),
        ("05-01-90", Problem.SHORT_YEAR),  # two-digit year: century unknown
        ("5/1/90", Problem.SHORT_YEAR),
        ("5 1 90", Problem.SHORT_YEAR),
        ("050190", Problem.SHORT_YEAR),
        ("5 Jan 90", Problem.SHORT_YEAR),
        ("Jan 5, 90", Problem.SHORT_YEAR),
        ("kemarin", Problem.BAD_DATE_FORMAT),
        ("5 Foo 1990", Problem.BAD_DATE_FORMAT),
        ("5111990", Problem.BAD_DATE_FORMAT),  # 51-1 or 5-11: ambiguous without separators
        ("0" * 1000, Problem.BAD_DATE_FORMAT),
        ("31-02-1990", Problem.IMPOSSIBLE_DATE),
        ("29-02-1900", Problem.IMPOSSIBLE_DATE),
        ("29-02-2023", Problem.IMPOSSIBLE_DATE),
        ("00-01-1990", Problem.IMPOSSIBLE_DATE),
        ("05-13-1990", Problem.IMPOSSIBLE_DATE),
        ("01-01-0000", Problem.IMPOSSIBLE_DATE),
        ("16-06-2025", Problem.FUTURE_DATE),
        ("05-01-2090", Problem.FUTURE_DATE),
        ("14-06-1905", Problem.TOO_OLD),
        ("01-01-0001", Problem.TOO_OLD),
    ],
)
def test_parse_birth_date_rejects(text: str, problem: Problem) -> None:
    assert parse_birth_date(text, TODAY) is problem


def test_too_old_boundary_when_today_is_a_leap_day() -> None:
    leap_today = date(2020, 2, 29)  # 120 years earlier, 1900, has no 29 February
    assert parse_birth_date("28-02-1900", leap_today) == date(1900, 2, 28)
    assert parse_birth_date("27-02-1900", leap_today) is Problem.TOO_OLD


# --- Phone -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "081234567890",
        "0812-3456-7890",
        "0812 3456 7890",
        "0812.3456.7890",
        "(0812) 3456 7890",
        "6281234567890",
        "+6281234567890",
        "+62 812 3456 7890",
        "+62-812-3456-7890",
        "+62 (0)812 3456 7890",
        "0062 812 3456 7890",
        "81234567890",
    ],
)
def test_parse_phone_normalises_to_e164(text: str) -> None:
    assert parse_phone(text) == "+6281234567890"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0812345678", "+62812345678"),  # shortest: 10 digits in 08 form
        ("0812345678901", "+62812345678901"),  # longest: 13 digits
        ("", Problem.EMPTY),
        ("0812-ABCD-7890", Problem.NOT_DIGITS),
        ("+", Problem.NOT_DIGITS),
        ("081234567", Problem.TOO_SHORT),
        ("0812", Problem.TOO_SHORT),
        ("+62", Problem.TOO_SHORT),
        ("08123456789012", Problem.TOO_LONG),
        ("021 5551234", Problem.NOT_MOBILE),  # Jakarta landline
        ("+62 21 5551234", Problem.NOT_MOBILE),
        ("+1 415 555 2671", Problem.NOT_MOBILE),
        ("+60 12 345 6789", Problem.NOT_MOBILE),  # Malaysia
        ("0800 1 234 567", Problem.NOT_MOBILE),  # toll-free
    ],
)
def test_parse_phone_cases(text: str, expected: str | Problem) -> None:
    assert parse_phone(text) == expected


@pytest.mark.parametrize(
    ("typed", "on_file", "same"),
    [
        ("0812-3456-7890", "+6281234567890", True),
        ("+62 812 3456 7890", "6281234567890", True),
        ("0812-3456-7891", "+6281234567890", False),
        ("not a phone", "not a phone", False),
        ("", "+6281234567890", False),
    ],
)
def test_same_phone(typed: str, on_file: str, same: bool) -> None:
    assert same_phone(typed, on_file) is same


# --- Email -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("budi@example.com", "budi@example.com"),
        ("Budi.Santoso@Example.CO.ID", "Budi.Santoso@example.co.id"),
        (" budi+bpjs@gmail.com \n", "budi+bpjs@gmail.com"),
        ("", Problem.EMPTY),
        ("budi", Problem.BAD_EMAIL),
        ("budi@", Problem.BAD_EMAIL),
        ("@example.com", Problem.BAD_EMAIL),
        ("budi@example", Problem.BAD_EMAIL),
        ("budi@@example.com", Problem.BAD_EMAIL),
        ("bu di@example.com", Problem.BAD_EMAIL),
        ("budi@exa_mple.com", Problem.BAD_EMAIL),
        ("budi..s@example.com", Problem.BAD_EMAIL),
        (".budi@example.com", Problem.BAD_EMAIL),
        ("budi@-example.com", Problem.BAD_EMAIL),
        ("budi@example.c", Problem.BAD_EMAIL),
        ("b" * 65 + "@example.com", Problem.BAD_EMAIL),
    ],
)
def test_parse_email(text: str, expected: str | Problem) -> None:
    assert parse_email(text) == expected


# --- Masks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mask", "value", "expected"),
    [
        (mask_nik, "3171014501900001", "3171********0001"),
        (mask_nik, "3171 0145 0190 0001", "3171********0001"),
        (mask_nik, "", ""),
        (mask_nik, "123", "***"),
        (mask_nik, "1234567890", "12********"),
        (mask_kpj, "12345678901", "123*****901"),
        (mask_kpj, "1234", "****"),
        (mask_phone, "+6281234567890", "0812****7890"),
        (mask_phone, "0812-3456-7890", "0812****7890"),
        (mask_phone, "0812345678", "0812****78"),
        (mask_phone, "12", "**"),
        (mask_email, "budi@example.com", "b***@example.com"),
        (mask_email, "Budi@Example.COM", "B***@example.com"),
        (mask_email, "b@example.com", "***@example.com"),
        (mask_email, "no at sign", "***"),
        (mask_email, "", "***"),
    ],
)
def test_masks(mask: Callable[[str], str], value: str, expected: str) -> None:
    assert mask(value) == expected


# --- Properties ------------------------------------------------------------------------------

PARSERS: list[tuple[Callable[[str], object], type]] = [
    (parse_nik, Nik),
    (parse_kpj, str),
    (parse_otp, str),
    (parse_phone, str),
    (parse_email, str),
    (lambda text: parse_birth_date(text, TODAY), date),
]
typed_text = st.text() | st.text(alphabet="0123456789 -./+()@aJnu")


@given(text=typed_text)
def test_a_found_code_is_six_ascii_digits_and_its_message_is_deleted(text: str) -> None:
    code = find_otp(text)
    assert code is None or (len(code) == 6 and code.isascii() and code.isdigit())
    assert code is None or holds_otp(text)


@pytest.mark.parametrize(("parse", "value_type"), PARSERS)
@given(text=typed_text)
def test_parsers_never_raise_and_return_a_value_or_a_problem(
    parse: Callable[[str], object], value_type: type, text: str
) -> None:
    result = parse(text)
    assert isinstance(result, Problem) or (
        isinstance(result, value_type) and not isinstance(result, Problem)
    )


@given(
    province=st.sampled_from(sorted(PROVINCE_CODES)),
    birth=st.dates(date(1900, 1, 1), date(2099, 12, 31)),
    female=st.booleans(),
    area_and_serial=st.tuples(st.integers(0, 9999), st.integers(1, 9999)),
    separator=st.sampled_from(["", " ", ".", "-"]),
)
def test_any_well_formed_nik_parses_back_to_its_fields(
    province: str, birth: date, female: bool, area_and_serial: tuple[int, int], separator: str
) -> None:
    area, serial = area_and_serial
    day = birth.day + 40 if female else birth.day
    digits = f"{province}{area:04d}{day:02d}{birth.month:02d}{birth.year % 100:02d}{serial:04d}"
    typed = separator.join(digits[i : i + 4] for i in range(0, 16, 4))
    nik = parse_nik(typed)
    assert nik == Nik(digits, province, birth.day, birth.month, birth.year % 100, female)
    assert isinstance(nik, Nik)
    assert nik.matches_birth_date(birth)


@given(birth=st.dates(date(1905, 6, 15), TODAY), style=st.sampled_from(
    ["%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y", "%d %m %Y", "%d%m%Y", "%Y-%m-%d", "%d %B %Y", "%d %b %Y"]
))
def test_any_real_birth_date_round_trips(birth: date, style: str) -> None:
    assert parse_birth_date(birth.strftime(style), TODAY) == birth


@st.composite
def phone_variants(draw: st.DrawFn) -> tuple[str, str]:
    """A valid national number and one way a member might type it."""
    national = "8" + draw(st.sampled_from("1235789")) + draw(
        st.text(alphabet="0123456789", min_size=7, max_size=10)
    )
    prefix = draw(st.sampled_from(["0", "62", "+62", "+62 ", "+62-", "0062 ", "+62 (0)", ""]))
    separator = draw(st.sampled_from(["", " ", "-", "."]))
    cuts = sorted(draw(st.sets(st.integers(1, len(national) - 1), max_size=4)))
    groups = [national[a:b] for a, b in zip([0, *cuts], [*cuts, len(national)], strict=True)]
    return national, prefix + separator.join(groups)


@given(variant=phone_variants(), other=phone_variants())
def test_any_valid_phone_round_trips_to_e164(
    variant: tuple[str, str], other: tuple[str, str]
) -> None:
    national, typed = variant
    assert parse_phone(typed) == "+62" + national
    assert same_phone(typed, "0" + national)
    assert same_phone(typed, other[1]) is (national == other[0])
    assert mask_phone(typed) == mask_phone("+62" + national)


def _original_digits(masked: str) -> int:
    return sum(ch.isdigit() for ch in masked)


@given(value=typed_text | st.text(alphabet="0123456789", max_size=30))
def test_masks_never_reveal_more_than_allowed(value: str) -> None:
    for mask, allowed in ((mask_nik, 8), (mask_kpj, 6), (mask_phone, 8)):
        masked = mask(value)
        assert _original_digits(masked) <= allowed
        assert len(masked) - masked.count("*") <= allowed
        if any(ch.isdigit() for ch in value):
            assert "*" in masked


@given(local=st.from_regex(r"[a-z0-9._+]{1,20}", fullmatch=True), domain=st.sampled_from(
    ["example.com", "gmail.com", "bpjsketenagakerjaan.go.id"]
))
def test_mask_email_shows_at_most_the_first_character(local: str, domain: str) -> None:
    masked_local, _, masked_domain = mask_email(f"{local}@{domain}").partition("@")
    assert masked_domain == domain
    assert masked_local == (local[0] + "***" if len(local) > 1 else "***")


@pytest.mark.parametrize(("name", "masked"), [
    ("Siti Rahayu", "S*** R*****"), ("Dewi  Lestari ", "D*** L******"),
    ("M. Yusuf", "M. Y****"), ("Ni Kadek Ayu", "N* K**** A**"), ("Ñoño", "Ñ***"), ("", ""),
])
def test_mask_name_keeps_only_initials(name: str, masked: str) -> None:
    from flows.identifiers import mask_name

    assert mask_name(name) == masked


@given(name=st.text(max_size=40))
def test_mask_name_shows_one_character_per_part(name: str) -> None:
    from flows.identifiers import mask_name

    masked = mask_name(name)
    assert len(masked) == len(" ".join(name.split()))
    shown = re.findall(r"\w+", masked)
    assert all(len(part) == 1 for part in shown)
    assert len(shown) == len(re.findall(r"\w+", name))

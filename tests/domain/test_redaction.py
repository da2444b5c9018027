"""What reaches an agent or a transcript: no raw identifier survives, ordinary text is kept."""

from __future__ import annotations

import re
from datetime import date

from hypothesis import example, given, settings
from hypothesis import strategies as st

from domain.redaction import CODE_MASK, redact
from flows.identifiers import PROVINCE_CODES, Nik, mask_kpj, mask_nik, parse_nik

SENTENCE = "NIK saya 3171014501900001 dan HP 081234567890, KPJ 12345678901"


def test_the_reported_message_is_masked_as_the_agents_see_it() -> None:
    assert redact(SENTENCE) == "NIK saya 3171********0001 dan HP 0812****7890, KPJ 123*****901"


def test_phone_forms_members_type() -> None:
    for typed in ("081234567890", "+6281234567890", "+62 812 3456 7890", "6281234567890",
                  "0812-3456-7890", "0812 3456 7890", "+62 812-3456-7890", "0062 812 3456 7890",
                  "+62 (0)812 3456 7890"):
        assert redact(f"hp {typed} ya") == "hp 0812****7890 ya", typed


def test_email_keeps_its_domain_only() -> None:
    assert redact("email siti@example.com.") == "email s***@example.com."
    assert redact("Siti.Rahayu+bpjs@Example.CO.ID") == "S***@example.co.id"


def test_a_code_is_masked_only_while_one_is_pending() -> None:
    assert redact("kodenya 637633") == "kodenya 637633"
    assert redact("kodenya 637633", otp_pending=True) == f"kodenya {CODE_MASK}"
    assert redact("kode 637 633.", otp_pending=True) == f"kode {CODE_MASK}."


def test_grouped_and_glued_identifiers() -> None:
    assert redact("3171 0145 0190 0001") == "3171********0001"
    assert redact("3171.0145.0190.0001") == "3171********0001"
    assert redact("NIK3171014501900001/KPJ12345678901") == "NIK3171********0001/KPJ123*****901"
    assert redact("kpj 123-4567-8901") == "kpj 123*****901"


ORDINARY = ("Saldo saya Rp1.500.000, harusnya Rp10.042.300 atau Rp 15.000.000.000",
            "lahir 05-01-1990, iuran 2026-09 dan 09/2026, tahun 2019 sampai 2030",
            "tiket #12 dan #123456 jam 09:00, Rp500000, RP15000000000",
            "Balance: Rp24,810,187 as of 20 Nov 2026; 1,500,000.50",
            "ok terima kasih 🙏 saya tunggu 5 menit")


def test_ordinary_text_is_left_alone() -> None:
    for text in ORDINARY:
        assert redact(text, otp_pending=True) == text


def _nik(province: str, born: date, serial: int, female: bool) -> str:
    day = born.day + (40 if female else 0)
    return f"{province}0101{day:02d}{born:%m%y}{serial:04d}"


niks = st.builds(_nik, st.sampled_from(sorted(PROVINCE_CODES)), st.dates(date(1900, 1, 1)),
                 st.integers(1, 9999), st.booleans())
mobiles = st.builds(lambda op, rest: f"8{op}{rest}", st.sampled_from("1235789"),
                    st.from_regex(r"[0-9]{7,10}", fullmatch=True))
phones = st.builds(lambda national, form, sep: form.format(
    sep.join(re.findall(r".{1,4}", national))), mobiles,
    st.sampled_from(["0{}", "+62{}", "62{}", "+62 {}"]), st.sampled_from(["", " ", "-"]))
# A KPJ starting 0 or 62 may also be a phone number: masked as one, which hides it as well.
kpjs = st.from_regex(r"[1-57-9][0-9]{10}", fullmatch=True)
codes = st.from_regex(r"[0-9]{6}", fullmatch=True)
emails = st.builds(lambda local, domain: f"{local}@{domain}.com",
                   st.from_regex(r"[a-z][a-z0-9._]{1,15}[a-z0-9]", fullmatch=True),
                   st.from_regex(r"[a-z]{2,10}", fullmatch=True))
words = st.lists(st.sampled_from(["saya", "dan", "HP", "NIK", "KPJ", "kode", "email", ",",
                                  "tolong", "cek", ":", "ya", "(", ")", "\n"]), max_size=4)
filler = words.map(" ".join)


@settings(max_examples=300)
@given(st.lists(st.tuples(filler, st.one_of(niks, phones, kpjs, emails, codes)),
                min_size=1, max_size=4), filler)
@example([("NIK saya", "3171014501900001"), ("dan HP", "081234567890"), ("KPJ", "12345678901"),
          ("email", "siti@example.com"), ("kode", "637633")], "")
def test_no_raw_value_survives(parts: list[tuple[str, str]], tail: str) -> None:
    text = " ".join(f"{before} {value}" for before, value in parts) + " " + tail
    redacted = redact(text, otp_pending=True)
    runs = re.findall(r"[0-9]+", re.sub(r"(?<=[0-9])[ -](?=[0-9])", "", redacted))
    for _, value in parts:
        assert value not in redacted, (value, redacted)
        digits = "" if "@" in value else re.sub(r"[^0-9]", "", value)
        assert not any(digits and digits in run for run in runs), (value, redacted)
    assert redact(redacted, otp_pending=True) == redacted, "idempotent"


@given(niks)
def test_a_nik_is_shown_as_the_bot_masks_it(nik: str) -> None:
    assert isinstance(parse_nik(nik), Nik)
    assert redact(nik) == mask_nik(nik)
    grouped = " ".join((nik[:4], nik[4:8], nik[8:12], nik[12:]))
    assert redact(f"NIK: {grouped}.") == f"NIK: {mask_nik(nik)}."


@given(kpjs)
def test_a_kpj_is_shown_as_the_bot_masks_it(kpj: str) -> None:
    assert redact(f"KPJ {kpj}") == f"KPJ {mask_kpj(kpj)}"


amounts = st.integers(0, 10**12).map(lambda n: f"Rp{n:,}".replace(",", "."))
dates = st.dates(date(1900, 1, 1)).map(lambda d: d.strftime("%d-%m-%Y"))
years = st.integers(1950, 2100).map(str)
tickets = st.integers(1, 10**6).map(lambda n: f"#{n}")


@given(st.lists(st.one_of(amounts, dates, years, tickets, filler), max_size=6))
def test_ordinary_values_are_never_touched(pieces: list[str]) -> None:
    text = " ".join(pieces)
    assert redact(text) == text


def test_a_date_then_a_year_is_not_a_phone_number() -> None:
    # Found by the property above: "08-10-2000 1950" was masked as 0810****1950.
    for text in ("08-10-2000 1950", "08.10.2000 1950", "lahir 08-10-2000 2026"):
        assert redact(text) == text
    assert redact("HP 0810-2000-1950") == "HP 0810****1950"

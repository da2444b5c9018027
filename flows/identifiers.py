"""Parsing, validation and masking of what a member types: NIK, KPJ, birth date, phone, OTP, email.

Every parser is a pure function that returns the parsed value or a :class:`Problem` naming what
is wrong, so a flow can answer on the spot with a message saying how to fix it. The maskers never
raise and never echo a full identifier back (PRODUCT.md, "Tone").
"""

from __future__ import annotations

import calendar
import hmac
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum, auto


class Problem(StrEnum):
    """What is wrong with a typed value; the value doubles as a message key."""

    EMPTY = auto()
    NOT_DIGITS = auto()
    TOO_SHORT = auto()
    TOO_LONG = auto()
    BAD_PROVINCE = auto()
    BAD_BIRTH_DATE_IN_NIK = auto()
    BAD_SERIAL = auto()
    BAD_DATE_FORMAT = auto()
    SHORT_YEAR = auto()
    IMPOSSIBLE_DATE = auto()
    FUTURE_DATE = auto()
    TOO_OLD = auto()
    NOT_MOBILE = auto()
    BAD_EMAIL = auto()


# Kemendagri province codes, including the four Papua provinces created in 2022 (93-96).
_PROVINCE_RANGES = ((11, 19), (21, 21), (31, 36), (51, 53), (61, 65), (71, 76), (81, 82), (91, 96))
PROVINCE_CODES: frozenset[str] = frozenset(
    str(code) for low, high in _PROVINCE_RANGES for code in range(low, high + 1)
)
NIK_LENGTH = 16
KPJ_LENGTH = 11
OTP_LENGTH = 6
MAX_AGE_YEARS = 120
_WOMAN_DAY_OFFSET = 40
_SEPARATORS = re.compile(r"[\s.\-]+")
_PHONE_SEPARATORS = re.compile(r"[\s.\-()]+")


@dataclass(frozen=True, slots=True)
class Nik:
    """A structurally valid NIK: ``PP KK CC DDMMYY SSSS`` (day + 40 for women)."""

    digits: str
    province: str
    day: int
    month: int
    yy: int
    female: bool

    def matches_birth_date(self, birth: date) -> bool:
        """Whether ``birth`` agrees with the NIK; the century is not encoded, only ``yy``."""
        return (birth.day, birth.month, birth.year % 100) == (self.day, self.month, self.yy)

    def __repr__(self) -> str:
        # Keeps full NIKs out of logs and tracebacks.
        return f"Nik({mask_nik(self.digits)})"


def _digits(text: str, length: int) -> str | Problem:
    """``text`` without separators if it is exactly ``length`` ASCII digits, else the problem."""
    if not text.strip():
        return Problem.EMPTY
    cleaned = _SEPARATORS.sub("", text)
    if not (cleaned.isascii() and cleaned.isdigit()):
        return Problem.NOT_DIGITS
    return _length_problem(len(cleaned), length, length) or cleaned


def _length_problem(length: int, low: int, high: int) -> Problem | None:
    if length < low:
        return Problem.TOO_SHORT
    return Problem.TOO_LONG if length > high else None


def parse_nik(text: str) -> Nik | Problem:
    """Parse a 16-digit NIK; spaces, dots or dashes between groups are tolerated."""
    digits = _digits(text, NIK_LENGTH)
    if isinstance(digits, Problem):
        return digits
    if digits[:2] not in PROVINCE_CODES:
        return Problem.BAD_PROVINCE
    raw_day, month, yy = int(digits[6:8]), int(digits[8:10]), int(digits[10:12])
    female = raw_day > _WOMAN_DAY_OFFSET
    day = raw_day - _WOMAN_DAY_OFFSET if female else raw_day
    # 20yy is a leap year whenever 19yy or 20yy is, so 29 February stays possible.
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(2000 + yy, month)[1]):
        return Problem.BAD_BIRTH_DATE_IN_NIK
    if digits[12:] == "0000":
        return Problem.BAD_SERIAL
    return Nik(digits, digits[:2], day, month, yy, female)


_NIK_RUN = re.compile(r"(?<!\d)\d(?:[\s.\-]?\d){15}(?!\d)")


def contains_nik(text: str) -> bool:
    """True when ``text`` holds a run of 16 digits that is a valid NIK (so it can be deleted)."""
    return any(isinstance(parse_nik(m.group()), Nik) for m in _NIK_RUN.finditer(text[:4000]))


def parse_kpj(text: str) -> str | Problem:
    """Parse an 11-digit KPJ (membership card) number; separators are tolerated."""
    return _digits(text, KPJ_LENGTH)


def parse_otp(text: str) -> str | Problem:
    """Parse a 6-digit one-time code; spaces or dashes inside ("123 456") are tolerated."""
    return _digits(text, OTP_LENGTH)


# A number as typed: ASCII digits, maybe in groups ("637 633", "637-633"). The codes sent are
# ASCII, so other scripts' digits are not a code.
_DIGIT_GROUP = re.compile(r"[0-9]+(?:[ .\-][0-9]+)*")
_BARE_CODE = re.compile(r"(?<![0-9])[0-9]{6}(?![0-9])")
_GROUP_SEPARATORS = re.compile(r"[ .\-]")
OTP_MESSAGE_MAX = 60


def _numbers(text: str) -> list[str]:
    return [_GROUP_SEPARATORS.sub("", m.group()) for m in _DIGIT_GROUP.finditer(text[:4000])]


def find_otp(text: str) -> str | None:
    """The code in a short message holding one number of 6 digits ("kodenya 637633", "my
    code is 637 633"), else ``None``: a stray digit, two numbers or a long text is not a code."""
    numbers = _numbers(text)
    if len(text.strip()) > OTP_MESSAGE_MAX or len(numbers) != 1:
        return None
    return numbers[0] if len(numbers[0]) == OTP_LENGTH else None


def holds_otp(text: str) -> bool:
    """True when ``text`` holds something that looks like a 6-digit code (so it is deleted)."""
    return (any(len(n) == OTP_LENGTH for n in _numbers(text))
            or _BARE_CODE.search(text[:4000]) is not None)


_MAX_DATE_TEXT = 40
_MONTH_NAMES: tuple[tuple[str, ...], ...] = (
    ("januari", "january"), ("februari", "february"), ("maret", "march"), ("april",),
    ("mei", "may"), ("juni", "june"), ("juli", "july"), ("agustus", "august", "agt", "ags"),
    ("september",), ("oktober", "october"), ("november",), ("desember", "december"),
)
_SEP = r"(?:\s*[-/.]\s*|\s+)"
_NUMERIC = re.compile(rf"(\d{{1,2}}){_SEP}(\d{{1,2}}){_SEP}(\d{{4}})")
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_COMPACT = re.compile(r"(\d{2})(\d{2})(\d{4})")
_DAY_NAME = re.compile(r"(\d{1,2})[\s\-/.]*([a-z]{3,})\.?[\s\-/.,]*(\d{4})")
_NAME_DAY = re.compile(r"([a-z]{3,})\.?\s*(\d{1,2})(?:st|nd|rd|th)?\s*,?\s*(\d{4})")


def _month_number(name: str) -> int | None:
    """1-12 for an Indonesian or English month name or its 3+ letter prefix ("Agu", "Sept")."""
    for number, names in enumerate(_MONTH_NAMES, start=1):
        if any(full.startswith(name) for full in names):
            return number
    return None


def _date_parts(text: str) -> tuple[int, int, int] | None:
    """(year, month, day) as written, before any calendar check; None if no format fits."""
    if match := _NUMERIC.fullmatch(text) or _COMPACT.fullmatch(text):
        return int(match[3]), int(match[2]), int(match[1])
    if match := _ISO.fullmatch(text):
        return int(match[1]), int(match[2]), int(match[3])
    named = _DAY_NAME.fullmatch(text)
    day_group, name_group = 1, 2
    if named is None:
        named, day_group, name_group = _NAME_DAY.fullmatch(text), 2, 1
    if named is None or (month := _month_number(named[name_group])) is None:
        return None
    return int(named[3]), month, int(named[day_group])


# "5/1/90", "5 Jan 90", or DDMMYY written together ("050190").
_TRAILING_SHORT_YEAR = re.compile(r"(?:(?<![0-9])|(?<=^[0-9]{4}))([0-9]{2})$")


def _short_year(text: str) -> bool:
    """Whether ``text`` is a date in a known format but for its two-digit year ("5/1/90")."""
    match = _TRAILING_SHORT_YEAR.search(text)
    return match is not None and _date_parts(text[:match.start()] + "19" + match[1]) is not None


def _years_before(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a non-leap year
        return today.replace(year=today.year - years, day=28)


def parse_birth_date(text: str, today: date) -> date | Problem:
    """Parse a birth date, DD-MM-YYYY first; '/', '.', spaces and month names also accepted.

    A two-digit year is refused (SHORT_YEAR): the century would be a guess, and a year such as
    0090 would agree with a NIK's ``yy`` digits.
    """
    cleaned = text.strip().lower()
    if not cleaned:
        return Problem.EMPTY
    # The cap keeps the regular expressions linear on pasted garbage.
    parts = _date_parts(cleaned) if len(cleaned) <= _MAX_DATE_TEXT else None
    if parts is None:
        short = len(cleaned) <= _MAX_DATE_TEXT and _short_year(cleaned)
        return Problem.SHORT_YEAR if short else Problem.BAD_DATE_FORMAT
    try:
        birth = date(*parts)
    except ValueError:
        return Problem.IMPOSSIBLE_DATE
    if birth > today:
        return Problem.FUTURE_DATE
    if birth < _years_before(today, MAX_AGE_YEARS):
        return Problem.TOO_OLD
    return birth


def _national_number(cleaned: str) -> str | Problem:
    """The national significant number (no trunk 0, no +62), or NOT_MOBILE if foreign."""
    if cleaned.startswith(("+", "00", "62")):
        international = cleaned.removeprefix("+").removeprefix("00")
        if not international.startswith("62"):
            return Problem.NOT_MOBILE
        # "+62 (0)812..." keeps the trunk 0 a local number would have.
        return international[2:].removeprefix("0")
    return cleaned.removeprefix("0")


def _mobile_problem(national: str) -> Problem | None:
    # Operators never use 080x: 0800 is toll-free and 0809 premium-rate.
    if len(national) > 1 and (national[0] != "8" or national[1] == "0"):
        return Problem.NOT_MOBILE
    return _length_problem(len(national), 9, 12)


def parse_phone(text: str) -> str | Problem:
    """Parse an Indonesian mobile number into E.164 (``+628...``).

    Accepts ``08..``, ``628..``, ``+62 8..``, ``0062 8..`` and a bare ``8..`` with spaces,
    dashes, dots or parentheses. Landlines, toll-free ``0800`` and foreign numbers are NOT_MOBILE.
    """
    if not text.strip():
        return Problem.EMPTY
    cleaned = _PHONE_SEPARATORS.sub("", text)
    digits = cleaned.removeprefix("+")
    if not (digits.isascii() and digits.isdigit()):
        return Problem.NOT_DIGITS
    national = _national_number(cleaned)
    if isinstance(national, Problem):
        return national
    if problem := _mobile_problem(national):
        return problem
    return "+62" + national


_EMAIL_LOCAL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*",
                          re.IGNORECASE)
_EMAIL_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def parse_email(text: str) -> str | Problem:
    """Parse an email address pragmatically; the domain is lowercased, the local part kept."""
    cleaned = text.strip().removeprefix("mailto:")
    if not cleaned:
        return Problem.EMPTY
    local, at, domain = cleaned.rpartition("@")
    domain = domain.lower()
    valid = (at and len(local) <= 64 and len(cleaned) <= 254
             and _EMAIL_LOCAL.fullmatch(local) and _EMAIL_DOMAIN.fullmatch(domain))
    return f"{local}@{domain}" if valid else Problem.BAD_EMAIL


def _mask(value: str, head: int, tail: int, min_hidden: int) -> str:
    """Show at most ``head`` leading and ``tail`` trailing characters, hiding at least
    ``min_hidden``; shorter values reveal less, down to nothing."""
    hidden = max(min_hidden, len(value) - head - tail)
    visible = max(0, len(value) - hidden)
    shown_head = min(head, visible)
    shown_tail = visible - shown_head
    return value[:shown_head] + "*" * (len(value) - visible) + value[len(value) - shown_tail:]


def mask_nik(nik: str) -> str:
    """``3171014501900001`` -> ``3171********0001``."""
    return _mask(_SEPARATORS.sub("", nik), 4, 4, 8)


def mask_kpj(kpj: str) -> str:
    """``12345678901`` -> ``123*****901``."""
    return _mask(_SEPARATORS.sub("", kpj), 3, 3, 5)


_NAME_PART = re.compile(r"\w+")


def mask_name(name: str) -> str:
    """``Siti Rahayu`` -> ``S*** R*****``: the first letter of each part of the name; the
    letters after it become stars, punctuation between parts stays."""
    return _NAME_PART.sub(lambda part: part[0][0] + "*" * (len(part[0]) - 1),
                          " ".join(name.split()))


def mask_phone(phone: str) -> str:
    """``+6281234567890`` -> ``0812****7890`` (national form, first 4 and last 4 digits)."""
    parsed = parse_phone(phone)
    if isinstance(parsed, Problem):
        return _mask(_PHONE_SEPARATORS.sub("", phone), 4, 4, 4)
    return _mask("0" + parsed.removeprefix("+62"), 4, 4, 4)


def mask_email(email: str) -> str:
    """``budi@example.com`` -> ``b***@example.com``; the local part's length stays hidden."""
    local, at, domain = email.strip().rpartition("@")
    if not at or not local:
        return "***"
    first = local[0] if len(local) > 1 else ""
    return f"{first}***@{domain.lower()}"


def same_phone(typed: str, on_file: str) -> bool:
    """Whether two numbers are the same mobile number once normalised (constant-time compare)."""
    first, second = parse_phone(typed), parse_phone(on_file)
    if isinstance(first, Problem) or isinstance(second, Problem):
        return False
    return hmac.compare_digest(first.encode(), second.encode())

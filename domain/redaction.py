"""Masking personal data in free text before it reaches an agent or a ticket transcript.

A member in a handoff writes whatever they like, sometimes "NIK saya 3171014501900001 dan HP
081234567890". What leaves the engine for the agent desk or the ticket store goes through
:func:`redact` first, so agents see ``3171********0001`` and ``0812****7890`` and nothing raw is
stored. The detectors are the ones that decide elsewhere whether a typed value is a NIK, a phone
number, a KPJ, an email or an OTP (:mod:`flows.identifiers`), and the masks are the ones the bot
uses when it shows these values to the member itself.

Ordinary text is left alone: amounts (``Rp1.500.000``), dates (``05-01-1990``), years, ticket
numbers (``#12``). A bare 6-digit number is masked only while an OTP is pending for the chat,
when it is most likely the code.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from flows.identifiers import (
    Nik,
    Problem,
    mask_email,
    mask_kpj,
    mask_nik,
    mask_phone,
    parse_email,
    parse_kpj,
    parse_nik,
    parse_otp,
    parse_phone,
)

CODE_MASK = "******"
# Not a piece of a longer number, an amount (15.000.000.000) or a date (05-01-1990, 2026/11).
_NOT_AFTER = r"(?<![\d*.,/\-#+])(?<![Rr][Pp])"
_NOT_BEFORE = r"(?![\d*]|[.,/\-]\d)"
# Same run as the engine's NIK detector: 16 digits, a space, dot or dash between any two.
_NIK_RUN = re.compile(rf"{_NOT_AFTER}\d(?:[\s.\-]?\d){{15}}{_NOT_BEFORE}")
# A mobile number as members type it: 08.., 628.., +62 8.., 0062 8.., grouped with spaces,
# dashes or dots; parse_phone decides whether it really is one.
_PHONE_RUN = re.compile(_NOT_AFTER + r"(?:\+\s?62|0062|62|0)(?:[\s.\-]?\(?0\)?)?"
                        r"(?:[\s.\-]?\d){8,12}" + _NOT_BEFORE)
# An 11-digit KPJ, plain or grouped with spaces or dashes (never dots: 15.000.000.000 is money).
_KPJ_RUN = re.compile(rf"{_NOT_AFTER}\d(?:[\s\-]?\d){{10}}{_NOT_BEFORE}")
# A 6-digit code, "123456" or "123 456" (never dotted or dashed: 500.000, 2026-09).
_CODE_RUN = re.compile(rf"{_NOT_AFTER}\d(?:\s?\d){{5}}{_NOT_BEFORE}")
_EMAIL_RUN = re.compile(r"[\w.!#$%&'+/=?^`{|}~-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+", re.IGNORECASE)


def redact(text: str, *, otp_pending: bool = False) -> str:
    """``text`` with every NIK, phone number, KPJ and email masked; with ``otp_pending``, every
    6-digit code too. Idempotent: redacting twice changes nothing more."""
    text = _replace(_EMAIL_RUN, text, _email)
    text = _replace(_NIK_RUN, text, _nik)
    text = _replace(_PHONE_RUN, text, _phone)
    text = _replace(_KPJ_RUN, text, _kpj)
    if otp_pending:
        text = _replace(_CODE_RUN, text, _code)
    return text


def _replace(pattern: re.Pattern[str], text: str, mask: Callable[[str], str | None]) -> str:
    def one(match: re.Match[str]) -> str:
        masked = mask(match.group())
        return match.group() if masked is None else masked
    return pattern.sub(one, text)


def _nik(run: str) -> str | None:
    # Sixteen digits in one piece that fail the NIK checks are still most likely a mistyped NIK
    # (or a card number): masked all the same. Grouped, only a real NIK is.
    if (isinstance(parse_nik(run), Nik) and not _mixed(run)) or (run.isascii() and run.isdigit()):
        return mask_nik(run)
    return None


def _phone(run: str) -> str | None:
    if _DATE_FIRST.match(run):  # "08-10-2000 1950": a date and a year, not 0810-2000-1950
        return None
    return None if isinstance(parse_phone(run), Problem) else mask_phone(run)


_DATE_FIRST = re.compile(r"\d{2}([.\-/])\d{2}\1\d{4}(?!\d)")


def _kpj(run: str) -> str | None:
    if _mixed(run):
        return None
    found = parse_kpj(run)
    return None if isinstance(found, Problem) else mask_kpj(found)


def _mixed(run: str) -> bool:
    """Grouped with two kinds of separator, as a date next to a number is ("05-01-1990 123")."""
    return len(set(re.sub(r"\d", "", run)) - {""}) > 1 or ("-" in run and " " in run)


def _code(run: str) -> str | None:
    return None if isinstance(parse_otp(run), Problem) else CODE_MASK


def _email(run: str) -> str:
    # Anything shaped like an address is masked, even one parse_email would refuse ("a..b@x.id").
    address = run.rstrip(".")
    found = parse_email(address)
    return mask_email(address if isinstance(found, Problem) else found) + run[len(address):]

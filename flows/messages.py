"""What to tell a member about a value they typed that does not fit, field by field."""

from __future__ import annotations

from flows.flow import say
from flows.i18n import N_
from flows.identifiers import Problem
from flows.types import Say, Text

NIK_DELETED = N_("I deleted your message with the NIK from this chat to keep it safe.")

_FIELD_HINT = {
    "nik": N_("The NIK is the 16-digit number on your KTP, for example 3171014501900001."),
    "kpj": N_("The KPJ number has 11 digits; you find it on your membership card or in JMO."),
    "birth_date": N_("Please write the date as DD-MM-YYYY, for example 17-08-1985."),
    "phone": N_("Please type an Indonesian mobile number, for example 081234567890."),
}

_PROBLEM_TEXT = {
    Problem.EMPTY: N_("I did not receive anything."),
    Problem.NOT_DIGITS: N_("It should contain digits only."),
    Problem.TOO_SHORT: N_("That number is too short."),
    Problem.TOO_LONG: N_("That number is too long."),
    Problem.BAD_PROVINCE: N_("The first two digits are not a valid province code."),
    Problem.BAD_BIRTH_DATE_IN_NIK: N_("Digits 7 to 12 should be a date of birth (DDMMYY), "
                                      "but they are not a real date."),
    Problem.BAD_SERIAL: N_("The last four digits cannot be 0000."),
    Problem.BAD_DATE_FORMAT: N_("I could not read that date."),
    Problem.IMPOSSIBLE_DATE: N_("That date does not exist."),
    Problem.FUTURE_DATE: N_("That date is in the future."),
    Problem.TOO_OLD: N_("That date is more than 120 years ago."),
    Problem.NOT_MOBILE: N_("That is not an Indonesian mobile number."),
    Problem.BAD_EMAIL: N_("That is not a valid email address."),
}


def problem_message(field: str, problem: Problem) -> Say:
    """What is wrong with the typed value, and how to type it right."""
    return say("{problem} {hint}", problem=Text(_PROBLEM_TEXT[problem]),
               hint=Text(_FIELD_HINT[field]))

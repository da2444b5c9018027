"""What to tell a member about a value they typed that does not fit, field by field."""

from __future__ import annotations

from flows.flow import say
from flows.i18n import N_
from flows.identifiers import Problem
from flows.types import Say, Text

NIK_DELETED = N_("I deleted your message with the NIK from this chat to keep it safe.")

# Examples belong to nobody: no demo member has this NIK, date of birth or phone number
# (a test checks every catalog message against the demo members' data).
EXAMPLE_NIK = "3171012506879999"
EXAMPLE_BIRTH_DATE = "25-06-1987"
EXAMPLE_PHONE = "0812-0000-0000"

_FIELD_HINT = {
    "nik": N_("The NIK is the 16-digit number on your KTP, for example {nik_example}."),
    "kpj": N_("The KPJ number has 11 digits; you find it on your membership card or in JMO."),
    "birth_date": N_("Please write the date as DD-MM-YYYY, for example {date_example}."),
    "phone": N_("Please type an Indonesian mobile number, for example {phone_example}."),
}

_PROBLEM_TEXT = {
    Problem.EMPTY: N_("I did not receive anything."),
    Problem.NOT_DIGITS: N_("It should contain digits only."),
    Problem.TOO_SHORT: N_("That number is too short."),
    Problem.TOO_LONG: N_("That number is too long."),
    Problem.BAD_PROVINCE: N_("The first two digits are not a valid province code."),
    Problem.BAD_BIRTH_DATE_IN_NIK: N_("Digits 7 to 12 of a NIK are the date of birth (day, "
                                      "month, year; women add 40 to the day), but these "
                                      "digits are not a real date."),
    Problem.BAD_SERIAL: N_("The last four digits cannot be 0000."),
    Problem.BAD_DATE_FORMAT: N_("I could not read that date."),
    Problem.SHORT_YEAR: N_("The year needs all 4 digits."),
    Problem.IMPOSSIBLE_DATE: N_("That date does not exist."),
    Problem.FUTURE_DATE: N_("That date is in the future."),
    Problem.TOO_OLD: N_("That date is more than 120 years ago."),
    Problem.NOT_MOBILE: N_("That is not an Indonesian mobile number."),
    Problem.BAD_EMAIL: N_("That is not a valid email address."),
}


def problem_message(field: str, problem: Problem) -> Say:
    """What is wrong with the typed value, and how to type it right."""
    return say("{problem} {hint}", problem=Text(_PROBLEM_TEXT[problem]),
               hint=Text(_FIELD_HINT[field], EXAMPLES))


EXAMPLES = {"nik_example": EXAMPLE_NIK, "date_example": EXAMPLE_BIRTH_DATE,
            "phone_example": EXAMPLE_PHONE}
"""The examples as message parameters, so translators never copy a number by hand."""

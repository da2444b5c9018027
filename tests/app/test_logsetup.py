"""Redaction of digit runs in log output: NIK, KPJ, OTP and phone numbers never reach a log."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator

import pytest

from app.logsetup import RedactingFormatter, configure_logging, redact

MARK = "[redacted]"


@pytest.mark.parametrize(("text", "expected"), [
    ("NIK 3171014501900001 ditolak", f"NIK {MARK} ditolak"),
    ("NIK 3171 0145 0190 0001", f"NIK {MARK}"),
    ("NIK 3171.0145.0190.0001", f"NIK {MARK}"),
    ("KPJ 12345678901", f"KPJ {MARK}"),
    ("KPJ 123-4567-8901", f"KPJ {MARK}"),
    ("code=123456", f"code={MARK}"),
    ("code 123 456", f"code {MARK}"),
    ("code 123-456.", f"code {MARK}."),
    ("to +6281234567890", f"to {MARK}"),
    ("to 6281234567890", f"to {MARK}"),
    ("to 081234567890", f"to {MARK}"),
    ("to +62 812-3456-7890", f"to {MARK}"),
    ("to 0812 3456 7890", f"to {MARK}"),
    ("to 0812.3456.7890", f"to {MARK}"),
    ("two: 081234567890 and 3171014501900001", f"two: {MARK} and {MARK}"),
])
def test_identifiers_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "locked for 5 minutes",
    "HTTP 429 Too Many Requests",
    "retry in 60 s, 3 per hour",
    "code 12345 is too short to be one",
    "handled telegram update - in 12.5 ms",
    "10.0.0.1",
    "",
])
def test_short_numbers_are_kept(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(("text", "expected"), [
    # Runs of six or more digits are masked whatever they are: a date may be a birth date, so
    # dates and long amounts are masked too.
    ("born 2026-11-22", f"born {MARK}"),
    ("born 05-01-1990", f"born {MARK}"),
    ("Rp12.345.678", f"Rp{MARK}"),
    ("1 2 3 4 5 6", MARK),
    # Up to three separators (spaces, dots, dashes, brackets) join digits into one run...
    ("12  34  56", MARK),
    ("+62 (812) 3456-7890", MARK),
    # ...four or more end it, so each short group stands alone.
    ("12    34    56", "12    34    56"),
])
def test_what_counts_as_one_run(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", ["3171  0145  0190  0001", "0812  3456  7890", "123  456",
                                  "3171 - 0145 - 0190 - 0001"])
def test_identifiers_typed_with_double_separators_are_masked(text: str) -> None:
    # The parsers accept these, so a mistake could log them as typed.
    assert redact(text) == MARK


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("flows.engine", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_formatter_redacts_the_message_and_its_args() -> None:
    formatter = RedactingFormatter("%(levelname)s %(name)s: %(message)s")
    line = formatter.format(_record("otp %s for %s in %d s", "654321", "+62 812-3456-7890", 5))
    assert line == f"ERROR flows.engine: otp {MARK} for {MARK} in 5 s"


def test_formatter_redacts_an_exceptions_traceback() -> None:
    try:
        raise ValueError("no member with NIK 3171014501900001 and KPJ 12345678901")
    except ValueError as exc:
        record = _record("step failed", exc=exc)
    line = RedactingFormatter("%(message)s").format(record)
    assert line.startswith("step failed\nTraceback (most recent call last):")
    assert f"ValueError: no member with NIK {MARK} and KPJ {MARK}" in line
    assert "3171014501900001" not in line and "12345678901" not in line


def test_formatter_redacts_stack_info() -> None:
    record = _record("%s", "x")
    record.stack_info = "Stack (most recent call last):\n  code = '123456'"
    line = RedactingFormatter("%(message)s").format(record)
    assert "123456" not in line and MARK in line


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """The root logger, restored after the test changed its handlers and level."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield root
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_configure_logging_installs_one_redacting_handler(
        root_logging: logging.Logger, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info")
    assert root_logging.level == logging.INFO
    assert len(root_logging.handlers) == 1
    handler = root_logging.handlers[0]
    assert isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr
    assert isinstance(handler.formatter, RedactingFormatter)
    logging.getLogger("flows.test").info("linked chat %s", "6281234567890")
    logging.getLogger("flows.test").debug("not shown at INFO")
    err = capsys.readouterr().err
    assert f"INFO flows.test: linked chat {MARK}" in err
    assert "6281234567890" not in err and "not shown" not in err


def test_configured_log_lines_keep_their_timestamp(
        root_logging: logging.Logger, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING")
    logging.getLogger("flows.test").warning("store busy")
    err = capsys.readouterr().err
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING flows.test: store busy\n",
                        err), err


def test_a_date_in_the_message_is_masked_but_not_the_timestamp() -> None:
    formatter = RedactingFormatter("%(asctime)s %(message)s")
    line = formatter.format(_record("born %s", "1990-01-05"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} born \[redacted\]", line), line

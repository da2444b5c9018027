"""Redaction of digit runs in log output: NIK, KPJ, OTP and phone numbers never reach a log,
while labelled update and message ids and IP addresses stay readable; the database drivers'
SQL parameters are silenced."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator

import aiosqlite
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


@pytest.mark.parametrize("text", [
    "handled telegram update 123456789 in 12.5 ms",
    "telegram update 2147483647 failed: TelegramRetryAfter",
    "agent desk update 1000001 failed: KeyError",
    "served whatsapp update 3fa91234567bc0de9a1b2c3d in 3.0 ms",
    "a whatsapp message failed: error 131_026 (x), message a3f9123456bc; recorded",
    "update_id=987654321 message_id=4242424",
    "message#7654321",
    "from 192.168.100.200",
    "client 203.0.113.254:8443 refused",
    "peer 255.255.255.255, 0.0.0.0 and 10.0.0.1.",
])
def test_ids_and_ip_addresses_stay_readable(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(("text", "expected"), [
    # A label does not unmask what cannot be an id: too long, a leading 0 or +, or a run
    # that goes on.
    ("update 3171014501900001", f"update {MARK}"),  # a NIK
    ("update 12345678901", f"update {MARK}"),  # a KPJ
    ("message 081234567890", f"message {MARK}"),  # a phone number
    ("message 6281234567890", f"message {MARK}"),  # a WhatsApp id
    ("update +6281234567890", f"update {MARK}"),
    ("update 812 3456 7890", f"update {MARK}"),
    ("update 123456-789", f"update {MARK}"),
    ("message 123456789012345678901234", f"message {MARK}"),  # all digits: not a hex ref
    ("updates 123456789", f"updates {MARK}"),  # only the exact labels
    ("chat 123456789", f"chat {MARK}"),  # chat ids are not labelled ids
    # Not an IPv4 address: a phone in dotted groups, a fifth group, an octet past 255.
    ("081.234.567.890", MARK),
    ("10.20.30.40.50", MARK),
    ("300.168.100.200", MARK),
    ("192.168.001.200", MARK),
])
def test_a_label_or_dots_do_not_unmask_personal_data(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_a_log_line_keeps_its_ids_readable_and_its_personal_data_masked() -> None:
    formatter = RedactingFormatter("%(levelname)s %(name)s: %(message)s")
    line = formatter.format(_record(
        "telegram update %s from %s failed: NIK %s, KPJ %s, phone %s, code %s, message %s",
        123456789, "203.0.113.7", "3171014501900001", "12345678901", "+62 812-3456-7890",
        "654321", "a3f9123456bc"))
    assert line == (f"ERROR flows.engine: telegram update 123456789 from 203.0.113.7 failed: "
                    f"NIK {MARK}, KPJ {MARK}, phone {MARK}, code {MARK}, message a3f9123456bc")


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


@pytest.fixture
def driver_loggers() -> Iterator[None]:
    """The database drivers' logger levels, restored after the test."""
    names = ("aiosqlite", "sqlalchemy.engine", "asyncpg")
    saved = {name: (logging.getLogger(name).level, logging.getLogger(name).propagate)
             for name in names}
    try:
        yield
    finally:
        for name, (level, propagate) in saved.items():
            logging.getLogger(name).setLevel(level)
            logging.getLogger(name).propagate = propagate


async def test_the_sqlite_driver_never_logs_sql_parameters_even_at_debug(
        root_logging: logging.Logger, driver_loggers: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    nik = "3171014501900001"
    configure_logging("DEBUG")
    for name in ("aiosqlite", "sqlalchemy.engine", "asyncpg"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    async with aiosqlite.connect(":memory:") as db:
        await db.execute("SELECT ?", (nik,))
    err = capsys.readouterr().err
    assert nik not in err and "SELECT" not in err
    # Without the silencing the driver logs each call with its parameters, as they are.
    raw: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raw.append(record.getMessage())

    driver = logging.getLogger("aiosqlite")
    driver.setLevel(logging.DEBUG)
    driver.propagate = False  # its worker thread may log once more after the connection closed
    keep = Keep()
    driver.addHandler(keep)
    try:
        async with aiosqlite.connect(":memory:") as db:
            await db.execute("SELECT ?", (nik,))
    finally:
        driver.setLevel(logging.WARNING)
        driver.removeHandler(keep)
    assert any(nik in message for message in raw)

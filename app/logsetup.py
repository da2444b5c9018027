"""Logging set-up with redaction: defence in depth for personal data.

Code never logs message text, NIK, OTP or phone numbers; the formatter also masks any run of six
or more digits (separated by at most a few spaces, dots, dashes or brackets) in the message,
its arguments, exception messages and tracebacks, so a mistake cannot leak a NIK, KPJ, OTP or
phone number. The timestamp and other fields the formatter adds are left alone.
"""

from __future__ import annotations

import copy
import logging
import re
from types import TracebackType

_DIGIT_RUN = re.compile(r"\+?\d(?:[\s.\-()]{0,3}\d){5,}")

_ExcInfo = (tuple[type[BaseException], BaseException, TracebackType | None]
            | tuple[None, None, None])


def redact(text: str) -> str:
    """``text`` with every run of six or more digits replaced by a marker."""
    return _DIGIT_RUN.sub("[redacted]", text)


class RedactingFormatter(logging.Formatter):
    """A formatter that redacts what the record carries, not what the format adds."""

    def format(self, record: logging.LogRecord) -> str:
        """The formatted record with its message and exception text redacted."""
        clean = copy.copy(record)
        clean.msg = redact(record.getMessage())
        clean.args = None
        if record.exc_text:
            clean.exc_text = redact(record.exc_text)
        return super().format(clean)

    def formatException(self, ei: _ExcInfo) -> str:  # noqa: N802 - logging's name
        """The traceback, redacted (exception messages can quote input)."""
        return redact(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        """The stack, redacted."""
        return redact(super().formatStack(stack_info))


def configure_logging(level: str = "WARNING") -> None:
    """Log to stderr at ``level`` through the redacting formatter."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Driver loggers put SQL parameters (KPJ, chat ids) in their records at DEBUG.
    for noisy in ("aiosqlite", "sqlalchemy.engine", "asyncpg"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))

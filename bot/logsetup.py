"""Logging set-up with redaction: defence in depth for personal data.

Code never logs message text, NIK, OTP or phone numbers; the formatter also masks any run of six
or more digits (with optional separators) in the finished line, tracebacks and exception
messages included, so a mistake cannot leak a NIK, KPJ, OTP or phone number.
"""

from __future__ import annotations

import logging
import re

_DIGIT_RUN = re.compile(r"\+?\d(?:[\s.\-]?\d){5,}")


def redact(text: str) -> str:
    """``text`` with every run of six or more digits replaced by a marker."""
    return _DIGIT_RUN.sub("[redacted]", text)


class RedactingFormatter(logging.Formatter):
    """A formatter whose output passes through :func:`redact`."""

    def format(self, record: logging.LogRecord) -> str:
        """The formatted record, redacted."""
        return redact(super().format(record))


def configure_logging(level: str = "WARNING") -> None:
    """Log to stderr at ``level`` through the redacting formatter."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())

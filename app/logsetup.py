"""Logging set-up with redaction: defence in depth for personal data.

Code never logs message text, NIK, OTP or phone numbers; the formatter also masks any run of six
or more digits (separated by at most a few spaces, dots, dashes or brackets) in the message,
its arguments, exception messages and tracebacks, so a mistake cannot leak a NIK, KPJ, OTP or
phone number. The timestamp and other fields the formatter adds are left alone.

Two kinds of number are not personal data and stay readable, because a fault log is useless
without them:

* an id the code labels as one: ``update``, ``message`` (or ``update_id``, ``message_id``)
  followed by one of `` =:#`` and either a plain number of at most ten digits with no leading
  zero (Telegram's update and message ids) or a hex reference of 12 to 64 characters with a
  letter in it (a WhatsApp message's hashed reference). Ten digits and no leading zero leave
  out every NIK (16 digits), KPJ (11), Indonesian phone number (``08``/``62``, 10 to 14 digits)
  and WhatsApp id (``62``..., 11 or more), so even a label put before one by mistake masks it;
  an id that runs on into more digits is masked whole;
* an IPv4 address (four dot-separated octets of 0-255, no leading zeros).

Masking by default, with these two narrow exceptions, was chosen over recognising NIK, phone,
KPJ and OTP shapes: a pattern list misses what nobody thought of (a birth date, an amount, a
chat id, a phone typed without its prefix), while an unlabelled number stays masked here.
"""

from __future__ import annotations

import copy
import logging
import re
from types import TracebackType

_RUN = r"\+?\d(?:[\s.\-()]{0,3}\d){5,}"
_JOINS_MORE = r"(?!\w|[\s.\-()]{1,3}\d)"  # not followed by what would extend a digit run
_ID = (r"\b(?:update|message)(?:_id)?[ =:#]"
       r"(?:[1-9]\d{0,9}|(?=[0-9a-f]{0,63}[a-f])[0-9a-f]{12,64})" + _JOINS_MORE)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}" + _JOINS_MORE
_TOKEN = re.compile(rf"(?P<keep>{_ID}|{_IPV4})|{_RUN}")
_MARK = "[redacted]"

_ExcInfo = (tuple[type[BaseException], BaseException, TracebackType | None]
            | tuple[None, None, None])


def redact(text: str) -> str:
    """``text`` with every run of six or more digits replaced by a marker, labelled update and
    message ids and IPv4 addresses excepted."""
    return _TOKEN.sub(_masked, text)


def _masked(match: re.Match[str]) -> str:
    return match.group() if match.group("keep") is not None else _MARK


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

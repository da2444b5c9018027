"""OTP delivery for the embedded default: a simulated SMS on the console and an outbox file.

``OTP_OUTBOX=path`` appends one JSON line per code, ``{"to": ..., "code": ..., "sent_at": ...}``,
so scripts and tests can read codes. Production sends through an SMS gateway or SMTP behind the
same ``OtpSender`` port.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from flows.i18n import N_, Catalog
from flows.ports import OtpDeliveryFailed, OtpDestination, OtpSender, OtpWarner
from flows.types import Text

OTP_SMS = N_("Your BPJS Ketenagakerjaan verification code: {code}. Valid for 5 minutes. Never "
           "share this code with anyone, including staff.")
OTP_LOCK_NOTICE = N_("BPJS Ketenagakerjaan: someone typed wrong codes to link a chat to your "
                     "membership, so linking is locked for now. If it was not you, ignore this "
                     "and never share a code. Questions: call 175.")


def lock_notice(catalog: Catalog) -> str:
    """The notice to the contact on file, Indonesian first, then English (the member's
    language is unknown there). It holds no code."""
    return "\n".join(catalog.render(Text(OTP_LOCK_NOTICE), locale) for locale in ("id", "en"))


class ConsoleOtpSender:
    """Prints the code as a clearly marked simulated SMS (or email)."""

    def __init__(self, catalog: Catalog, write: Callable[[str], None] = print) -> None:
        self._catalog = catalog
        self._write = write

    async def send(self, to: OtpDestination, code: str, locale: str) -> None:
        """Show the message the member would receive."""
        where = to.masked()
        body = self._catalog.render(Text(OTP_SMS, {"code": code}), locale)
        label = "SIMULATED SMS" if to.kind == "sms" else "SIMULATED EMAIL"
        self._write(f"\n  ┌── {label} to {where} ──\n  │ {body}\n  └──\n")

    async def warn(self, to: OtpDestination) -> None:
        """Show the lock notice the member would receive on the contact on file."""
        label = "SIMULATED SMS" if to.kind == "sms" else "SIMULATED EMAIL"
        body = lock_notice(self._catalog).replace("\n", "\n  │ ")
        self._write(f"\n  ┌── {label} to {to.masked()} ──\n  │ {body}\n  └──\n")


class OutboxOtpSender:
    """Appends each code to a JSON-lines file (``OTP_OUTBOX``)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    async def send(self, to: OtpDestination, code: str, locale: str) -> None:
        """Append ``{"to", "code", "sent_at"}`` as one line."""
        line = json.dumps({"to": to.address, "code": code,
                           "sent_at": datetime.now(UTC).isoformat()})
        try:
            await asyncio.to_thread(self._append, line)
        except OSError as exc:
            raise OtpDeliveryFailed("the OTP outbox cannot be written") from exc

    async def warn(self, to: OtpDestination) -> None:
        """Append ``{"to", "notice": "otp_locked", "sent_at"}`` as one line (no code)."""
        line = json.dumps({"to": to.address, "notice": "otp_locked",
                           "sent_at": datetime.now(UTC).isoformat()})
        try:
            await asyncio.to_thread(self._append, line)
        except OSError as exc:
            raise OtpDeliveryFailed("the OTP outbox cannot be written") from exc

    def _append(self, line: str) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


class FanOutOtpSender:
    """Sends through every sender; fails only when all of them fail."""

    def __init__(self, senders: Sequence[OtpSender]) -> None:
        self._senders = tuple(senders)

    async def send(self, to: OtpDestination, code: str, locale: str) -> None:
        """Deliver through each sender."""
        failures = 0
        for sender in self._senders:
            try:
                await sender.send(to, code, locale)
            except OtpDeliveryFailed:
                failures += 1
        if failures == len(self._senders):
            raise OtpDeliveryFailed("no OTP sender succeeded")

    async def warn(self, to: OtpDestination) -> None:
        """Warn through each sender that can; fails only when all of those fail."""
        warners = [s for s in self._senders if isinstance(s, OtpWarner)]
        failures = 0
        for sender in warners:
            try:
                await sender.warn(to)
            except OtpDeliveryFailed:
                failures += 1
        if warners and failures == len(warners):
            raise OtpDeliveryFailed("no OTP sender could send the lock notice")

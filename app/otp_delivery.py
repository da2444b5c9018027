"""OTP delivery: the embedded default (a simulated message on the console, an outbox file)
and the router over the real senders.

``OTP_OUTBOX=path`` appends one JSON line per code, ``{"to": ..., "via": ..., "code": ...,
"sent_at": ...}``, so scripts and tests can read codes. Production sends through WhatsApp's
authentication template (:mod:`channels.whatsapp.otp`), an SMS gateway (:mod:`app.otp_sms`)
and SMTP (:mod:`app.otp_email`), one sender per way a code travels, behind
:class:`RoutedOtpSender`: the flow tries the contacts on file in the order of ``OTP_CHANNELS``
and falls through to the next when one fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

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
        self._write(f"\n  ┌── {_label(to)} to {where} ──\n  │ {body}\n  └──\n")

    async def warn(self, to: OtpDestination) -> None:
        """Show the lock notice the member would receive on the contact on file."""
        body = lock_notice(self._catalog).replace("\n", "\n  │ ")
        self._write(f"\n  ┌── {_label(to)} to {to.masked()} ──\n  │ {body}\n  └──\n")


class OutboxOtpSender:
    """Appends each code to a JSON-lines file (``OTP_OUTBOX``)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    async def send(self, to: OtpDestination, code: str, locale: str) -> None:
        """Append ``{"to", "via", "code", "sent_at"}`` as one line."""
        line = json.dumps({"to": to.address, "via": to.kind, "code": code,
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


def _label(to: OtpDestination) -> str:
    return {"sms": "SIMULATED SMS", "whatsapp": "SIMULATED WHATSAPP"}.get(to.kind,
                                                                        "SIMULATED EMAIL")


class ChannelSender(OtpSender, Protocol):
    """A sender of one way a code travels (``kind``: ``sms``, ``whatsapp``, ``email``), with
    a health check for ``/healthz``."""

    @property
    def kind(self) -> str:
        """``sms``, ``whatsapp`` or ``email``."""
        ...

    async def check(self) -> None:
        """Raise :class:`OtpDeliveryFailed` when the service cannot be reached."""
        ...

    async def aclose(self) -> None:
        """Close its connections."""
        ...


class RoutedOtpSender:
    """Sends each code by the sender of its destination's kind (the flow picks the kind, in
    the order of :attr:`kinds`, and falls through on :class:`OtpDeliveryFailed`). ``tap``,
    when given (``OTP_OUTBOX`` beside real senders), records every code sent as well."""

    def __init__(self, senders: Sequence[ChannelSender], *, tap: OtpSender | None = None) -> None:
        self._senders = {sender.kind: sender for sender in senders}
        self._tap = tap

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds served, in the order given."""
        return tuple(self._senders)

    @property
    def senders(self) -> tuple[ChannelSender, ...]:
        """The senders, in order."""
        return tuple(self._senders.values())

    async def send(self, to: OtpDestination, code: str, locale: str) -> None:
        """Send by the sender of ``to.kind``."""
        sender = self._senders.get(to.kind)
        if sender is None:
            raise OtpDeliveryFailed(f"no {to.kind} sender is configured", reason="error")
        await sender.send(to, code, locale)
        if self._tap is not None:  # the code went out; the copy is for staging only
            with contextlib.suppress(OtpDeliveryFailed):
                await self._tap.send(to, code, locale)

    async def warn(self, to: OtpDestination) -> None:
        """The lock notice by the sender of ``to.kind``, when it sends notices."""
        sender = self._senders.get(to.kind)
        if not isinstance(sender, OtpWarner):
            raise OtpDeliveryFailed(f"no {to.kind} sender sends notices", reason="error")
        await sender.warn(to)

    async def aclose(self) -> None:
        """Close every sender."""
        for sender in self._senders.values():
            await sender.aclose()

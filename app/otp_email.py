"""OTP codes by email over SMTP (aiosmtplib), to the address on file at BPJS.

``SMTP_URL`` says how to reach the server:

* ``smtps://user:pass@host:465``: TLS from the first byte (implicit TLS), certificate verified;
* ``smtp://user:pass@host:587``: STARTTLS, required and verified; the credentials never travel
  in clear (a server that does not offer STARTTLS fails with reason ``server``);
* ``smtp://host:25``: a local relay without credentials; STARTTLS when the relay offers it,
  without certificate verification (opportunistic, as between mail servers: whoever could
  present a false certificate could as well strip the STARTTLS offer), plain otherwise.

One connection per message, bounded as a whole by ``SMTP_TIMEOUT``. A temporary answer (4xx)
is tried once more on a new connection; a permanent one (5xx) is not. Logs carry the reason
label and the SMTP status code only, never the address, the code or the server's answer text
(a server may quote the address in it).
"""

from __future__ import annotations

import asyncio
import html
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import ClassVar
from urllib.parse import unquote, urlsplit

import aiosmtplib

from app.otp_delivery import OTP_SMS, lock_notice
from app.settings import OtpSettings
from flows.i18n import N_, Catalog
from flows.ports import OtpDeliveryFailed, OtpDestination
from flows.types import Text

__all__ = ["SmtpOtpSender", "SmtpServer", "parse_smtp_url"]

log = logging.getLogger(__name__)

EMAIL_SUBJECT = N_("Your BPJS Ketenagakerjaan verification code")
EMAIL_NOT_YOU = N_("If you did not ask for this code, ignore this email.")
EMAIL_AUTOMATED = N_("This email was sent automatically. Please do not reply.")
LOCK_SUBJECT = N_("Verification locked")

CHECK_BUDGET = 1.0  # seconds for the health check's connect, EHLO, login and QUIT
CHECK_CACHE = 30.0  # seconds a health check's result (a failure too) is kept
_AUTH_CODES = frozenset({530, 534, 535, 538})  # auth required, too weak, refused, needs TLS
_CODE_MARK = "\x00"  # where the code goes in the HTML part, after escaping


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """The parts of ``SMTP_URL``. ``starttls`` is True (required), None (when offered) or
    False (implicit TLS already)."""

    host: str
    port: int
    username: str
    password: str
    implicit_tls: bool

    @property
    def starttls(self) -> bool | None:
        """Required with credentials, opportunistic without, moot on implicit TLS."""
        if self.implicit_tls:
            return False
        return True if self.username else None


def parse_smtp_url(url: str) -> SmtpServer:
    """``smtp[s]://[user[:pass]@]host[:port]`` (user and password percent-encoded). The default
    port is 465 for smtps, 587 for smtp with credentials, 25 without. Raises ``ValueError``
    whose message never holds the password."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("the scheme must be smtp:// or smtps://")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("the host is missing")
    username, password = unquote(parts.username or ""), unquote(parts.password or "")
    implicit = parts.scheme == "smtps"
    default = 465 if implicit else (587 if username else 25)
    return SmtpServer(parts.hostname, port or default, username, password, implicit)


class _Failure(Exception):
    """One attempt's failure: the reason label, the SMTP code, whether to try once more."""

    def __init__(self, reason: str, code: int | None = None, *, temporary: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.code, self.temporary = reason, code, temporary


class SmtpOtpSender:
    """Sends OTP codes and the lock notice by email (``kind`` "email")."""

    kind: ClassVar[str] = "email"

    def __init__(self, url: str, sender: str, *, catalog: Catalog | None = None,
                 timeout: float = 10.0, tls_context: ssl.SSLContext | None = None,
                 retry_pause: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        """``url`` as ``SMTP_URL``; ``sender`` the From header (``OTP_EMAIL_FROM``, an address
        or ``Name <address>``); ``tls_context`` replaces the system's trust (a test CA)."""
        self._server = parse_smtp_url(url)
        self._from = sender
        self._envelope_from = parseaddr(sender)[1]
        if "@" not in self._envelope_from:
            raise ValueError("the sender must be an email address")
        self._catalog = catalog or Catalog()
        self._timeout = timeout
        self._tls_context = tls_context
        self._retry_pause = retry_pause
        self._clock = clock
        self._helo_name: str | None = None
        self._checked: tuple[float, _Failure | None] | None = None
        self._check_lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: OtpSettings, *,
                      catalog: Catalog | None = None) -> SmtpOtpSender | None:
        """The sender for ``SMTP_URL``, or None when it is not set. Exits with a message naming
        the setting when ``OTP_EMAIL_FROM`` is missing or a setting cannot be used."""
        url = settings.smtp_url.get_secret_value()
        if not url:
            return None
        if not settings.otp_email_from.strip():
            raise SystemExit("OTP_EMAIL_FROM must be set when SMTP_URL is set: the address OTP "
                             "emails come from, e.g. OTP_EMAIL_FROM=otp@example.go.id")
        if settings.smtp_timeout <= 0:
            raise SystemExit("SMTP_TIMEOUT must be a number of seconds above 0.")
        try:
            parse_smtp_url(url)
        except ValueError as exc:
            raise SystemExit(f"SMTP_URL cannot be used: {exc} (expected smtp://user:pass@host:"
                             "587, smtps://user:pass@host:465 or smtp://host:25).") from None
        try:
            return cls(url, settings.otp_email_from.strip(), catalog=catalog,
                       timeout=settings.smtp_timeout)
        except ValueError:
            raise SystemExit("OTP_EMAIL_FROM must be an email address, e.g. otp@example.go.id "
                             "or \"BPJS Ketenagakerjaan <otp@example.go.id>\".") from None

    async def send(self, to: OtpDestination, code: str, locale: str) -> None:
        """Email ``code`` to ``to`` in ``locale``; raises :class:`OtpDeliveryFailed`."""
        with _building():
            message = self._otp_message(to.address, code, locale)
        await self._deliver(message, "code")

    async def warn(self, to: OtpDestination) -> None:
        """Email the lock notice (Indonesian, then English; no code) to ``to``."""
        with _building():
            message = self._lock_message(to.address)
        await self._deliver(message, "lock notice")

    async def check(self) -> None:
        """Connect, EHLO, log in when credentials are set, QUIT, within a second; the result,
        a failure too, is kept 30 seconds. Raises :class:`OtpDeliveryFailed`."""
        async with self._check_lock:
            if self._checked is None or self._clock() - self._checked[0] >= CHECK_CACHE:
                self._checked = (self._clock(), await self._probe())
        failure = self._checked[1]
        if failure is not None:
            raise OtpDeliveryFailed(f"the SMTP server is unavailable ({failure.reason})",
                                    reason=failure.reason)

    async def aclose(self) -> None:
        """Nothing to close: each message has its own connection, closed when it is done."""

    def _otp_message(self, address: str, code: str, locale: str) -> EmailMessage:
        def render(msgid: str, **params: object) -> str:
            return self._catalog.render(Text(msgid, params), locale)

        subject = render(EMAIL_SUBJECT)
        message = self._envelope(address, subject)
        sentence, not_you, automated = render(OTP_SMS, code=code), render(EMAIL_NOT_YOU), \
            render(EMAIL_AUTOMATED)
        message.set_content(f"{sentence}\n\n{not_you}\n\n{automated}\n")
        strong = f'<strong style="font-size:20px;letter-spacing:2px">{html.escape(code)}</strong>'
        marked = html.escape(render(OTP_SMS, code=_CODE_MARK)).replace(_CODE_MARK, strong)
        message.add_alternative(
            f'<!DOCTYPE html>\n<html lang="{locale}"><head><meta charset="utf-8">'
            f"<title>{html.escape(subject)}</title></head>\n"
            '<body style="font-family:Arial,sans-serif;font-size:15px;color:#222">\n'
            f"<p>{marked}</p>\n<p>{html.escape(not_you)}</p>\n"
            f'<p style="color:#666;font-size:13px">{html.escape(automated)}</p>\n'
            "</body></html>\n", subtype="html")
        message["Content-Language"] = locale  # after the content, which resets Content-*
        return message

    def _lock_message(self, address: str) -> EmailMessage:
        titles = " / ".join(self._catalog.render(Text(LOCK_SUBJECT), loc) for loc in ("id", "en"))
        message = self._envelope(address, f"BPJS Ketenagakerjaan: {titles}")
        message.set_content(lock_notice(self._catalog).replace("\n", "\n\n") + "\n")
        message["Content-Language"] = "id, en"
        return message

    def _envelope(self, address: str, subject: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._from
        message["To"] = address
        message["Subject"] = subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain=self._envelope_from.rpartition("@")[2])
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
        return message

    async def _deliver(self, message: EmailMessage, what: str) -> None:
        for attempt in (1, 2):
            try:
                await self._attempt(message)
            except _Failure as failure:
                if failure.temporary and attempt == 1:
                    log.info("email %s: temporary answer %s, trying once more", what,
                             failure.code)
                    await asyncio.sleep(self._retry_pause)
                    continue
                reason = "server" if failure.temporary else failure.reason
                log.warning("email %s not sent: %s (SMTP %s)", what, reason, failure.code or "-")
                raise OtpDeliveryFailed(f"the email could not be sent ({reason})",
                                        reason=reason) from None
            log.debug("email %s handed to the SMTP server", what)
            return

    async def _attempt(self, message: EmailMessage) -> None:
        client = await self._client()
        try:
            async with asyncio.timeout(self._timeout):
                await self._open(client)
                with _stage("send"):
                    await client.send_message(message, sender=self._envelope_from)
        except TimeoutError:
            client.close()
            raise _Failure("timeout") from None
        except BaseException:
            client.close()
            raise
        await _quit(client)

    async def _probe(self) -> _Failure | None:
        client = await self._client(timeout=CHECK_BUDGET)
        try:
            async with asyncio.timeout(CHECK_BUDGET):
                await self._open(client)
                with _stage("quit"):
                    await client.quit()
        except TimeoutError:
            failure: _Failure | None = _Failure("timeout")
        except _Failure as exc:
            failure = exc
        else:
            failure = None
        finally:
            client.close()
        if failure is not None:
            log.warning("SMTP check failed: %s (SMTP %s)", failure.reason, failure.code or "-")
        return failure

    async def _open(self, client: aiosmtplib.SMTP) -> None:
        server = self._server
        with _stage("connect"):
            await client.connect()
        with _stage("tls"):
            if server.starttls is True:
                await client.starttls()
            elif server.starttls is None:
                await client.ehlo()
                if client.supports_extension("starttls"):
                    await client.starttls(tls_context=self._tls_context or _unverified())
        if server.username:
            with _stage("auth"):
                await client.login(server.username, server.password)

    async def _client(self, timeout: float | None = None) -> aiosmtplib.SMTP:
        if self._helo_name is None:  # aiosmtplib would ask the resolver on every connect
            self._helo_name = await asyncio.to_thread(socket.getfqdn)
        server = self._server
        return aiosmtplib.SMTP(
            hostname=server.host, port=server.port, use_tls=server.implicit_tls,
            start_tls=False, tls_context=self._tls_context, local_hostname=self._helo_name,
            timeout=timeout or self._timeout)


@contextmanager
def _building() -> Iterator[None]:
    """A message that cannot be built (an address with a line break) is rejected."""
    try:
        yield
    except ValueError:
        log.warning("email not sent: %s (SMTP -)", "rejected")
        raise OtpDeliveryFailed("the email address cannot be used", reason="rejected") from None


@contextmanager
def _stage(stage: str) -> Iterator[None]:
    """Map aiosmtplib's exceptions in ``stage`` (connect, tls, auth, send, quit) to a reason."""
    try:
        yield
    except TimeoutError:  # aiosmtplib's own timeouts derive from it
        raise _Failure("timeout") from None
    except aiosmtplib.SMTPRecipientsRefused as exc:
        raise _answer(stage, exc.recipients[0].code) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise _answer(stage, exc.code) from None
    except aiosmtplib.SMTPConnectError as exc:  # refused, reset, unreachable, unknown host
        tls = isinstance(exc.__cause__, ssl.SSLError)  # smtps: a handshake or certificate
        raise _Failure("server" if tls else "refused") from None
    except ssl.SSLError:  # before ValueError: a failed certificate check is both
        raise _Failure("server") from None
    except (aiosmtplib.SMTPNotSupported, ValueError):
        # send: an address aiosmtplib will not put in an envelope, or one that needs SMTPUTF8
        # which the server does not offer
        raise _Failure("rejected" if stage == "send" else "error") from None
    except (aiosmtplib.SMTPException, OSError):
        # tls: STARTTLS not offered, or a failed handshake; auth: AUTH not offered; else a
        # dropped connection
        raise _Failure("auth" if stage == "auth" else "server") from None


def _answer(stage: str, code: int) -> _Failure:
    """The reason for an SMTP answer ``code`` in ``stage``: 4xx may be tried once more."""
    if 400 <= code < 500:
        return _Failure("server", code, temporary=True)
    if code in _AUTH_CODES or stage == "auth":
        return _Failure("auth", code)
    if stage == "connect":
        return _Failure("refused", code)  # 554 on greeting: this server will not serve us
    return _Failure("rejected" if stage == "send" else "server", code)


async def _quit(client: aiosmtplib.SMTP) -> None:
    """Say goodbye politely; the message is delivered (or not) either way."""
    if client.is_connected:
        try:
            async with asyncio.timeout(1.0):
                await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
    client.close()


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context

"""OTP codes by SMS through an HTTP gateway: Twilio Programmable Messaging.

``SMS_GATEWAY=twilio`` picks :class:`TwilioSmsSender`; ``SMS_GATEWAY_TOKEN`` is
``<Account SID>:<Auth Token>``, ``SMS_SENDER`` a Twilio number (``+1...``), an alphanumeric
sender id (up to 11 characters, at least one letter) or a Messaging Service SID (``MG...``),
``SMS_GATEWAY_URL`` the API base (default ``https://api.twilio.com``; a fake's in tests).

:class:`SmsOtpSender` holds what every provider shares: the texts, the number in E.164, one
retry at most, the mapping of transport faults, the cached health check and the HTTP session.
A provider is one subclass with :meth:`~SmsOtpSender._attempt` (one request, its answer turned
into a reason label) and :meth:`~SmsOtpSender._probe`, registered in :data:`GATEWAYS`.

Nothing here logs a number, a code or a message text; Twilio's own error messages quote the
number, so only its numeric error code and the HTTP status are logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import aiohttp

from app.otp_delivery import OTP_SMS, lock_notice
from app.settings import OtpSettings
from flows.i18n import Catalog
from flows.identifiers import Problem, parse_phone
from flows.ports import OtpDeliveryFailed, OtpDestination
from flows.types import Text

__all__ = ["GATEWAYS", "RetryLater", "SmsOtpSender", "TwilioSmsSender", "e164"]

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 1.0
CHECK_TTL = 30.0
_SEPARATORS = re.compile(r"[\s().-]")


def e164(number: str) -> str:
    """An Indonesian number on file in E.164 (``0812...`` -> ``+62812...``); anything else
    without its separators, for the provider to judge."""
    parsed = parse_phone(number)
    return _SEPARATORS.sub("", number) if isinstance(parsed, Problem) else parsed


class RetryLater(OtpDeliveryFailed):
    """A failure the provider invites one more try at, after ``after`` seconds."""

    def __init__(self, message: str, *, reason: str, after: float) -> None:
        super().__init__(message, reason=reason)
        self.after = after


class SmsOtpSender(ABC):
    """Sends OTP codes and lock notices as SMS through one provider's HTTP API."""

    kind: ClassVar[str] = "sms"
    provider: ClassVar[str]

    def __init__(self, *, timeout: float = 10.0, catalog: Catalog | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._catalog = catalog or Catalog()
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._checked: tuple[float, OtpDeliveryFailed | None] | None = None
        self._check_lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: OtpSettings,
                      catalog: Catalog | None = None) -> SmsOtpSender | None:
        """The sender ``SMS_GATEWAY`` names, or ``None`` when it is empty; an unknown provider
        or malformed credentials stop start-up with a message naming the setting."""
        name = settings.sms_gateway.strip().lower()
        if not name:
            return None
        gateway = GATEWAYS.get(name)
        if gateway is None:
            raise SystemExit(f"SMS_GATEWAY={settings.sms_gateway!r} is not a known SMS "
                             f"provider; accepted values: {', '.join(sorted(GATEWAYS))}.")
        return gateway.configured(settings, catalog)

    @classmethod
    @abstractmethod
    def configured(cls, settings: OtpSettings, catalog: Catalog | None) -> SmsOtpSender:
        """This provider's sender from the ``SMS_*`` settings (``SystemExit`` if malformed)."""

    async def send(self, to: OtpDestination, code: str, locale: str) -> None:
        """Send ``code`` to the number on file, in ``locale``."""
        body = self._catalog.render(Text(OTP_SMS, {"code": code}), locale)
        await self._deliver(to, body, "code")

    async def warn(self, to: OtpDestination) -> None:
        """Send the lock notice (Indonesian, then English; no code) to the number on file."""
        await self._deliver(to, lock_notice(self._catalog), "lock notice")

    async def check(self) -> None:
        """Whether the gateway answers and takes the credentials, within a second; the
        result (a failure too) is kept for 30 s."""
        async with self._check_lock:
            if self._checked is None or self._clock() - self._checked[0] >= CHECK_TTL:
                self._checked = (self._clock(), await self._probed())
        if (failure := self._checked[1]) is not None:
            raise OtpDeliveryFailed(str(failure), reason=failure.reason)

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    @abstractmethod
    async def _attempt(self, number: str, body: str) -> None:
        """One request to send ``body`` to ``number`` (E.164); raises
        :class:`OtpDeliveryFailed`, or :class:`RetryLater` when one more try may help."""

    @abstractmethod
    async def _probe(self) -> None:
        """One cheap authenticated request; raises :class:`OtpDeliveryFailed`."""

    def _http(self) -> aiohttp.ClientSession:
        """The sender's one session, opened on first use (inside the event loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def _deliver(self, to: OtpDestination, body: str, what: str) -> None:
        number = e164(to.address)
        try:
            try:
                await self._attempt_mapped(number, body)
            except RetryLater as retry:
                log.info("sms %s: %s, trying once more in %.1f s", what, retry.reason,
                         retry.after)
                await asyncio.sleep(retry.after)
                await self._attempt_mapped(number, body)
        except OtpDeliveryFailed as failure:
            # The failure's text is ours (a status, Twilio's numeric code), never the provider's.
            log.warning("sms %s not sent via %s: %s (%s)", what, self.provider, failure.reason,
                        failure)
            raise OtpDeliveryFailed(f"the SMS gateway did not take the {what}",
                                    reason=failure.reason) from None
        log.info("sms %s handed to %s", what, self.provider)

    async def _attempt_mapped(self, number: str, body: str) -> None:
        with _transport_faults():
            await self._attempt(number, body)

    async def _probed(self) -> OtpDeliveryFailed | None:
        try:
            with _transport_faults():
                await asyncio.wait_for(self._probe(), CHECK_TIMEOUT)
        except OtpDeliveryFailed as failure:
            log.warning("sms gateway %s check failed: %s (%s)", self.provider, failure.reason,
                        failure)
            return OtpDeliveryFailed("the SMS gateway is not available", reason=failure.reason)
        return None


@contextmanager
def _transport_faults() -> Iterator[None]:
    """aiohttp's faults as reason labels (a timeout first: aiohttp's are connection errors
    too)."""
    try:
        yield
    except TimeoutError:
        raise OtpDeliveryFailed("the SMS gateway did not answer in time",
                                reason="timeout") from None
    except aiohttp.ClientConnectionError:
        raise OtpDeliveryFailed("the SMS gateway refused the connection",
                                reason="refused") from None
    except aiohttp.ClientError:
        raise OtpDeliveryFailed("the SMS gateway could not be reached", reason="error") from None


_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
_NUMBER = re.compile(r"\+[1-9][0-9]{1,14}")
_ALPHA_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 +&_-]{1,11}")
# Twilio error codes for a recipient it will not send to (documented at
# https://www.twilio.com/docs/api/errors/<code>).
TWILIO_REJECTED = {
    21211: "invalid 'To' number",
    21408: "destination region not enabled",
    21610: "recipient unsubscribed",
    21614: "'To' is not a mobile number",
}
_RETRY_AFTER_MAX = 2.0
_SERVER_RETRY = 0.5


class TwilioSmsSender(SmsOtpSender):
    """Twilio Programmable Messaging: ``POST /2010-04-01/Accounts/{sid}/Messages.json``,
    form-encoded ``To``, ``From`` or ``MessagingServiceSid``, ``Body``; HTTP Basic auth."""

    provider = "twilio"

    def __init__(self, account_sid: str, auth_token: str, sender: str, *,
                 api_base: str = "https://api.twilio.com", timeout: float = 10.0,
                 catalog: Catalog | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(timeout=timeout, catalog=catalog, clock=clock)
        self._auth = {"Authorization": aiohttp.encode_basic_auth(account_sid, auth_token)}
        self._account = f"{api_base.rstrip('/')}/2010-04-01/Accounts/{account_sid}"
        field = "MessagingServiceSid" if _SERVICE_SID.fullmatch(sender) else "From"
        self._sender = {field: sender}

    @classmethod
    def configured(cls, settings: OtpSettings, catalog: Catalog | None) -> TwilioSmsSender:
        """From ``SMS_GATEWAY_TOKEN`` (``AC...:token``), ``SMS_SENDER``, ``SMS_GATEWAY_URL``
        and ``SMS_TIMEOUT``."""
        sid, _, token = settings.sms_gateway_token.get_secret_value().strip().partition(":")
        if not _ACCOUNT_SID.fullmatch(sid) or not token or any(c.isspace() for c in token):
            raise SystemExit("SMS_GATEWAY_TOKEN must be '<Account SID>:<Auth Token>' for "
                             "SMS_GATEWAY=twilio (the Account SID is AC and 32 hex digits).")
        sender = settings.sms_sender.strip()
        if not (_SERVICE_SID.fullmatch(sender) or _NUMBER.fullmatch(sender)
                or (_ALPHA_SENDER.fullmatch(sender) and not sender.startswith("MG"))):
            raise SystemExit("SMS_SENDER must be a Twilio number (+...), an alphanumeric "
                             "sender id (1-11 letters/digits, at least one letter) or a "
                             "Messaging Service SID (MG and 32 hex digits).")
        base = settings.sms_gateway_url.strip() or "https://api.twilio.com"
        if not base.startswith(("https://", "http://")):
            raise SystemExit("SMS_GATEWAY_URL must start with https:// (or http://).")
        return cls(sid, token, sender, api_base=base, timeout=settings.sms_timeout,
                   catalog=catalog)

    async def _attempt(self, number: str, body: str) -> None:
        form = {"To": number, **self._sender, "Body": body}
        async with self._http().post(f"{self._account}/Messages.json", data=form,
                                     headers=self._auth, allow_redirects=False) as response:
            status = response.status
            answer = await _json(response)
            retry_after = response.headers.get("Retry-After", "")
        if status in (200, 201) and answer is not None and answer.get("sid"):
            if answer.get("status") in ("failed", "undelivered"):
                raise OtpDeliveryFailed("twilio failed the message", reason="rejected")
            return
        raise _failure(status, answer, retry_after)

    async def _probe(self) -> None:
        async with self._http().get(f"{self._account}.json", headers=self._auth,
                                    allow_redirects=False) as response:
            status = response.status
            answer = await _json(response)
        if status == 200 and answer is not None:
            if answer.get("status", "active") != "active":
                raise OtpDeliveryFailed("the twilio account is not active", reason="auth")
            return
        raise _failure(status, answer, "")


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any] | None:
    """The answer's JSON object, or ``None`` when it is not one (a proxy's HTML page)."""
    try:
        answer = await response.json(content_type=None)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _failure(status: int, answer: dict[str, Any] | None, retry_after: str) -> OtpDeliveryFailed:
    """A Twilio answer other than a created message, as a reason label."""
    code = answer.get("code") if answer else None
    code = code if isinstance(code, int) else None  # a number only: never the provider's text
    log.debug("twilio answered %d (error code %s)", status, code)
    if status in (401, 403):
        return OtpDeliveryFailed(f"twilio refused the credentials ({code})", reason="auth")
    if status == 429:
        return _throttled(retry_after)
    if status >= 500 or status < 300 or answer is None:
        return _server(status)
    if code in TWILIO_REJECTED:
        return OtpDeliveryFailed(f"twilio: {TWILIO_REJECTED[code]} ({code})", reason="rejected")
    return OtpDeliveryFailed(f"twilio answered {status} (error code {code})", reason="error")


def _throttled(retry_after: str) -> OtpDeliveryFailed:
    """429: one more try when ``Retry-After`` asks for at most 2 s, else throttled now."""
    after = _seconds(retry_after)
    if after is not None and after <= _RETRY_AFTER_MAX:
        return RetryLater("twilio asks to slow down", reason="throttled", after=after)
    return OtpDeliveryFailed("twilio asks to slow down", reason="throttled")


def _server(status: int) -> OtpDeliveryFailed:
    """Twilio's own fault (or an answer that is no message resource nor Twilio error):
    502, 503 and 504 are tried once more after half a second."""
    if status in (502, 503, 504):
        return RetryLater(f"twilio answered {status}", reason="server", after=_SERVER_RETRY)
    return OtpDeliveryFailed(f"twilio answered {status} without a usable body",
                             reason="server")


def _seconds(retry_after: str) -> float | None:
    """``Retry-After`` in seconds; ``None`` when absent or an HTTP date."""
    try:
        value = float(retry_after)
    except ValueError:
        return None
    return value if value >= 0 else None


GATEWAYS: dict[str, type[SmsOtpSender]] = {"twilio": TwilioSmsSender}

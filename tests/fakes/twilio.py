"""A fake Twilio Programmable Messaging API on loopback, for tests of the SMS sender.

    async with FakeTwilio() as twilio:
        sender = TwilioSmsSender(twilio.account_sid, twilio.auth_token, "+15005550006",
                                 api_base=twilio.url())
        await sender.send(OtpDestination("sms", "081234567890"), "123456", "id")
        assert twilio.sent()[0].to == "+6281234567890"

It serves what the sender uses, as Twilio documents it:

- ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``: HTTP Basic auth with the Account
  SID and Auth Token (else 401, error 20003 "Authenticate"); a form-encoded body (a JSON body
  carries no parameters for Twilio, so ``To`` is missing: 21604) with ``To`` in E.164 (else
  21211, whose message quotes the number as Twilio's does), ``From`` (a number or an
  alphanumeric sender id, else 21212) or ``MessagingServiceSid`` (a known ``MG...``, else
  21701), ``Body`` (21602 when empty, 21617 beyond 1,600 characters). Accepted: 201 with a
  Message resource, status ``queued`` (``From``) or ``accepted`` (Messaging Service).
- ``GET /2010-04-01/Accounts/{AccountSid}.json``: the Account resource (200) or 401.

Errors answer Twilio's body ``{"code", "message", "more_info", "status"}``. Faults:
:meth:`FakeTwilio.refuse` answers a recipient with an error code for good (21211, 21614,
21610, 21408), :meth:`FakeTwilio.fail` the next calls with a status (429 with a
``Retry-After``, 5xx, a non-JSON page), ``delay`` holds every answer back.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

__all__ = ["ACCOUNT_SID", "AUTH_TOKEN", "SERVICE_SID", "FakeTwilio", "TwilioMessage"]

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
SERVICE_SID = "MG" + "fedcba9876543210" * 2
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_ALPHA_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 +&_-]{1,11}")
MESSAGES = {
    20003: "Authenticate",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    21211: "The 'To' number {to} is not a valid phone number.",
    21212: "The 'From' number {from_} is not a valid phone number, shortcode, or "
           "alphanumeric sender ID.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the "
           "'To' number: {to}.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number {to} is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21701: "The Messaging Service does not exist",
}


@dataclass
class TwilioMessage:
    """One Messages.json request: the form fields, the arrival (``time.monotonic()``), the
    HTTP status answered and Twilio's error code when refused."""

    form: dict[str, str]
    at: float
    status: int = 201
    code: int | None = None
    sid: str = ""

    @property
    def to(self) -> str:
        """``To``."""
        return self.form.get("To", "")

    @property
    def from_(self) -> str:
        """``From`` (empty with a Messaging Service)."""
        return self.form.get("From", "")

    @property
    def service(self) -> str:
        """``MessagingServiceSid`` (empty with ``From``)."""
        return self.form.get("MessagingServiceSid", "")

    @property
    def body(self) -> str:
        """``Body``: the SMS text."""
        return self.form.get("Body", "")


@dataclass
class _Fault:
    status: int
    code: int | None
    retry_after: str | None
    text: str | None  # a non-JSON page instead of Twilio's error body


@dataclass
class FakeTwilio(LoopbackServer):
    """The fake server, for one account; ``services`` are its Messaging Service SIDs."""

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    services: set[str] = field(default_factory=lambda: {SERVICE_SID})
    delay: float = 0.0  # seconds before every answer (a slow gateway)
    account_status: str = "active"
    calls: list[TwilioMessage] = field(default_factory=list, init=False)
    fetches: int = field(default=0, init=False)  # GET of the Account resource
    _refused: dict[str, int] = field(default_factory=dict, init=False)
    _faults: list[_Fault] = field(default_factory=list, init=False)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1), init=False)

    def app(self) -> web.Application:
        """The Messages and Account resources of API version 2010-04-01."""
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create)
        app.router.add_get("/2010-04-01/Accounts/{sid}.json", self._account)
        return app

    # --- faults ---------------------------------------------------------------------------

    def refuse(self, to: str, code: int) -> None:
        """Messages to ``to`` (E.164) answer 400 with ``code`` from now on."""
        self._refused[to] = code

    def fail(self, status: int, *, code: int | None = None, times: int = 1,
             retry_after: str | None = None, text: str | None = None) -> None:
        """The next ``times`` requests answer ``status`` (Twilio's error body with ``code``,
        or ``text`` as an HTML page), ``Retry-After`` when given."""
        self._faults.extend(_Fault(status, code, retry_after, text) for _ in range(times))

    # --- records --------------------------------------------------------------------------

    def sent(self) -> list[TwilioMessage]:
        """Accepted messages, oldest first."""
        return [c for c in self.calls if c.status == 201]

    # --- serving --------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        form = await _form(request)
        call = TwilioMessage(form, time.monotonic())
        self.calls.append(call)
        refusal = await self._refusal(request)
        if refusal is not None:
            call.status = refusal.status
            return refusal
        if (code := self._invalid(form)) is not None:
            call.status, call.code = 400, code
            return _error(400, code, to=call.to, from_=call.from_)
        call.sid = f"SM{next(self._ids):032x}"
        return web.json_response(self._resource(call), status=201)

    async def _account(self, request: web.Request) -> web.Response:
        self.fetches += 1
        answer = await self._refusal(request)
        if answer is not None:
            return answer
        return web.json_response({
            "sid": self.account_sid, "owner_account_sid": self.account_sid,
            "friendly_name": "BPJS OTP", "status": self.account_status, "type": "Full",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}.json"})

    async def _refusal(self, request: web.Request) -> web.Response | None:
        """The delay, then an injected fault or an authentication failure."""
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._faults:
            return _faulted(self._faults.pop(0))
        if _credentials(request) != (self.account_sid, self.auth_token) \
                or request.match_info["sid"] != self.account_sid:
            return _error(401, 20003)
        return None

    def _invalid(self, form: dict[str, str]) -> int | None:
        """The error code Twilio answers these fields with, if any."""
        to, from_, service = form.get("To", ""), form.get("From", ""), \
            form.get("MessagingServiceSid", "")
        checks = [
            (not to, 21604), (not _E164.fullmatch(to), 21211),
            (not from_ and not service, 21603),
            (bool(service) and service not in self.services, 21701),
            (bool(from_) and not (_E164.fullmatch(from_) or _ALPHA_SENDER.fullmatch(from_)),
             21212),
            (not form.get("Body"), 21602), (len(form.get("Body", "")) > 1600, 21617),
            (to in self._refused, self._refused.get(to, 0)),
        ]
        return next((code for failed, code in checks if failed), None)

    def _resource(self, call: TwilioMessage) -> dict[str, Any]:
        return {
            "sid": call.sid, "account_sid": self.account_sid, "to": call.to,
            "from": call.from_ or None, "messaging_service_sid": call.service or None,
            "body": call.body, "status": "accepted" if call.service else "queued",
            "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01",
            "price": None, "error_code": None, "error_message": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{call.sid}.json"}


async def _form(request: web.Request) -> dict[str, str]:
    """The form fields; Twilio reads parameters only from a form-encoded body."""
    if request.content_type != "application/x-www-form-urlencoded":
        return {}
    return {key: str(value) for key, value in (await request.post()).items()}


def _credentials(request: web.Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _error(status: int, code: int, **values: str) -> web.Response:
    """Twilio's error body."""
    message = MESSAGES.get(code, "Error").format_map({"to": "", "from_": "", **values})
    return web.json_response({
        "code": code, "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
        status=status)


def _faulted(fault: _Fault) -> web.Response:
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    if fault.text is not None:
        return web.Response(status=fault.status, text=fault.text, content_type="text/html",
                            headers=headers)
    code = fault.code or {429: 20429}.get(fault.status, 20500)
    response = _error(fault.status, code)
    response.headers.update(headers)
    return response


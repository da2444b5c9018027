"""OTP codes by WhatsApp: Meta's authentication template with a copy-code button.

An authentication template's words are Meta's own ("<code> is your verification code. For
your security, do not share this code."), translated by Meta into the template's language;
the business supplies only the code. Meta's documented request for a copy-code template
(Cloud API, "Sending authentication templates") carries the code twice, at most 15
characters::

    {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "6281234567890",
     "type": "template",
     "template": {"name": "kode_otp", "language": {"code": "id"},
                  "components": [
                      {"type": "body", "parameters": [{"type": "text", "text": "123456"}]},
                      {"type": "button", "sub_type": "url", "index": "0",
                       "parameters": [{"type": "text", "text": "123456"}]}]}}

(the button is created as ``otp``/``copy_code`` and Meta stores it as a ``url`` button, hence
``sub_type: url``). The request goes through the WhatsApp channel's
:class:`~channels.whatsapp.graph.GraphClient` (its pool, timeouts and error parsing).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import aiohttp

from app.settings import OtpSettings, WhatsAppSettings
from channels.whatsapp.config import parse_languages
from channels.whatsapp.graph import (
    DEFAULT_API_BASE,
    PAIR_RATE_LIMIT,
    RATE_LIMIT,
    UNDELIVERABLE,
    GraphClient,
    GraphError,
    template_language,
)
from flows.identifiers import Problem, parse_phone
from flows.ports import OtpDeliveryFailed, OtpDestination

__all__ = ["AUTH_CODES", "CHECK_CACHE_SECONDS", "CHECK_TIMEOUT", "MAX_CODE_LENGTH",
           "TEMPLATE_CODES", "THROTTLE_CODES", "WhatsAppOtpSender", "failure_reason"]

log = logging.getLogger(__name__)

MAX_CODE_LENGTH = 15  # Meta: the one-time password is at most 15 characters
CHECK_TIMEOUT = 1.0
CHECK_CACHE_SECONDS = 30.0
CONNECTIONS = 4  # codes are few; the channel's own client keeps its larger pool
# Meta's template errors: 132000 parameter count mismatch, 132001 template (or its language)
# does not exist, 132005 translated text too long, 132007 format character policy violated,
# 132012 parameter format mismatch, 132015 template paused, 132016 template disabled.
TEMPLATE_CODES = frozenset({132000, 132001, 132005, 132007, 132012, 132015, 132016})
# 130429 throughput reached, 131056 too many to one recipient; 4 and 80007 the app's and the
# business account's rate limits.
THROTTLE_CODES = frozenset({RATE_LIMIT, PAIR_RATE_LIMIT, 4, 80007})
AUTH_CODES = frozenset({190, 10})  # token expired or invalid; permission denied (200-299 too)
_NO_MESSAGE_ID = "no message id in the answer"  # GraphClient's title for a malformed answer

_MESSAGES = {
    "template": "the WhatsApp authentication template is missing, not approved or does not "
                "take the code",
    "rejected": "WhatsApp cannot deliver to this number",
    "throttled": "WhatsApp asks to send more slowly",
    "auth": "the WhatsApp token was refused",
    "server": "the WhatsApp API failed",
    "refused": "the WhatsApp API is unreachable",
    "timeout": "the WhatsApp API did not answer in time",
    "error": "the code could not be sent by WhatsApp",
}


def failure_reason(error: GraphError) -> str:
    """The :class:`~flows.ports.OtpDeliveryFailed` reason for a Graph API error."""
    code, status = error.code, error.status
    if code == 0 and status == 0:  # GraphClient: unreachable, timed out, or no message id
        return _unanswered(error.title)
    if code in TEMPLATE_CODES:
        return "template"
    if code == UNDELIVERABLE:
        return "rejected"
    if code in THROTTLE_CODES or status == 429:
        return "throttled"
    if code in AUTH_CODES or 200 <= code <= 299 or status in (401, 403):
        return "auth"
    return "server"  # 5xx, 131000 "something went wrong", and any other answer


def _unanswered(title: str) -> str:
    """GraphClient's code 0 without an HTTP status: its title is the exception's name."""
    if "Timeout" in title:
        return "timeout"
    return "server" if title == _NO_MESSAGE_ID else "refused"


def _failure(error: GraphError, what: str) -> OtpDeliveryFailed:
    reason = failure_reason(error)
    # Meta's code and the HTTP status only: the error's text may echo the recipient.
    log.warning("whatsapp otp %s failed: %s (Meta code %s, HTTP %s)", what, reason,
                error.code, error.status)
    return OtpDeliveryFailed(_MESSAGES[reason], reason=reason)


class WhatsAppOtpSender:
    """Sends OTP codes as an approved copy-code authentication template.

    ``template`` names the template (``WHATSAPP_OTP_TEMPLATE``); ``languages`` are the
    languages it is approved in (``WHATSAPP_OTP_TEMPLATE_LANGUAGES``, ``"id,en"``): a member's
    locale picks the first of them with that language (``en_US`` serves ``en``), else the
    first one. The number on file goes to Meta as digits with the country code
    (``6281234567890``); a number that is not an Indonesian mobile number is ``rejected``
    without a call.

    There is no ``warn``: an authentication template carries nothing but a code (Meta's fixed
    words around it), so the lock notice cannot travel this way; email or SMS carry it.

    ``graph`` is a client for the business number (e.g. the channel's); it stays open on
    :meth:`aclose`. Without it the sender builds and owns its own :class:`GraphClient` from
    ``token``, ``phone_number_id`` and ``api_base``. No retries: the router tries the next
    channel.
    """

    kind: ClassVar[str] = "whatsapp"

    def __init__(self, graph: GraphClient | None = None, *, template: str,
                 languages: str | Sequence[str] = "id,en", token: str = "",
                 phone_number_id: str = "", api_base: str = DEFAULT_API_BASE,
                 timeout: float = 10.0) -> None:
        if not template:
            raise ValueError("WHATSAPP_OTP_TEMPLATE names the authentication template")
        codes = parse_languages(languages) if isinstance(languages, str) else tuple(languages)
        if not codes:
            raise ValueError("WHATSAPP_OTP_TEMPLATE_LANGUAGES needs at least one language")
        for code in codes:
            try:
                template_language(code)
            except ValueError:
                raise ValueError(f"WHATSAPP_OTP_TEMPLATE_LANGUAGES: {code!r} is not a WhatsApp "
                                 "template language code (e.g. id, en, en_US)") from None
        if graph is None:
            if not token:
                raise ValueError("WHATSAPP_TOKEN must be set for WhatsApp OTP codes")
            if not phone_number_id.isdigit():
                raise ValueError("WHATSAPP_PHONE_NUMBER_ID (the numeric id of the business "
                                 "number in the Meta app) must be set for WhatsApp OTP codes")
            graph = GraphClient(token=token, phone_number_id=phone_number_id,
                                api_base=api_base, timeout=timeout,
                                connect_timeout=min(timeout, 5.0), connections=CONNECTIONS)
            self._owned = True
        else:
            self._owned = False
        self._graph = graph
        self.template = template
        self.languages = codes
        self._checked: tuple[float, OtpDeliveryFailed | None] | None = None
        self._check_lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, otp: OtpSettings, wa: WhatsAppSettings, *,
                      graph: GraphClient | None = None) -> WhatsAppOtpSender | None:
        """The sender when ``WHATSAPP_OTP_TEMPLATE`` and ``WHATSAPP_TOKEN`` are set, else
        ``None``; ``ValueError`` naming the setting when one is wrong (a missing
        ``WHATSAPP_PHONE_NUMBER_ID``, an unknown language)."""
        token = wa.whatsapp_token.get_secret_value()
        if not otp.whatsapp_otp_template or not token:
            return None
        return cls(graph, template=otp.whatsapp_otp_template,
                   languages=otp.whatsapp_otp_template_languages, token=token,
                   phone_number_id=wa.whatsapp_phone_number_id,
                   api_base=wa.whatsapp_api_base)

    def language(self, locale: str) -> str:
        """The template language for a member's locale (``id``, ``en``, ``en_US``...)."""
        wanted = locale.replace("-", "_")
        if wanted in self.languages:
            return wanted
        base = wanted.split("_", 1)[0].lower()
        return next((code for code in self.languages
                     if code.split("_", 1)[0].lower() == base), self.languages[0])

    def payload(self, wa_id: str, code: str, locale: str) -> dict[str, Any]:
        """Meta's JSON for one code to ``wa_id`` (digits with the country code)."""
        parameter = [{"type": "text", "text": code}]
        return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": wa_id,
                "type": "template",
                "template": {"name": self.template,
                             "language": {"code": self.language(locale)},
                             "components": [
                                 {"type": "body", "parameters": parameter},
                                 {"type": "button", "sub_type": "url", "index": "0",
                                  "parameters": parameter}]}}

    async def send(self, to: OtpDestination, code: str, locale: str) -> None:
        """Send ``code`` to the number on file; :class:`OtpDeliveryFailed` with the reason."""
        if to.kind != self.kind:
            raise OtpDeliveryFailed("not a WhatsApp destination", reason="error")
        if not code or len(code) > MAX_CODE_LENGTH:
            raise OtpDeliveryFailed("the code does not fit an authentication template",
                                    reason="error")
        phone = parse_phone(to.address)
        if isinstance(phone, Problem):  # a StrEnum: test for it, not for str
            log.warning("whatsapp otp not sent: rejected (not an Indonesian mobile number)")
            raise OtpDeliveryFailed(_MESSAGES["rejected"], reason="rejected")
        try:
            answer = await self._graph._post(self.payload(phone.removeprefix("+"), code, locale))
        except GraphError as exc:
            raise _failure(exc, "send") from None
        if not _message_id(answer):
            raise _failure(GraphError(0, _NO_MESSAGE_ID), "send")
        log.debug("whatsapp otp sent (template language %s)", self.language(locale))

    async def check(self) -> None:
        """``GET`` the business number's id on the Graph API (at most 1 s), proving the API
        is reachable and the token valid; the result, a failure too, is kept 30 s.

        The template's own status cannot be asked for here: it lives under the WhatsApp
        Business Account, whose id is not among the settings. A missing or paused template
        shows as a ``template`` failure of the first send."""
        async with self._check_lock:
            now = time.monotonic()
            if self._checked is None or now - self._checked[0] >= CHECK_CACHE_SECONDS:
                self._checked = (now, await self._lookup())
            failure = self._checked[1]
        if failure is not None:
            raise OtpDeliveryFailed(str(failure), reason=failure.reason)

    async def aclose(self) -> None:
        """Close the Graph API client when the sender built it."""
        if self._owned:
            await self._graph.close()

    async def _lookup(self) -> OtpDeliveryFailed | None:
        # GraphClient sends messages only: the lookup uses its session (token, pool) and
        # the phone number's URL, ``{api_base}/{phone_number_id}``.
        graph = self._graph
        url = graph._url.removesuffix("/messages")
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                async with graph._client().get(
                        url, params={"fields": "id"},
                        timeout=aiohttp.ClientTimeout(total=CHECK_TIMEOUT)) as response:
                    status = response.status
                    answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _failure(GraphError(0, type(exc).__name__), "check")
        except ValueError:  # not JSON
            return _failure(GraphError(0, "", 500), "check")
        if status >= 400 or not isinstance(answer, dict) or "id" not in answer:
            error = answer.get("error") if isinstance(answer, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            return _failure(GraphError(code if isinstance(code, int) else 0, "",
                                       status if status >= 400 else 500), "check")
        return None


def _message_id(answer: dict[str, Any]) -> str:
    try:
        return str(answer["messages"][0]["id"])
    except (KeyError, IndexError, TypeError):
        return ""

"""What Meta posts to the WhatsApp webhook, checked and parsed into plain values.

The ``X-Hub-Signature-256`` header (``sha256=<hex>``, an HMAC-SHA256 of the raw body keyed by
the app secret) is checked on the raw bytes before any parsing, in constant time. A body is a
``whatsapp_business_account`` notification whose changes carry ``messages`` (what members
sent) and ``statuses`` (what happened to what we sent); anything else in it is ignored, so a
new field Meta adds never breaks the webhook.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["SIGNATURE_HEADER", "Inbound", "Notification", "Status", "message_ref",
           "parse_notification", "sign", "signature_ok"]

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The header value Meta sends with ``body``."""
    return _PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the body's signature under ``secret`` (constant time)."""
    if not secret or not header:
        return False
    # aiohttp decodes header bytes that are not UTF-8 as lone surrogates: give the bytes back.
    given = header.strip().lower().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, sign(secret, body).encode())


def message_ref(message_id: str) -> str:
    """A short stable name for a message id, for logs and store keys: a ``wamid`` is base64
    of, among others, the member's phone number, so it never appears as it is."""
    return hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Inbound:
    """One member message. ``kind`` is ``text``, ``button`` (``data`` is the pressed button's
    id or quick-reply payload), ``contact`` (a shared contact card: ``phone`` and whether it
    is the sender's own) or ``other`` (media, location, anything the bot cannot read)."""

    id: str
    wa_id: str
    kind: str
    text: str = ""
    data: str = ""
    phone: str = ""
    own: bool = False
    sent_at: float | None = None  # when the member sent it (Unix seconds), as Meta says


@dataclass(frozen=True, slots=True)
class Status:
    """What happened to a message we sent: ``sent``, ``delivered``, ``read`` or ``failed``
    (with Meta's error code and title)."""

    id: str
    status: str
    error_code: int | None = None
    error_title: str = ""


@dataclass(frozen=True, slots=True)
class Notification:
    """The messages and statuses of one webhook post, in the order Meta listed them."""

    messages: tuple[Inbound, ...] = ()
    statuses: tuple[Status, ...] = ()


def parse_notification(payload: object, phone_number_id: str = "") -> Notification:
    """The messages and statuses addressed to ``phone_number_id`` (to any number when empty).

    ``ValueError`` when the payload is not a JSON object; unknown or malformed parts of a valid
    object are skipped."""
    if not isinstance(payload, Mapping):
        raise ValueError("a webhook notification is a JSON object")
    messages: list[Inbound] = []
    statuses: list[Status] = []
    for value in _values(payload, phone_number_id):
        messages.extend(m for raw in _list(value.get("messages")) if (m := _message(raw)))
        statuses.extend(s for raw in _list(value.get("statuses")) if (s := _status(raw)))
    return Notification(tuple(messages), tuple(statuses))


def _values(payload: Mapping[str, Any], phone_number_id: str) -> Iterator[Mapping[str, Any]]:
    if payload.get("object") != "whatsapp_business_account":
        return
    for entry in _list(payload.get("entry")):
        for change in _list(_map(entry).get("changes")):
            value = _map(_map(change).get("value"))
            number = str(_map(value.get("metadata")).get("phone_number_id", ""))
            if _map(change).get("field") == "messages" and (
                    not phone_number_id or number == phone_number_id):
                yield value


def _message(raw: object) -> Inbound | None:
    message = _map(raw)
    ident, sender, kind = (str(message.get(k, "")) for k in ("id", "from", "type"))
    if not ident or not sender:
        return None
    parsed = _parse_message(message, ident, sender, kind)
    stamp = str(message.get("timestamp", ""))
    if parsed is None or not stamp.isdigit():
        return parsed
    return replace(parsed, sent_at=float(stamp))


def _parse_message(message: Mapping[str, Any], ident: str, sender: str,
                   kind: str) -> Inbound | None:
    if kind == "text":
        return Inbound(ident, sender, "text", text=str(_map(message.get("text")).get("body", "")))
    if kind == "interactive":
        return _interactive(ident, sender, _map(message.get("interactive")))
    if kind == "button":  # a template's quick-reply button
        button = _map(message.get("button"))
        return Inbound(ident, sender, "button", data=str(button.get("payload", "")),
                       text=str(button.get("text", "")))
    if kind == "contacts":
        return _contact(ident, sender, _list(message.get("contacts")))
    return None if kind == "reaction" else Inbound(ident, sender, "other")


def _interactive(ident: str, sender: str, interactive: Mapping[str, Any]) -> Inbound:
    kind = str(interactive.get("type", ""))
    if kind in ("button_reply", "list_reply"):
        reply = _map(interactive.get(kind))
        return Inbound(ident, sender, "button", data=str(reply.get("id", "")),
                       text=str(reply.get("title", "")))
    return Inbound(ident, sender, "other")


def _contact(ident: str, sender: str, cards: list[Any]) -> Inbound:
    """A shared contact card: its first phone; own when WhatsApp names the sender's wa_id."""
    phones = [_map(p) for card in cards[:1] for p in _list(_map(card).get("phones"))]
    if not phones:
        return Inbound(ident, sender, "other")
    if any(str(p.get("wa_id", "")) == sender for p in phones):
        return Inbound(ident, sender, "contact", phone="+" + sender, own=True)
    return Inbound(ident, sender, "contact", phone=str(phones[0].get("phone", "")))


def _status(raw: object) -> Status | None:
    status = _map(raw)
    ident, state = str(status.get("id", "")), str(status.get("status", ""))
    if not ident or not state:
        return None
    error = _map(next(iter(_list(status.get("errors"))), None))
    code = error.get("code")
    return Status(ident, state, code if isinstance(code, int) else None,
                  str(error.get("title", "")))


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []

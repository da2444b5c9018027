"""Webhook notifications as Meta posts them, built from the fixtures in ``tests/data/whatsapp``.

Each builder copies a fixture (Meta's documented format) and fills in the member, the
content, a fresh message id and the time, so tests read like what happened::

    payload = text_message("6281234567890", "cek saldo", at=clock.now())
    body, headers = signed(payload, APP_SECRET)
"""

from __future__ import annotations

import copy
import itertools
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from channels.whatsapp.inbound import SIGNATURE_HEADER, sign

__all__ = ["FIXTURES", "button_reply", "fixture", "list_reply", "quick_reply", "signed",
           "status_update", "text_message"]

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "whatsapp"
_ids = itertools.count(1)


def fixture(name: str) -> dict[str, Any]:
    """A fixture as it is (a fresh copy)."""
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


def _message(name: str, wa_id: str, at: datetime | None, message_id: str | None,
             phone_number_id: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    payload = fixture(name)
    value = payload["entry"][0]["changes"][0]["value"]
    if phone_number_id is not None:
        value["metadata"]["phone_number_id"] = phone_number_id
    value["contacts"][0]["wa_id"] = wa_id
    message = value["messages"][0]
    message["from"] = wa_id
    message["id"] = message_id or f"wamid.test{next(_ids):010d}"
    if at is not None:
        message["timestamp"] = str(int(at.timestamp()))
    return payload, message


def text_message(wa_id: str, text: str, *, at: datetime | None = None,
                 message_id: str | None = None,
                 phone_number_id: str | None = None) -> dict[str, Any]:
    """The member typed ``text``."""
    payload, message = _message("text_message", wa_id, at, message_id, phone_number_id)
    message["text"]["body"] = text
    return payload


def button_reply(wa_id: str, ident: str, title: str = "", *, at: datetime | None = None,
                 message_id: str | None = None) -> dict[str, Any]:
    """The member pressed reply button ``ident``."""
    payload, message = _message("interactive_button_reply", wa_id, at, message_id, None)
    message["interactive"]["button_reply"] = {"id": ident, "title": title or ident}
    return payload


def list_reply(wa_id: str, ident: str, title: str = "", *, at: datetime | None = None,
               message_id: str | None = None) -> dict[str, Any]:
    """The member picked row ``ident`` of a list."""
    payload, message = _message("interactive_list_reply", wa_id, at, message_id, None)
    message["interactive"]["list_reply"] = {"id": ident, "title": title or ident}
    return payload


def quick_reply(wa_id: str, payload_data: str, text: str = "", *, at: datetime | None = None,
                message_id: str | None = None) -> dict[str, Any]:
    """The member pressed a template's quick-reply button carrying ``payload_data``."""
    payload, message = _message("quick_reply_button", wa_id, at, message_id, None)
    message["button"] = {"payload": payload_data, "text": text or payload_data}
    return payload


def status_update(status: str, message_id: str = "", *, code: int | None = None) -> dict[str, Any]:
    """A status of a sent message (``failed`` with error ``code``, 131047 by default)."""
    payload = fixture("status_failed" if status == "failed" else f"status_{status}")
    entry = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
    if message_id:
        entry["id"] = message_id
    if code is not None:
        entry["errors"][0]["code"] = code
    return copy.deepcopy(payload)


def signed(payload: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    """The raw body and the headers Meta sends with it."""
    body = json.dumps(payload).encode()
    return body, {SIGNATURE_HEADER: sign(secret, body), "Content-Type": "application/json"}

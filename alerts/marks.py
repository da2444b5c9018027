"""The names and values of the alerts' exactly-once marks, shared by both queue backends.

A chat's marks live together (one Redis hash per chat), named by a keyed hash of the chat so
that no chat id (a WhatsApp chat id is a phone number) or KPJ appears in a key or a field.
One mark per job identity: ``p`` planned, ``s:<consumer>`` being sent, ``d:<result>``
finished; and a counter of the alerts sent to the chat under :data:`SENT_COUNTER`.
"""

from __future__ import annotations

import hmac

from domain.alerts import AlertJob
from flows.types import SessionKey

__all__ = ["DONE", "MARK_TTL", "PLANNED", "SENDING", "SENT_COUNTER", "chat_tag", "mark_field"]

PLANNED = "p"
SENDING = "s:"  # followed by the consumer's name
DONE = "d:"  # followed by the Result's value
SENT_COUNTER = "#sent"  # never a mark's field: those start with the kind
MARK_TTL = 400 * 24 * 3600.0  # a chat's marks outlive a year's alerts, refreshed on each write


def _keyed(secret: bytes, text: str) -> str:
    return hmac.digest(secret, text.encode(), "sha256").hex()


def chat_tag(secret: bytes, key: SessionKey) -> str:
    """The name of the chat's marks: 24 hex digits of HMAC-SHA256 of ``"alerts:<chat>"``."""
    return _keyed(secret, "alerts:" + str(key))[:24]


def mark_field(secret: bytes, job: AlertJob) -> str:
    """The job identity's mark within its chat's marks: ``<kind>:<period>:<kpj tag>``, the KPJ
    as 10 hex digits of its HMAC."""
    return f"{job.kind.value}:{job.period}:{_keyed(secret, job.kpj)[:10]}"

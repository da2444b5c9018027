"""The names and values of the alerts' exactly-once marks, shared by both queue backends.

A chat's marks live together (one Redis hash per chat), named by a keyed hash of the chat so
that no chat id (a WhatsApp chat id is a phone number) or KPJ appears in a key or a field.
One mark per job identity: ``p`` planned, ``s:<consumer>`` being sent, ``d:<result>``
finished; and a counter of the alerts sent to the chat under :data:`SENT_COUNTER`.

The names are computed for every job the planner writes and twice more per job sent (begin
and finish), so both are cheap: the HMAC's padded key is hashed once per secret (the same
HMAC-SHA256 as :func:`hmac.digest`, in half the time), and the latest names are cached.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from domain.alerts import AlertJob
from flows.types import SessionKey

__all__ = ["DONE", "MARK_TTL", "PLANNED", "SENDING", "SENT_COUNTER", "chat_tag", "job_tags",
           "kpj_tag", "mark_field"]

PLANNED = "p"
SENDING = "s:"  # followed by the consumer's name
DONE = "d:"  # followed by the Result's value
SENT_COUNTER = "#sent"  # never a mark's field: those start with the kind
MARK_TTL = 400 * 24 * 3600.0  # a chat's marks outlive a year's alerts, refreshed on each write
_CACHED = 1 << 14  # names kept per kind of name (a worker's batch, a chat's memberships)
_BLOCK = 64  # SHA-256's block size in bytes


class _Hmac:
    """HMAC-SHA256 under one secret with its inner and outer pads hashed once (RFC 2104)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) > _BLOCK:
            secret = hashlib.sha256(secret).digest()
        padded = secret.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in padded))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in padded))

    def hex(self, text: str) -> str:
        """The HMAC of ``text`` (UTF-8) in hex digits."""
        inner = self._inner.copy()
        inner.update(text.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


@lru_cache(maxsize=8)
def _hmac(secret: bytes) -> _Hmac:
    return _Hmac(secret)


@lru_cache(maxsize=_CACHED)
def _chat_tag(secret: bytes, chat: str) -> str:
    return _hmac(secret).hex("alerts:" + chat)[:24]


@lru_cache(maxsize=_CACHED)
def kpj_tag(secret: bytes, kpj: str) -> str:
    """A KPJ as a mark names it: 10 hex digits of its HMAC."""
    return _hmac(secret).hex(kpj)[:10]


def chat_tag(secret: bytes, key: SessionKey) -> str:
    """The name of the chat's marks: 24 hex digits of HMAC-SHA256 of ``"alerts:<chat>"``."""
    return _chat_tag(secret, f"{key.channel}:{key.chat_id}")


def mark_field(secret: bytes, job: AlertJob) -> str:
    """The job identity's mark within its chat's marks: ``<kind>:<period>:<kpj tag>``, the KPJ
    as 10 hex digits of its HMAC."""
    return f"{job.kind.value}:{job.period}:{kpj_tag(secret, job.kpj)}"


def job_tags(secret: bytes, job: AlertJob) -> tuple[str, str]:
    """The job's :func:`chat_tag` and :func:`mark_field` together (without building the
    job's :class:`~flows.types.SessionKey`)."""
    return (_chat_tag(secret, f"{job.channel}:{job.chat_id}"),
            f"{job.kind.value}:{job.period}:{kpj_tag(secret, job.kpj)}")

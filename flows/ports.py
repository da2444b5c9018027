"""The ports the conversation needs from the outside world, as Protocols.

Backends live elsewhere (``storage/``, ``balance/``, ``bot/``) and are injected by constructor
from ``run_bot.py``. Flows depend only on these Protocols, never on a backend.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from flows.types import Session, SessionKey


class StoreUnavailable(Exception):
    """The session store (Redis) cannot be reached or answered with an error."""


class SessionBusy(Exception):
    """Another update of the same chat held the per-chat lock for too long."""


class SessionSlot:
    """The session of one chat while its per-chat lock is held.

    ``session`` starts as the stored session (``None`` when there is none); whatever it holds
    when the ``SessionStore.chat`` block exits normally is saved (``None`` deletes it).
    """

    __slots__ = ("session",)

    def __init__(self, session: Session | None) -> None:
        self.session = session


class SessionStore(Protocol):
    """Per-chat session state with per-chat mutual exclusion (also across processes)."""

    def chat(self, key: SessionKey) -> AbstractAsyncContextManager[SessionSlot]:
        """Lock the chat and load its session (one round trip); save and unlock on exit
        (one round trip). On an exception inside the block nothing is saved, the lock is
        released. Raises :class:`SessionBusy` or :class:`StoreUnavailable`."""
        ...


class KeyValueStore(Protocol):
    """Small values with a time to live: OTP codes, attempt counters, rate limits, dedupe.

    Raises :class:`StoreUnavailable` when the backend cannot be reached.
    """

    async def get(self, name: str) -> str | None:
        """The value, or ``None`` when absent or expired."""
        ...

    async def put(self, name: str, value: str, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds, replacing any earlier value."""
        ...

    async def put_if_absent(self, name: str, value: str, ttl: float) -> bool:
        """Store only when absent; true when stored."""
        ...

    async def incr(self, name: str, ttl: float) -> int:
        """Add one to a counter and return it; a new counter expires after ``ttl`` seconds."""
        ...

    async def delete(self, *names: str) -> None:
        """Remove the values (absent ones are ignored)."""
        ...


class SessionBackend(SessionStore, KeyValueStore, Protocol):
    """One backend serving both session and key-value ports (Redis, or in-process)."""


class AccountStore(Protocol):
    """Durable facts about chats: links to memberships, consent records, the audit log.

    Raises :class:`DatabaseUnavailable` when the database cannot be reached.
    """

    async def linked_kpjs(self, key: SessionKey) -> list[str]:
        """The KPJ numbers linked to this chat, oldest link first."""
        ...

    async def link(self, key: SessionKey, kpj: str, at: datetime) -> None:
        """Link the chat to a KPJ (idempotent)."""
        ...

    async def unlink_all(self, key: SessionKey, at: datetime) -> int:
        """Remove every link of the chat; returns how many were removed."""
        ...

    async def record_consent(self, key: SessionKey, version: str, locale: str,
                             at: datetime) -> None:
        """Record that the member agreed to consent notice ``version``."""
        ...

    async def withdraw_consent(self, key: SessionKey, at: datetime) -> int:
        """Mark the chat's standing consent records withdrawn; returns how many were."""
        ...

    async def has_consent(self, key: SessionKey) -> bool:
        """True when the chat holds a consent record that was not withdrawn."""
        ...

    async def erase(self, key: SessionKey, at: datetime) -> None:
        """Erase links and consent records of the chat (UU PDP right to erasure); the audit
        log keeps only a pseudonymous line that an erasure happened."""
        ...

    async def audit(self, key: SessionKey, action: str, at: datetime, detail: str = "") -> None:
        """Append to the audit log. ``detail`` must never hold a NIK, OTP or phone number."""
        ...


class DatabaseUnavailable(Exception):
    """The SQL database cannot be reached or failed."""


class BalanceServiceUnavailable(Exception):
    """The balance service is down, slow or answered something malformed."""


@dataclass(frozen=True, slots=True)
class IdentityMatch:
    """A member whose NIK, KPJ and birth date belong together, with the contact on file.

    ``phone`` and ``email`` are where an OTP may be sent; they are never shown unmasked.
    """

    kpj: str
    name: str
    phone: str
    email: str


class BalanceService(Protocol):
    """The balance service shared with BPJS's other channels."""

    async def verify_identity(self, nik: str, kpj: str, birth_date: date) -> IdentityMatch | None:
        """The member when NIK, KPJ and birth date belong together, else ``None`` (never
        which field was wrong). Raises :class:`BalanceServiceUnavailable`."""
        ...


class OtpDeliveryFailed(Exception):
    """The OTP could not be handed to the SMS gateway or mail server."""


@dataclass(frozen=True, slots=True)
class OtpDestination:
    """Where an OTP goes: ``kind`` is ``"sms"`` or ``"email"``; ``address`` the number or mail."""

    kind: str
    address: str


class OtpSender(Protocol):
    """Delivers OTP codes. Raises :class:`OtpDeliveryFailed`."""

    async def send(self, to: OtpDestination, code: str, locale: str) -> None:
        """Send ``code`` to ``to`` with a message in ``locale``."""
        ...


class Clock(Protocol):
    """The current time, injectable so that tests control expiry and locks."""

    def now(self) -> datetime:
        """Timezone-aware current time."""
        ...

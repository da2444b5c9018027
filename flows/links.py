"""The chat's linked KPJs, read from the session when they were read recently.

Every balance or history update needs the chat's links, and each read is a database query.
Links change only through this chat's own steps (registration links, ``/keluar`` unlinks,
``/hapusdata`` erases), which run under the chat's lock and go through :class:`CachedLinks`,
so the copy kept in the session is exact for this bot. ``max_age`` bounds how long a change
made outside the bot (an operator editing the database) can go unseen.
"""

from __future__ import annotations

from datetime import datetime

from flows.ports import AccountStore
from flows.types import Session, SessionKey

__all__ = ["LINKS_MAX_AGE", "CachedLinks"]

LINKS_MAX_AGE = 300.0  # seconds


class CachedLinks:
    """An :class:`~flows.ports.AccountStore` for one update: ``linked_kpjs`` answers from the
    session's copy when it is younger than ``max_age``; a link, unlink or erasure drops the
    copy (the next read asks the database). :attr:`links` and :attr:`read_at` are what the
    engine saves with the session."""

    def __init__(self, accounts: AccountStore, stored: Session | None, now: float,
                 max_age: float = LINKS_MAX_AGE) -> None:
        self._accounts = accounts
        self._now = now
        fresh = stored is not None and 0 <= now - stored.links_at <= max_age
        self.links = stored.links if fresh and stored is not None else None
        self.read_at = stored.links_at if self.links is not None and stored else 0.0

    async def linked_kpjs(self, key: SessionKey) -> list[str]:
        """The KPJ numbers linked to this chat, oldest link first."""
        if self.links is None:
            self.links = tuple(await self._accounts.linked_kpjs(key))
            self.read_at = self._now
        return list(self.links)

    def _forget(self) -> None:
        self.links, self.read_at = None, 0.0

    async def link(self, key: SessionKey, kpj: str, at: datetime) -> None:
        """Link the chat to a KPJ (idempotent)."""
        self._forget()
        await self._accounts.link(key, kpj, at)

    async def unlink_all(self, key: SessionKey, at: datetime) -> int:
        """Remove every link of the chat; returns how many were removed."""
        self._forget()
        return await self._accounts.unlink_all(key, at)

    async def erase(self, key: SessionKey, at: datetime) -> None:
        """Erase links and consent records of the chat."""
        self._forget()
        await self._accounts.erase(key, at)

    async def record_consent(self, key: SessionKey, version: str, locale: str,
                             at: datetime) -> None:
        """Record that the member agreed to consent notice ``version``."""
        await self._accounts.record_consent(key, version, locale, at)

    async def withdraw_consent(self, key: SessionKey, at: datetime) -> int:
        """Mark the chat's standing consent records withdrawn."""
        return await self._accounts.withdraw_consent(key, at)

    async def has_consent(self, key: SessionKey, version: str | None = None) -> bool:
        """True when the chat holds a standing consent record (to ``version`` when given)."""
        return await self._accounts.has_consent(key, version)

    async def audit(self, key: SessionKey, action: str, at: datetime, detail: str = "") -> None:
        """Append to the audit log."""
        await self._accounts.audit(key, action, at, detail)

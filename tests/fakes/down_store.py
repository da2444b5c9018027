"""A session store that cannot be reached, as when Redis is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from flows.ports import SessionSlot, StoreUnavailable
from flows.types import SessionKey
from storage.sessions import MemorySessionStore


class DownSessionStore(MemorySessionStore):
    """Every chat fails with :class:`StoreUnavailable`; the key-value half still works."""

    @asynccontextmanager
    async def chat(self, key: SessionKey, *,
                   once: str | None = None) -> AsyncIterator[SessionSlot]:
        raise StoreUnavailable("Redis failed (ConnectionError)")
        yield SessionSlot(None)  # pragma: no cover - makes this a generator

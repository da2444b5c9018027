"""Per-chat order and state of the Telegram channel.

:class:`ChatQueue` serves one chat's updates first come, first served within a process.
:class:`ChatViews` holds the chat's lock in the session store (shared by every process) while
an update is answered, with a small :class:`ChatView` of what the member's client shows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from flows.ports import SessionBusy, SessionSlot, SessionStore, StoreUnavailable
from flows.types import Session, SessionKey

__all__ = ["VIEW", "ChatQueue", "ChatView", "ChatViews"]

log = logging.getLogger(__name__)
VIEW = "telegram-view"  # the session-store channel holding each chat's view and order lock
VIEW_TTL = 30 * 24 * 3600.0


@dataclass
class ChatView:
    """What the member's Telegram client shows that later replies depend on."""

    contact_keyboard: bool = False  # the share-contact keyboard is up
    blocked: bool = False  # the member blocked the bot: nothing more is sent


class ChatQueue:
    """Per-chat FIFO locks of this process, kept only while held or awaited.

    ``asyncio.Lock`` wakes waiters in order and takes a free lock without suspending, so
    entering :meth:`hold` before any other ``await`` keeps the order in which tasks started.
    """

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: Counter[int] = Counter()

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, chat_id: int) -> AsyncIterator[None]:
        """Hold the chat's turn."""
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._users[chat_id] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[chat_id] -= 1
            if not self._users[chat_id]:
                del self._users[chat_id], self._locks[chat_id]


class ChatViews:
    """Each chat's :class:`ChatView`, under the session store's per-chat lock."""

    def __init__(self, sessions: SessionStore) -> None:
        self._sessions = sessions

    @asynccontextmanager
    async def open(self, chat_id: int) -> AsyncIterator[ChatView]:
        """Lock the chat across processes and load its view; save it when the block ends.

        When the store is busy or down the block still runs, unlocked and with a fresh view:
        answering out of order beats not answering. A failed save is logged, not raised."""
        finished = False
        try:
            async with AsyncExitStack() as stack:
                slot = await self._enter(stack, SessionKey(VIEW, str(chat_id)))
                view = _load(slot.session)
                yield view
                finished = True
                slot.session, slot.ttl = _dump(view), VIEW_TTL
        except (SessionBusy, StoreUnavailable) as exc:
            if not finished:
                raise
            log.warning("could not save the view of a telegram chat: %s", type(exc).__name__)

    async def _enter(self, stack: AsyncExitStack, key: SessionKey) -> SessionSlot:
        try:
            return await stack.enter_async_context(self._sessions.chat(key))
        except (SessionBusy, StoreUnavailable) as exc:
            log.warning("telegram chat served without its order lock: %s", type(exc).__name__)
            return SessionSlot(None)


def _load(session: Session | None) -> ChatView:
    data = session.data if session is not None else {}
    return ChatView(contact_keyboard=bool(data.get("contact_keyboard")),
                    blocked=bool(data.get("blocked")))


def _dump(view: ChatView) -> Session | None:
    if not (view.contact_keyboard or view.blocked):
        return None  # nothing worth a key in the store
    return Session(VIEW, data={"contact_keyboard": view.contact_keyboard,
                               "blocked": view.blocked}, updated_at=time.time())

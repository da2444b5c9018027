"""What every channel shares: per-chat order within a process, the apology, and store keys.

A channel is a thin adapter: it parses its platform's update into an
:class:`~flows.types.Event`, hands it to :meth:`flows.engine.Engine.serve` with a ``deliver``
callback that turns :class:`~flows.types.Reply` values (each carrying its locale) into platform
calls, and counts what happened. The pieces below are the parts of that skeleton that do not
depend on the platform.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from flows.i18n import N_

__all__ = ["APOLOGY", "ChatQueue", "store_key"]

# What a member reads when their update failed outside the engine (a platform error, a bug in
# the channel): the engine's own faults are answered by the engine, in the chat's language.
APOLOGY = N_("Sorry, something went wrong on our side. Please try again; what you typed "
             "before is kept.")

Chat = TypeVar("Chat", bound=Hashable)


class ChatQueue(Generic[Chat]):
    """Per-chat FIFO locks of this process, kept only while held or awaited.

    ``asyncio.Lock`` wakes waiters in order and takes a free lock without suspending, so
    entering :meth:`hold` before any other ``await`` keeps the order in which tasks started.
    """

    def __init__(self) -> None:
        self._locks: dict[Chat, asyncio.Lock] = {}
        self._users: Counter[Chat] = Counter()

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, chat: Chat) -> AsyncIterator[None]:
        """Hold the chat's turn."""
        lock = self._locks.setdefault(chat, asyncio.Lock())
        self._users[chat] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[chat] -= 1
            if not self._users[chat]:
                del self._users[chat], self._locks[chat]


def store_key(channel: str, kind: str, *parts: object) -> str:
    """A key of a channel's own in the shared key-value store: ``"<channel>:<kind>:<parts>"``
    (``store_key("tg", "blocked", 42)`` is ``"tg:blocked:42"``). Parts are ids or pseudonyms,
    never a member's number or text."""
    return ":".join((channel, kind, *(str(part) for part in parts)))

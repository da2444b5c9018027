"""State of a Telegram chat that later replies depend on.

:class:`ChatView` is what the member's client shows; it is kept in the chat's session
(``Session.view``), which the engine loads and saves with each update while the replies are
delivered under the chat's lock; :func:`open_chat_view` opens it outside an update, for
deliveries the engine did not make (an agent's answer). :class:`BlockedChats` records members
who blocked the bot, so that nothing more is sent to them until they write again.
"""

from __future__ import annotations

import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from channels.core import open_view, store_key
from flows.engine import UNKNOWN_VIEW, session_ttl
from flows.ports import KeyValueStore, PortUnavailable, SessionStore
from flows.types import Session, SessionKey

__all__ = ["BLOCKED_TTL", "CHANNEL", "Audit", "BlockedChats", "ChatView", "open_chat_view"]

log = logging.getLogger(__name__)
CHANNEL = "telegram"  # the channel's name in session keys (re-exported by render)
KEYS = "tg"  # the channel's prefix in the key-value store
BLOCKED_TTL = 30 * 24 * 3600.0
Audit = Callable[[SessionKey, str], Awaitable[None]]  # records "blocked" or "unblocked"


@dataclass
class ChatView:
    """What the member's Telegram client shows that later replies depend on."""

    contact_keyboard: bool = False  # the share-contact keyboard is up
    blocked: bool = False  # the member blocked the bot: nothing more is sent

    @classmethod
    def load(cls, view: Mapping[str, Any]) -> ChatView:
        """The view kept in a session (``Session.view``). When the engine does not know the
        view (no stored session: a step that timed out took it along), a share-contact
        keyboard may still be up, so the next plain reply removes it."""
        keyboard = view.get("contact_keyboard") or any(view.get(k) for k in UNKNOWN_VIEW)
        return cls(contact_keyboard=bool(keyboard), blocked=bool(view.get("blocked")))

    def dump(self) -> dict[str, Any]:
        """The view as the session keeps it; empty when there is nothing to remember."""
        return {name: True for name, on in (("contact_keyboard", self.contact_keyboard),
                                            ("blocked", self.blocked)) if on}

    @classmethod
    @contextmanager
    def kept(cls, kept: MutableMapping[str, Any]) -> Iterator[ChatView]:
        """The view of a ``Session.view`` lent by the engine or :func:`open_view`, written
        back when the block ends (an exception included)."""
        view = cls.load(kept)
        try:
            yield view
        finally:
            kept.clear()
            kept.update(view.dump())


@asynccontextmanager
async def open_chat_view(sessions: SessionStore, chat_id: int,
                         ttl_for: Callable[[Session], float | None] = session_ttl,
                         ) -> AsyncIterator[ChatView]:
    """Lock the chat across processes and load its view; save it when the block ends
    (:func:`channels.core.open_view`: a store that is busy or down runs the block unlocked,
    with a fresh view; a failed save is logged, not raised)."""
    async with open_view(sessions, SessionKey(CHANNEL, str(chat_id)), ttl_for) as kept:
        with ChatView.kept(kept) as view:
            yield view


class BlockedChats:
    """Members who blocked the bot, recorded for 30 days or until they write again (a mark in
    the key-value store and, when ``audit`` is given, an audit record)."""

    def __init__(self, kv: KeyValueStore, audit: Audit | None = None) -> None:
        self._kv = kv
        self._audit = audit

    async def is_blocked(self, chat_id: int | str) -> bool:
        """True when the member blocked the bot."""
        return await self._kv.get(_blocked_key(chat_id)) is not None

    async def among(self, chat_ids: Sequence[int | str]) -> set[str]:
        """Those of ``chat_ids`` that blocked the bot (as text), in one round trip."""
        marks = await self._kv.get_many([_blocked_key(chat_id) for chat_id in chat_ids])
        return {str(chat_id) for chat_id, mark in zip(chat_ids, marks, strict=True)
                if mark is not None}

    async def mark(self, chat_id: int | str, view: ChatView) -> None:
        """The member blocked the bot: no more messages to the chat."""
        view.blocked = True
        log.info("a telegram member blocked the bot; not sending to the chat any more")
        try:
            await self._kv.put(_blocked_key(chat_id), "1", BLOCKED_TTL)
            await self._record(chat_id, "blocked")
        except PortUnavailable as exc:
            log.warning("could not record a blocked chat: %s", type(exc).__name__)

    async def clear(self, chat_id: int | str, view: ChatView) -> None:
        """The member wrote again: they unblocked the bot."""
        view.blocked = False
        try:
            await self._kv.delete(_blocked_key(chat_id))
            await self._record(chat_id, "unblocked")
        except PortUnavailable as exc:
            log.warning("could not clear a blocked chat: %s", type(exc).__name__)

    async def _record(self, chat_id: int | str, action: str) -> None:
        if self._audit is not None:
            await self._audit(SessionKey(CHANNEL, str(chat_id)), action)


def _blocked_key(chat_id: int | str) -> str:
    return store_key(KEYS, "blocked", chat_id)

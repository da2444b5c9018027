"""Per-chat order and state of the Telegram channel.

:class:`ChatQueue` serves one chat's updates first come, first served within a process.
:class:`ChatView` is what the member's client shows that later replies depend on; it is kept
in the chat's session (``Session.view``), which the engine loads and saves with each update
while the replies are delivered under the chat's lock. :class:`ChatViews` opens it outside an
update, for deliveries the engine did not make (an agent's answer).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from flows.engine import UNKNOWN_VIEW, session_ttl
from flows.menu import MENU
from flows.ports import SessionBusy, SessionSlot, SessionStore, StoreUnavailable
from flows.types import Session, SessionKey

__all__ = ["CHANNEL", "ChatView", "ChatViews"]

log = logging.getLogger(__name__)
CHANNEL = "telegram"  # the channel's name in session keys (re-exported by telegram_render)


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


class ChatViews:
    """A chat's :class:`ChatView` outside the engine's updates, under the chat's lock."""

    def __init__(self, sessions: SessionStore,
                 ttl_for: Callable[[Session], float | None] = session_ttl) -> None:
        self._sessions = sessions
        self._ttl_for = ttl_for  # the engine's (Engine.ttl_for): its flow timeout applies

    @asynccontextmanager
    async def open(self, chat_id: int) -> AsyncIterator[ChatView]:
        """Lock the chat across processes and load its view; save it when the block ends.

        When the store is busy or down the block still runs, unlocked and with a fresh view:
        answering out of order beats not answering. A failed save is logged, not raised."""
        finished = False
        try:
            async with AsyncExitStack() as stack:
                slot = await self._enter(stack, SessionKey(CHANNEL, str(chat_id)))
                view = ChatView.load(slot.session.view if slot.session is not None else {})
                yield view
                finished = True
                slot.session = _with_view(slot.session, view)
                slot.ttl = self._ttl_for(slot.session) if slot.session is not None else None
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


def _with_view(session: Session | None, view: ChatView) -> Session | None:
    if session is not None:
        return replace(session, view=view.dump())
    if view.dump():  # a chat with no conversation yet: a resting session to hold the view
        return Session(MENU, view=view.dump(), updated_at=time.time())
    return None

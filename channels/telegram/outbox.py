"""Delivering to Telegram members outside their own updates (an agent answered, a ticket
timed out).

:class:`TelegramOutbox` is the chat's :class:`~flows.ports.MemberOutbox` (picked by
``app.outbox.OutboxRouter``): it renders the replies in the member's private chat on the
channel's own path (:meth:`TelegramRenderer.deliver_or_block`: same renderer, same throttle,
the chat's view under its cross-process lock); a member who blocked the bot is recorded as the
channel records it, and ``False`` tells the desk to close the ticket.

The view only tracks the share-contact keyboard and "blocked". Replies that all carry inline
buttons (contribution alerts) never change the keyboard, so an outbox made with
``locked=False`` sends them on a fresh view, without the chat's lock or its saved view (two
Redis scripts and a lock keeper per delivery); a member who blocked the bot is recorded as
before (the key-value store's mark, and the chat's saved view, so that their next message
clears it). :meth:`TelegramOutbox.unreachable` names the chats recorded as blocked, so that
the alert workers do not spend a send of the bot's rate on them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiogram import Bot

from app.metrics import Metrics
from channels.telegram.chats import BlockedChats, ChatView, open_chat_view
from channels.telegram.render import CHANNEL, TelegramRenderer
from channels.telegram.throttle import SendThrottle
from flows.engine import session_ttl
from flows.i18n import Catalog
from flows.ports import KeyValueStore, SessionStore
from flows.types import Reply, Session, SessionKey

__all__ = ["TelegramOutbox"]


class TelegramOutbox:
    """:class:`~flows.ports.MemberOutbox` for Telegram private chats. ``locked=False`` (for
    alerts: replies with inline buttons only) sends on a fresh view, without the chat's lock
    and saved view; a plain reply would then not remove a share-contact keyboard that is up."""

    def __init__(self, bot: Bot, throttle: SendThrottle, *, metrics: Metrics, secret: bytes,
                 sessions: SessionStore, kv: KeyValueStore,
                 ttl_for: Callable[[Session], float | None] = session_ttl,
                 catalog: Catalog | None = None, locked: bool = True) -> None:
        self._renderer = TelegramRenderer(bot, throttle, metrics, secret, catalog=catalog)
        self._sessions = sessions
        self._locked = locked
        self._ttl_for = ttl_for
        self._blocked = BlockedChats(kv)

    async def unreachable(self, keys: Sequence[SessionKey]) -> set[SessionKey]:
        """The chats among ``keys`` whose member blocked the bot (recorded when a send was
        refused, cleared when they write again), in one round trip: an alert for them is
        not sent (:class:`~flows.ports.UnreachableChats`)."""
        mine = [key for key in keys if key.channel == CHANNEL]
        if not mine:
            return set()
        blocked = await self._blocked.among([key.chat_id for key in mine])
        return {key for key in mine if key.chat_id in blocked}

    async def deliver(self, key: SessionKey, replies: list[Reply]) -> bool:
        """Send the replies to the member's chat; false when the member blocked the bot."""
        if key.channel != CHANNEL:
            raise ValueError(f"TelegramOutbox cannot deliver to a {key.channel} chat")
        chat_id = int(key.chat_id)
        if not self._locked:
            if await self._renderer.deliver_or_block(chat_id, replies, ChatView(),
                                                     self._blocked):
                return True
            # Rare: kept in the chat's view too, so the member's next message clears the mark.
            async with open_chat_view(self._sessions, chat_id, self._ttl_for) as view:
                view.blocked = True
            return False
        async with open_chat_view(self._sessions, chat_id, self._ttl_for) as view:
            return await self._renderer.deliver_or_block(chat_id, replies, view, self._blocked)

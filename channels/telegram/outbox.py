"""Delivering to members outside their own updates (an agent answered, a ticket timed out).

:class:`OutboxRouter` is the :class:`~flows.ports.MemberOutbox` of the long-running commands:
it picks the outbox of the chat's channel. :class:`TelegramOutbox` renders the replies in the
member's private chat exactly as the channel does (same renderer, same throttle, the chat's view
under its cross-process lock); a member who blocked the bot is recorded as the channel records
it, and ``False`` tells the desk to close the ticket. ``WhatsAppOutbox`` lives with the WhatsApp
routes (``channels.whatsapp.web``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from aiogram import Bot
from aiogram.exceptions import TelegramForbiddenError

from app.metrics import Metrics
from channels.telegram.channel import BLOCKED_TTL
from channels.telegram.chats import ChatViews
from channels.telegram.render import CHANNEL, TelegramRenderer
from channels.telegram.throttle import SendThrottle
from flows.engine import session_ttl
from flows.ports import KeyValueStore, MemberOutbox, SessionStore, StoreUnavailable
from flows.types import Reply, Session, SessionKey

__all__ = ["OutboxRouter", "TelegramOutbox"]

log = logging.getLogger(__name__)


class TelegramOutbox:
    """:class:`~flows.ports.MemberOutbox` for Telegram private chats."""

    def __init__(self, bot: Bot, throttle: SendThrottle, *, metrics: Metrics, secret: bytes,
                 sessions: SessionStore, kv: KeyValueStore,
                 ttl_for: Callable[[Session], float | None] = session_ttl) -> None:
        self._renderer = TelegramRenderer(bot, throttle, metrics, secret)
        self._views = ChatViews(sessions, ttl_for)
        self._kv = kv

    async def deliver(self, key: SessionKey, replies: list[Reply]) -> bool:
        """Send the replies to the member's chat; false when the member blocked the bot."""
        if key.channel != CHANNEL:
            raise ValueError(f"TelegramOutbox cannot deliver to a {key.channel} chat")
        chat_id = int(key.chat_id)
        async with self._views.open(chat_id) as view:
            try:
                await self._renderer.deliver(chat_id, replies, view)
            except TelegramForbiddenError:
                view.blocked = True
                await self._record_blocked(chat_id)
                return False
        return True

    async def _record_blocked(self, chat_id: int) -> None:
        log.info("a telegram member blocked the bot (agent desk delivery)")
        try:
            await self._kv.put(f"tg:blocked:{chat_id}", "1", BLOCKED_TTL)
        except StoreUnavailable as exc:
            log.warning("could not record a blocked chat: %s", type(exc).__name__)


class OutboxRouter:
    """Delivers through the outbox of the chat's channel (``SessionKey.channel``)."""

    def __init__(self, routes: Mapping[str, MemberOutbox]) -> None:
        self._routes = dict(routes)

    @property
    def channels(self) -> frozenset[str]:
        """The channels this process can deliver to."""
        return frozenset(self._routes)

    async def deliver(self, key: SessionKey, replies: list[Reply]) -> bool:
        """Send on the chat's channel. A channel this process does not serve is logged and
        reported delivered: the member did not block anyone, so the ticket must not close."""
        outbox = self._routes.get(key.channel)
        if outbox is None:
            log.error("cannot deliver to a %s chat: that channel is not configured in this "
                      "process", key.channel)
            return True
        return await outbox.deliver(key, replies)

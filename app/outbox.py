"""Delivering to members outside their own updates (an agent answered, a ticket timed out).

:class:`OutboxRouter` is the :class:`~flows.ports.MemberOutbox` of the long-running commands:
it picks the outbox of the chat's channel (``TelegramOutbox`` in ``channels.telegram.outbox``,
``WhatsAppOutbox`` in ``channels.whatsapp.web``, ``ConsoleOutbox`` in ``channels.console.desk``)
and knows none of them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from flows.ports import MemberOutbox, UnreachableChats
from flows.types import Reply, SessionKey

__all__ = ["OutboxRouter"]

log = logging.getLogger(__name__)


class OutboxRouter:
    """Delivers through the outbox of the chat's channel (``SessionKey.channel``)."""

    def __init__(self, routes: Mapping[str, MemberOutbox], *, strict: bool = False) -> None:
        self._routes = dict(routes)
        self._strict = strict

    @property
    def channels(self) -> frozenset[str]:
        """The channels this process can deliver to."""
        return frozenset(self._routes)

    async def deliver(self, key: SessionKey, replies: list[Reply]) -> bool:
        """Send on the chat's channel. A channel this process does not serve is logged and
        reported delivered: the member did not block anyone, so the ticket must not close.
        A ``strict`` router (the alerts') raises :class:`LookupError` instead: the alert is
        not sent, and must not be marked sent."""
        outbox = self._routes.get(key.channel)
        if outbox is None and self._strict:
            raise LookupError(f"no outbox for {key.channel} chats in this process")
        if outbox is None:
            log.error("cannot deliver to a %s chat: that channel is not configured in this "
                      "process", key.channel)
            return True
        return await outbox.deliver(key, replies)

    async def unreachable(self, keys: Sequence[SessionKey]) -> set[SessionKey]:
        """The chats among ``keys`` their channel's outbox knows cannot be reached now (one
        call per channel that keeps such a record; :class:`~flows.ports.UnreachableChats`)."""
        found: set[SessionKey] = set()
        for channel in {key.channel for key in keys}:
            outbox = self._routes.get(channel)
            if isinstance(outbox, UnreachableChats):
                found |= await outbox.unreachable([key for key in keys
                                                   if key.channel == channel])
        return found

"""Outbound flood control for the Bot API: a bot-wide limit, a per-chat limit, 429 retries.

Telegram allows a bot about 30 messages per second overall and about 1 per second in one chat;
beyond that it answers 429 with ``retry_after``. aiogram has no limiter, so every outbound call
of the Telegram channel goes through :class:`SendThrottle`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from aiogram.exceptions import TelegramRetryAfter

from channels.pacing import SlidingWindow

T = TypeVar("T")


@dataclass
class _Chat:
    """One chat's queue: the lock is FIFO, so waiting senders keep their order."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # sends holding or waiting for the lock
    next_at: float = -math.inf  # earliest start of this chat's next call (spacing or 429 pause)


class SendThrottle:
    """Paces outbound Bot API calls; every message is sent eventually or its error raised.

    * Per bot: a token bucket of ``per_bot`` tokens in which a used token comes back exactly
      ``per_bot`` tokens' worth of time later (one second at the default 30): bursts of
      ``per_bot``, a sustained ``per_bot`` per second, and never more than ``per_bot`` calls in
      any one-second window. A continuously refilled bucket would allow twice that in a window
      straddling a burst, which is exactly what earns a 429.
    * Per chat: call starts at least ``1 / per_chat`` seconds apart, strictly in the order
      :meth:`send` was called for that chat; other chats are not held up.
    * On :class:`~aiogram.exceptions.TelegramRetryAfter` the call is retried after
      ``retry_after`` seconds, up to ``max_retries`` times (so at most ``max_retries + 1``
      attempts), then the exception is raised. Other exceptions propagate at once, without a
      retry.
    * Which limit a 429 is charged to. The reply does not say whether the chat's limit or the
      bot's was hit, so the throttle infers it from where the 429s come from:

      - A 429 pauses its own chat for ``retry_after``: that chat's queue waits, other chats go
        on. This holds even when the call is then given up, so the chat's next message also
        waits out the pause.
      - A 429 is the bot's limit, and pauses every chat for its ``retry_after``, when a
        *different* chat's own 429 pause is still running while this process is sending at
        half its ``per_bot`` rate or more, or when a bot-wide pause is running. Two chats
        refused within one pause is what a bot-wide limit looks like (Telegram refuses every
        chat until the pause ends) when the bot is sending near that limit; a bot far below
        its rate cannot have hit it (``per_bot`` is this process's share of the bot's ~30/s),
        so there two chats refused are two chats' own limits (a chat's 429s under load from
        many chats at once, as the chaos bench's bursts showed, would otherwise pause the bot
        nearly all the time). A 429 arriving during a bot-wide pause comes from a call
        started before it, in the same burst.

      The cost of a wrong guess decides the rule. A bot-wide 429 taken for one chat's costs
      at most one more 429: the next call to another chat is refused and the bot pauses. A
      chat's 429 taken for the bot's stops every member's replies for up to its
      ``retry_after``, which for a group's 20-a-minute limit (the agents' forum group) runs to
      tens of seconds. So the bot is paused only on that second chat's evidence, never on the
      fill of the bot-wide window alone: with several processes sharing one bot token (the
      scale-out), this process's window is only its share of the bot's count.
    * Memory: a chat's state is dropped once nothing waits on it and its spacing and any 429
      pause of its own have passed (checked on every :meth:`send`, oldest first), so only
      recently active or paused chats are held. The check stops at the first chat it must
      keep, so a chat paused by a long ``retry_after`` delays the dropping of chats that
      started after it until its pause ends (at most ``per_bot`` new chats a second of it),
      as a chat with a queue always did.
    """

    def __init__(
        self,
        *,
        per_bot: float = 30.0,
        per_chat: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_retries: int = 10,
    ) -> None:
        if per_bot <= 0 or per_chat <= 0 or max_retries < 0:
            raise ValueError("per_bot and per_chat must be positive, max_retries not negative")
        self._bot = SlidingWindow(per_bot, clock=clock, sleep=sleep)
        self._per_bot = per_bot
        self._spacing = 1.0 / per_chat
        self._clock = clock
        self._sleep = sleep
        self._max_retries = max_retries
        self._paused_until = -math.inf  # the bot-wide pause
        # The chat whose own 429 pause came last, and its end: a 429 from another chat before
        # then, while this process is busy, is the bot's limit; while it is not, that chat's
        # own pause takes the slot (its chat keeps its pause in its own ``next_at``).
        self._chat_pause: tuple[str, float] = ("", -math.inf)
        self._chats: OrderedDict[str, _Chat] = OrderedDict()  # least recently started first

    @property
    def tracked_chats(self) -> int:
        """How many chats currently hold state (for tests and metrics)."""
        return len(self._chats)

    async def send(self, chat_id: int | str, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call()`` for ``chat_id`` when both limits allow it, retrying on 429.

        ``call`` is invoked again for each retry, so it must build a fresh request each time.
        """
        self._prune()
        key = str(chat_id)  # 42 and "42" are the same chat
        chat = self._chats.get(key)
        if chat is None:
            chat = self._chats[key] = _Chat()
        chat.users += 1
        try:
            async with chat.lock:
                return await self._deliver(key, chat, call)
        finally:
            chat.users -= 1

    async def _deliver(self, key: str, chat: _Chat, call: Callable[[], Awaitable[T]]) -> T:
        retries = 0
        while True:
            await self._wait_until(chat.next_at)
            await self._bot.acquire(lambda: self._paused_until)
            chat.next_at = self._clock() + self._spacing
            self._chats.move_to_end(key)
            try:
                return await call()
            except TelegramRetryAfter as exc:
                self._pause(key, chat, exc.retry_after)
                if retries >= self._max_retries:
                    raise
                retries += 1  # the chat's lock keeps its queue behind this retry

    def _pause(self, key: str, chat: _Chat, retry_after: float) -> None:
        """Charge a 429 from ``key`` to that chat alone or to the whole bot (class docstring)."""
        now = self._clock()
        resume = now + retry_after
        chat.next_at = max(chat.next_at, resume)  # also keeps the chat from being pruned
        other, other_until = self._chat_pause
        busy = self._bot.recent() * 2 >= self._per_bot
        if now < self._paused_until or (busy and other != key and now < other_until):
            self._paused_until = max(self._paused_until, resume)
        elif other == key:
            self._chat_pause = (key, max(other_until, resume))
        else:
            self._chat_pause = (key, resume)

    async def _wait_until(self, deadline: float) -> None:
        while (now := self._clock()) < deadline:
            await self._sleep(deadline - now)

    def _prune(self) -> None:
        # Oldest first, stopping at the first chat still in use: amortised O(1) per send.
        now = self._clock()
        while self._chats:
            chat = next(iter(self._chats.values()))
            if chat.users or chat.next_at > now:
                return
            self._chats.popitem(last=False)

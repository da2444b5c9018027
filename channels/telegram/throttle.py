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
    next_at: float = -math.inf  # earliest start of this chat's next call


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
      attempts), then the exception is raised. The 429 pauses the *whole bot* for that long,
      not only the chat: the reply does not say which limit was hit, and on ``sendMessage`` it
      is usually the bot-wide one, where carrying on with other chats only collects more 429s
      and longer bans. Other exceptions propagate at once, without a retry.
    * Memory: a chat's state is dropped once nothing waits on it and its spacing has passed
      (checked on every :meth:`send`, oldest first), so only recently active chats are held.
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
        self._spacing = 1.0 / per_chat
        self._clock = clock
        self._sleep = sleep
        self._max_retries = max_retries
        self._paused_until = -math.inf
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
                if retries >= self._max_retries:
                    raise
                retries += 1
                # The bot-wide pause also holds this chat, whose lock keeps its queue behind us.
                resume = self._clock() + exc.retry_after
                self._paused_until = max(self._paused_until, resume)

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

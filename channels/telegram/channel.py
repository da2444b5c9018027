"""The Telegram channel: aiogram parses updates, the engine answers, the renderer replies.

Each private-chat update goes through one outer middleware that keeps the channel's promises:

* **once**: a repeated ``update_id`` is dropped (remembered a day in the session store, shared
  by every process, in the same round trip that locks the chat: :meth:`Engine.serve`);
* **in order**: updates of one chat are served one after another, first come first served in
  this process (a FIFO lock taken before anything else is awaited) and across processes (the
  session store's per-chat lock, held by :meth:`Engine.serve` until the last reply is sent, so
  that two processes never interleave their replies to one chat);
* **always answered**: a fault is logged with the update id (never the text) and the member
  gets an apology; a member who blocked the bot is recorded and no longer sent to.

The skeleton of one update (the chat's turn, the concurrency slots, ``Engine.serve`` counted,
faults counted by kind and answered) is the one every channel shares:
:class:`channels.core.Updates`; webhook updates run as :class:`channels.core.Tasks`.
Group chats belong to the agent desk (handoff): they go to ``on_group_update`` when given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.methods import SetMyCommands, SetWebhook
from aiogram.types import CallbackQuery, Message, TelegramObject, Update, User
from pydantic import ValidationError

from app.metrics import Metrics
from channels.core import APOLOGY, Serve, Tasks, Updates, describe
from channels.telegram.chats import BlockedChats, ChatView
from channels.telegram.keyboards import commands, verify
from channels.telegram.render import CHANNEL, TelegramRenderer
from channels.telegram.throttle import SendThrottle
from flows.engine import View
from flows.flow import Ports
from flows.i18n import Catalog, pick_locale
from flows.types import Event, Reply, SessionKey, Text

__all__ = ["APOLOGY", "CONCURRENCY", "MAX_BACKLOG", "GroupHook", "Inbound", "Serve",
           "TelegramChannel"]

log = logging.getLogger(__name__)
GroupHook = Callable[[Update], Awaitable[None]]
CONCURRENCY = 64  # updates served at once by one process (TELEGRAM_CONCURRENCY): as many
# as the Redis pool has connections, so that no update waits for one while it holds a lock
MAX_BACKLOG = 10_000  # webhook updates taken and not finished (TELEGRAM_MAX_BACKLOG)
EXPIRED = "go:expired_button"  # the engine answers "That menu has expired" from any state
_FED: ContextVar[bool] = ContextVar("telegram_fed", default=False)  # inside a webhook task


@dataclass(frozen=True, slots=True)
class Inbound:
    """An update as the engine should see it, and where its replies go."""

    event: Event
    chat_id: int
    incoming: int | None = None  # the member's message, deletable on request
    edit: int | None = None  # the bot message whose button was pressed, for pagination
    callback_id: str | None = None


class TelegramChannel:
    """Connects one bot to the engine, in polling or webhook mode."""

    def __init__(self, bot: Bot, *, serve: Serve, ports: Ports, throttle: SendThrottle,
                 metrics: Metrics, catalog: Catalog,
                 on_group_update: GroupHook | None = None,
                 concurrency: int = CONCURRENCY, max_backlog: int = MAX_BACKLOG) -> None:
        if concurrency < 1 or max_backlog < 1:
            raise ValueError("concurrency and max_backlog must be at least 1")
        self._max_backlog = max_backlog
        self.bot = bot
        # At most ``concurrency`` updates are served at once; the rest wait their turn (in
        # arrival order), so an overload queues up instead of timing out Redis calls mid-update.
        self._updates: Updates[int] = Updates(CHANNEL, serve, metrics, concurrency=concurrency,
                                              platform_errors=(TelegramAPIError,))
        self._ports = ports
        self._metrics = metrics
        self._catalog = catalog
        self._on_group = on_group_update
        self._renderer = TelegramRenderer(bot, throttle, metrics, ports.secret)
        self._blocked = BlockedChats(ports.kv, self._audit)
        self._tasks = Tasks()  # webhook updates handled in background
        self._polled = Tasks()  # polled updates, run apart from aiogram's own tasks
        self.dispatcher = Dispatcher(disable_fsm=True)
        self.dispatcher.update.outer_middleware(self._around)
        router = Router(name=CHANNEL)
        router.message.register(self._on_message)
        router.callback_query.register(self._on_callback)
        self.dispatcher.include_router(router)

    # --- running -------------------------------------------------------------------------

    async def register_commands(self) -> None:
        """The command menu: Indonesian by default and for ``id``, English for ``en``."""
        for language in (None, "id", "en"):  # one lane each: not paced as messages to a chat
            await self._renderer.call(f"setup:commands:{language}", SetMyCommands(
                commands=commands(language or "id"), language_code=language))

    async def register_webhook(self, url: str, secret: str) -> None:
        """Ask Telegram to post updates to ``url`` with ``secret`` in the header."""
        await self._renderer.call("setup:webhook", SetWebhook(
            url=url, secret_token=secret,
            allowed_updates=self.dispatcher.resolve_used_update_types()))

    async def run_polling(self, *, handle_signals: bool = True, timeout: int = 30) -> None:
        """Long polling until stopped (a signal, or ``dispatcher.stop_polling()``)."""
        await self.bot.delete_webhook(drop_pending_updates=False)
        try:
            await self.dispatcher.start_polling(self.bot, handle_signals=handle_signals,
                                                close_bot_session=False, polling_timeout=timeout)
        finally:
            await self.drain()

    def parse(self, payload: object) -> Update:
        """A webhook body as an update; ``ValueError`` when it is not one."""
        if not isinstance(payload, Mapping):
            raise ValueError("an update is a JSON object")
        try:
            return Update.model_validate(payload, context={"bot": self.bot})
        except ValidationError as exc:
            raise ValueError(f"not an update ({exc.error_count()} problems)") from None

    @property
    def backlog(self) -> int:
        """Webhook updates taken and not finished yet."""
        return len(self._tasks)

    def accept(self, update: Update) -> bool:
        """Handle ``update`` in the background (webhook mode); :meth:`drain` awaits it. False,
        and nothing taken, when ``max_backlog`` updates are already waiting: memory stays
        bounded and Telegram, answered 503, delivers the update again later."""
        if len(self._tasks) >= self._max_backlog:
            self._metrics.errors.labels("overload").inc()
            return False
        self._tasks.spawn(self._feed(update))
        return True

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for updates in progress (webhook or polling); cancel those still running after
        ``timeout``."""
        await asyncio.gather(self._tasks.drain(timeout), self._polled.drain(timeout))

    async def is_blocked(self, chat_id: int | str) -> bool:
        """True when the member blocked the bot (recorded for 30 days or until they write)."""
        return await self._blocked.is_blocked(chat_id)

    async def close(self) -> None:
        """Close the bot's HTTP session."""
        await self.bot.session.close()

    async def _feed(self, update: Update) -> None:
        _FED.set(True)  # in this task's own context
        try:
            await self.dispatcher.feed_update(self.bot, update)
        except Exception as exc:  # noqa: BLE001 - a background task has nobody to raise to
            self._metrics.errors.labels("internal").inc()
            log.error("telegram update %s failed: %s", update.update_id, describe(exc))

    # --- one update ----------------------------------------------------------------------

    async def _around(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                      update: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(update, Update):
            return await handler(update, data)
        chat_id, private = _chat_of(update)
        if chat_id is None or not private:
            if chat_id is not None and self._on_group is not None:
                await self._on_group(update)
            return None
        work = self._one(handler, update, data, chat_id)
        if _FED.get():  # a webhook update: already one of the channel's tasks
            await work
        else:  # polled: aiogram's task waits for a task of ours, which drain can see
            await self._polled.spawn(work)
        return None

    async def _one(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                   update: Update, data: dict[str, Any], chat_id: int) -> None:
        async def work() -> None:
            inbound = await handler(update, data)
            if isinstance(inbound, Inbound):
                await self._serve(inbound, update.update_id)

        await self._updates.run(chat_id, str(update.update_id), work,
                                partial(self._apologise, chat_id, update))

    async def _on_message(self, message: Message) -> Inbound:
        lang = _language(message.from_user)
        contact = message.contact
        if contact is not None:
            own = message.from_user is not None and contact.user_id == message.from_user.id
            event = Event.contact(contact.phone_number, own=own, language_code=lang)
        else:
            event = Event.message(message.text or message.caption or "", language_code=lang)
        return Inbound(event, message.chat.id, incoming=message.message_id)

    async def _on_callback(self, query: CallbackQuery) -> Inbound:
        chat_id = query.message.chat.id if query.message else query.from_user.id
        data = verify(self._ports.secret, chat_id, query.data)
        edit = (query.message.message_id
                if data and data.startswith("hist:") and isinstance(query.message, Message)
                else None)
        event = Event.button(EXPIRED if data is None else data,
                             language_code=_language(query.from_user))
        return Inbound(event, chat_id, edit=edit, callback_id=query.id)

    async def _serve(self, inbound: Inbound, update_id: int) -> None:
        key = SessionKey(CHANNEL, str(inbound.chat_id))
        if inbound.callback_id is not None:  # stop the spinner even while the chat is busy
            await self._answer(inbound)

        async def deliver(replies: list[Reply], kept: View) -> None:
            with ChatView.kept(kept) as view:
                if view.blocked:  # the member wrote: they unblocked the bot
                    await self._blocked.clear(inbound.chat_id, view)
                await self._renderer.deliver_or_block(
                    inbound.chat_id, replies, view, self._blocked, incoming=inbound.incoming,
                    edit=inbound.edit)

        await self._updates.serve(key, replace(inbound.event, update_id=str(update_id)), deliver)

    async def _answer(self, inbound: Inbound) -> None:
        try:
            await self._renderer.answer_callback(inbound.chat_id, inbound.callback_id or "")
        except TelegramBadRequest as exc:  # the query is too old: the reply matters more
            log.info("could not answer a callback query: %s", exc.message)

    async def _apologise(self, chat_id: int, update: Update, _: Exception) -> None:
        user = update.message.from_user if update.message else (
            update.callback_query.from_user if update.callback_query else None)
        text = self._catalog.render(Text(APOLOGY), pick_locale(_language(user)))
        await self._renderer.say(chat_id, text)

    async def _audit(self, key: SessionKey, action: str) -> None:
        await self._ports.accounts.audit(key, action, self._ports.clock.now())


def _chat_of(update: Update) -> tuple[int | None, bool]:
    """The chat an update belongs to, and whether it is a private chat with a member."""
    if update.message is not None:
        return update.message.chat.id, update.message.chat.type == ChatType.PRIVATE
    query = update.callback_query
    if query is None:
        return None, False
    if query.message is None:
        return query.from_user.id, True
    return query.message.chat.id, query.message.chat.type == ChatType.PRIVATE


def _language(user: User | None) -> str:
    return (user.language_code or "") if user is not None else ""

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

Group chats belong to the agent desk (handoff): they go to ``on_group_update`` when given.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.methods import SetMyCommands, SetWebhook
from aiogram.types import CallbackQuery, Message, TelegramObject, Update, User
from pydantic import ValidationError

from app.metrics import Metrics
from channels.core import APOLOGY, ChatQueue
from channels.telegram.chats import ChatView
from channels.telegram.keyboards import commands, verify
from channels.telegram.render import CHANNEL, TelegramRenderer
from channels.telegram.throttle import SendThrottle
from flows.engine import Deliver, Served, View
from flows.flow import Ports
from flows.i18n import Catalog, pick_locale
from flows.ports import DatabaseUnavailable, SessionBusy, StoreUnavailable
from flows.types import Event, Reply, SessionKey, Text

__all__ = ["APOLOGY", "BLOCKED_TTL", "CONCURRENCY", "DEDUPE_TTL", "MAX_BACKLOG", "GroupHook",
           "Inbound", "Serve", "TelegramChannel"]

log = logging.getLogger(__name__)
Serve = Callable[[SessionKey, Event, Deliver], Awaitable[Served]]  # Engine.serve
GroupHook = Callable[[Update], Awaitable[None]]
CONCURRENCY = 64  # updates served at once by one process (TELEGRAM_CONCURRENCY): as many
# as the Redis pool has connections, so that no update waits for one while it holds a lock
MAX_BACKLOG = 10_000  # webhook updates taken and not finished (TELEGRAM_MAX_BACKLOG)
DEDUPE_TTL = 24 * 3600.0  # group updates (agent desk); member updates: the session store's
BLOCKED_TTL = 30 * 24 * 3600.0
EXPIRED = "go:expired_button"  # the engine answers "That menu has expired" from any state


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
        self._serve_event = serve
        # At most this many updates are served at once; the rest wait their turn (in arrival
        # order), so an overload queues up instead of timing out Redis calls mid-update.
        self._slots = asyncio.Semaphore(concurrency)
        self._ports = ports
        self._metrics = metrics
        self._catalog = catalog
        self._on_group = on_group_update
        self._renderer = TelegramRenderer(bot, throttle, metrics, ports.secret)
        self._queue: ChatQueue[int] = ChatQueue()
        self._tasks: set[asyncio.Task[Any]] = set()  # webhook updates handled in background
        self._running: dict[asyncio.Future[None], asyncio.Task[Any] | None] = {}  # any mode
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
        task = asyncio.create_task(self._feed(update))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for updates in progress (webhook or polling); cancel those still running after
        ``timeout``."""
        current = asyncio.current_task()
        waits: set[asyncio.Future[Any]] = {t for t in self._tasks if t is not current}
        waits |= {marker for marker, task in self._running.items() if task is not current}
        if not waits:
            return
        _, late = await asyncio.wait(waits, timeout=timeout)
        stuck = {t for t in self._tasks if t in late}
        stuck |= {t for m, t in self._running.items() if m in late and t not in (None, current)}
        for task in stuck:
            task.cancel()
        if stuck:
            log.warning("cancelled %d updates still running at shutdown", len(stuck))
            await asyncio.wait(stuck)

    async def is_blocked(self, chat_id: int | str) -> bool:
        """True when the member blocked the bot (recorded for 30 days or until they write)."""
        return await self._ports.kv.get(f"tg:blocked:{chat_id}") is not None

    async def close(self) -> None:
        """Close the bot's HTTP session."""
        await self.bot.session.close()

    async def _feed(self, update: Update) -> None:
        try:
            await self.dispatcher.feed_update(self.bot, update)
        except Exception as exc:  # noqa: BLE001 - a background task has nobody to raise to
            self._metrics.errors.labels("internal").inc()
            log.error("telegram update %s failed: %s%s", update.update_id,
                      type(exc).__name__, _where(exc))

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
        marker = asyncio.get_running_loop().create_future()
        self._running[marker] = asyncio.current_task()
        try:
            await self._one(handler, update, data, chat_id)
        finally:
            del self._running[marker]
            marker.set_result(None)
        return None

    async def _one(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                   update: Update, data: dict[str, Any], chat_id: int) -> None:
        started = time.perf_counter()
        async with self._queue.hold(chat_id), self._slots:  # hold first: keeps arrival order
            try:
                inbound = await handler(update, data)
                if isinstance(inbound, Inbound):
                    await self._serve(inbound, update.update_id)
            except Exception as exc:  # noqa: BLE001 - every fault gets an apology
                self._metrics.updates.labels(CHANNEL).inc()
                await self._fail(chat_id, update, exc)
            finally:
                self._metrics.update_seconds.labels(CHANNEL).observe(
                    time.perf_counter() - started)

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
            view = ChatView.load(kept)
            if view.blocked:
                await self._unblock(key, view)
            try:
                await self._renderer.deliver(inbound.chat_id, replies, view,
                                             incoming=inbound.incoming, edit=inbound.edit)
            except TelegramForbiddenError:
                await self._mark_blocked(key, view)
            finally:
                kept.clear()
                kept.update(view.dump())

        event = replace(inbound.event, update_id=str(update_id))
        served = await self._serve_event(key, event, deliver)
        if served is Served.REPEAT:
            self._metrics.duplicates.inc()
            return
        self._metrics.updates.labels(CHANNEL).inc()
        if served is Served.STORE_FAULT:
            self._metrics.errors.labels("store").inc()

    async def _answer(self, inbound: Inbound) -> None:
        try:
            await self._renderer.answer_callback(inbound.chat_id, inbound.callback_id or "")
        except TelegramBadRequest as exc:  # the query is too old: the reply matters more
            log.info("could not answer a callback query: %s", exc.message)

    async def _fail(self, chat_id: int, update: Update, exc: Exception) -> None:
        kind = ("telegram" if isinstance(exc, TelegramAPIError) else
                "store" if isinstance(exc, StoreUnavailable | SessionBusy) else "internal")
        self._metrics.errors.labels(kind).inc()
        log.error("telegram update %s failed: %s%s", update.update_id, type(exc).__name__,
                  _where(exc))
        user = update.message.from_user if update.message else (
            update.callback_query.from_user if update.callback_query else None)
        text = self._catalog.render(Text(APOLOGY), pick_locale(_language(user)))
        try:
            await self._renderer.say(chat_id, text)
        except Exception as again:  # noqa: BLE001 - nothing more can be done for this update
            log.error("could not apologise for update %s: %s", update.update_id,
                      type(again).__name__)

    # --- blocked members ------------------------------------------------------------------

    async def _mark_blocked(self, key: SessionKey, view: ChatView) -> None:
        view.blocked = True
        log.info("a telegram member blocked the bot; not sending to the chat any more")
        try:
            await self._ports.kv.put(f"tg:blocked:{key.chat_id}", "1", BLOCKED_TTL)
            await self._ports.accounts.audit(key, "blocked", self._ports.clock.now())
        except (StoreUnavailable, DatabaseUnavailable) as exc:
            log.warning("could not record a blocked chat: %s", type(exc).__name__)

    async def _unblock(self, key: SessionKey, view: ChatView) -> None:
        view.blocked = False
        try:
            await self._ports.kv.delete(f"tg:blocked:{key.chat_id}")
            await self._ports.accounts.audit(key, "unblocked", self._ports.clock.now())
        except (StoreUnavailable, DatabaseUnavailable) as exc:
            log.warning("could not clear a blocked chat: %s", type(exc).__name__)


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


def _where(exc: BaseException) -> str:
    """Where an exception was raised, for a log line that holds no member data."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""

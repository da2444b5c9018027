"""The Telegram channel: aiogram parses updates, the engine answers, the renderer replies.

Each private-chat update goes through one outer middleware that keeps the channel's promises:

* **once**: a repeated ``update_id`` is dropped (remembered a day in the session store, shared
  by every process, in the same round trip that locks the chat: :meth:`Engine.serve`);
* **in order**: updates of one chat are served one after another, first come first served in
  this process (a FIFO lock taken before anything else is awaited) and across processes (the
  session store's per-chat lock, held by :meth:`Engine.serve` until the last reply is sent, so
  that two processes never interleave their replies to one chat);
* **always answered**: a fault is logged with the update id (never the text) and the member
  gets an apology; a member who blocked the bot is recorded and no longer sent to;
* **nothing lost**: an update is acknowledged (the webhook's 200, the poller's offset) only
  once it is kept in the inbox (:mod:`channels.inbox`: Redis in production), where the chat's
  runner, in whatever process, serves the chat's updates in ``update_id`` order; an update
  whose serving cannot start (the session store down) stays there and is tried again.

The skeleton of one update (the chat's turn, the concurrency slots, ``Engine.serve`` counted,
faults counted by kind and answered) is the one every channel shares:
:class:`channels.core.Updates`; webhook updates run as :class:`channels.core.Tasks`.
Group chats belong to the agent desk (handoff): they go to ``on_group_update`` when given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.methods import GetUpdates, SetMyCommands, SetWebhook
from aiogram.types import CallbackQuery, Message, TelegramObject, Update, User
from pydantic import ValidationError

from app.metrics import Metrics
from app.web import MalformedBody, parse_json
from channels.core import APOLOGY, Serve, Tasks, Updates, describe
from channels.inbox import RETRY_DELAYS, Inbox, Mailroom
from channels.telegram.chats import BlockedChats, ChatView
from channels.telegram.keyboards import commands, verify
from channels.telegram.render import CHANNEL, TelegramRenderer
from channels.telegram.throttle import SendThrottle
from flows.engine import NotServed, View
from flows.flow import Ports
from flows.i18n import Catalog, pick_locale
from flows.ports import StoreUnavailable
from flows.types import Event, Reply, SessionKey, Text

__all__ = ["APOLOGY", "CONCURRENCY", "MAX_BACKLOG", "GroupHook", "Inbound", "Serve",
           "TelegramChannel"]

log = logging.getLogger(__name__)
GroupHook = Callable[[Update], Awaitable[None]]
CONCURRENCY = 64  # updates served at once by one process (TELEGRAM_CONCURRENCY): as many
# as the Redis pool has connections, so that no update waits for one while it holds a lock
MAX_BACKLOG = 10_000  # webhook updates taken and not finished (TELEGRAM_MAX_BACKLOG)
EXPIRED = "go:expired_button"  # the engine answers "That menu has expired" from any state
_FED: ContextVar[bool] = ContextVar("telegram_fed", default=False)  # inside a chat's runner
_REQUEUE: ContextVar[bool] = ContextVar("telegram_requeue", default=False)  # may be tried again
POLL_BACKOFF = (0.5, 1.0, 2.0, 5.0)  # a failed getUpdates, or an update the inbox refused


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
                 on_group_update: GroupHook | None = None, inbox: Inbox | None = None,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS,
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
        self._renderer = TelegramRenderer(bot, throttle, metrics, ports.secret, catalog=catalog)
        self._blocked = BlockedChats(ports.kv, self._audit)
        if inbox is None:
            from storage.inbox import MemoryInbox  # the embedded default: one process
            inbox = MemoryInbox()
        self.mailroom = Mailroom(inbox, self._handle_queued, channel=CHANNEL, metrics=metrics,
                                 max_backlog=max_backlog, retry_delays=retry_delays)
        self._tasks = Tasks()  # updates without a chat, handled in background
        self._polled = Tasks()  # updates fed to the dispatcher directly
        self._stopped = asyncio.Event()
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
        """Long polling until stopped (SIGINT or SIGTERM when ``handle_signals``, or
        :meth:`stop_polling`). Each update is kept in the inbox before the next ``getUpdates``
        confirms it (its offset): an update the inbox cannot take now is asked for again, not
        confirmed, so a crash or a Redis outage loses nothing."""
        await self.bot.delete_webhook(drop_pending_updates=False)
        self._stopped.clear()
        self.mailroom.reopen()
        self.mailroom.start()
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM) if handle_signals else ()
        for number in signals:
            loop.add_signal_handler(number, self._stopped.set)
        try:
            await self._poll(timeout)
        finally:
            for number in signals:
                loop.remove_signal_handler(number)
            await self.drain()

    def stop_polling(self) -> None:
        """End :meth:`run_polling` (it drains what is running, then returns)."""
        self._stopped.set()

    async def _poll(self, timeout: int) -> None:
        ask = GetUpdates(timeout=timeout,
                         allowed_updates=self.dispatcher.resolve_used_update_types())
        wait = timeout + (self.bot.session.timeout or 0)
        failures = 0
        while not self._stopped.is_set():
            try:
                updates = await self._until_stopped(self.bot(ask, request_timeout=int(wait)))
            except Exception as exc:  # noqa: BLE001 - an API error, a proxy's HTML page, an
                # update aiogram cannot read: wait and ask again (its message may quote
                # members' texts: only its class and place are logged)
                log.warning("getUpdates failed: %s", describe(exc))
                await self._pause(failures)
                failures += 1
                continue
            if updates is None:
                return
            failures = 0
            for update in updates:
                if not await self._keep_polled(update):
                    return
                ask.offset = update.update_id + 1

    async def _keep_polled(self, update: Update) -> bool:
        """Keep ``update`` in the inbox, waiting while it cannot take it; false when stopped
        first (the update stays unconfirmed: Telegram gives it again)."""
        failures = 0
        while not self._stopped.is_set():
            try:
                raw = update.model_dump_json(exclude_none=True, by_alias=True)
                if await self.take(update, raw):
                    return True
            except StoreUnavailable:
                log.warning("telegram update %s not kept: the inbox is unreachable",
                            update.update_id)
            await self._pause(failures)
            failures += 1
        return False

    async def _until_stopped(self, work: Awaitable[list[Update]]) -> list[Update] | None:
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self._stopped.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TelegramAPIError):
            await task
        return None

    async def _pause(self, failures: int) -> None:
        delay = POLL_BACKOFF[min(failures, len(POLL_BACKOFF) - 1)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), delay)

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
        """Updates received by this process and not served yet."""
        return self.mailroom.backlog + len(self._tasks)

    async def take(self, update: Update, raw: str) -> bool:
        """Keep ``update`` (``raw``: its JSON) for its chat's turn and return true: from now on
        it is served whatever happens to this process. False, nothing kept, when this
        process's backlog is full or it is stopping (Telegram, answered 503, delivers it
        again later); :class:`~flows.ports.StoreUnavailable` when the inbox is unreachable.
        An update without a chat is handled at once in the background."""
        chat_id, _ = _chat_of(update)
        if chat_id is None:
            if self.backlog >= self._max_backlog:
                return False
            self._tasks.spawn(self._feed(update))
            return True
        return await self.mailroom.put(chat_id, raw, update, seq=update.update_id)

    def start(self) -> None:
        """Start the inbox's keeper (renewing turns, taking up stranded chats)."""
        self.mailroom.reopen()
        self.mailroom.start()

    async def drain(self, timeout: float = 30.0, *, reopen: bool = True) -> None:
        """Wait for the updates in progress, taking no more meanwhile (answered 503); hand
        back the chats still running after ``timeout`` (their updates stay in the inbox for
        another process or the next start). Updates are taken again afterwards unless
        ``reopen`` is false (the web app's shutdown: a request still arriving on a kept-alive
        connection is answered 503, and delivered again elsewhere)."""
        try:
            await asyncio.gather(self.mailroom.drain(timeout), self._tasks.drain(timeout),
                                 self._polled.drain(timeout))
        finally:
            if reopen:
                self.mailroom.reopen()

    async def is_blocked(self, chat_id: int | str) -> bool:
        """True when the member blocked the bot (recorded for 30 days or until they write)."""
        return await self._blocked.is_blocked(chat_id)

    async def close(self) -> None:
        """Close the bot's HTTP session."""
        await self.bot.session.close()

    async def _handle_queued(self, chat: str, seq: int, payload: str, parsed: Update | None,
                             last: bool) -> bool:
        """Serve one update of the inbox (:data:`channels.inbox.Handle`)."""
        update = parsed
        if update is None:
            try:
                update = self.parse(parse_json(payload.encode()))
            except (MalformedBody, ValueError):
                log.error("telegram update %s in the inbox is unreadable; dropped", seq)
                return True
        return await self._feed(update, requeue=not last)

    async def _feed(self, update: Update, *, requeue: bool = False) -> bool:
        """Feed ``update`` to the dispatcher; false when it was not served and may be tried
        again (``requeue``)."""
        _FED.set(True)  # in this task's own context
        _REQUEUE.set(requeue)
        try:
            await self.dispatcher.feed_update(self.bot, update)
        except NotServed:
            return False
        except Exception as exc:  # noqa: BLE001 - a background task has nobody to raise to
            self._metrics.errors.labels("internal").inc()
            log.error("telegram update %s failed: %s", update.update_id, describe(exc))
        return True

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
        if _FED.get():  # from the inbox: already in the chat's runner
            await work
        else:  # fed directly: a task of ours, which drain can see
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

        await self._updates.serve(key, replace(inbound.event, update_id=str(update_id)), deliver,
                                  requeue=_REQUEUE.get())

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

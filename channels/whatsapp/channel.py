"""The WhatsApp channel on the Cloud API: Meta's webhook in, the engine, pywa out.

A webhook post is answered 200 at once (after its signature checked out) and each member
message is handled in a background task that shutdown awaits. The channel keeps the same
promises as Telegram's:

* **once**: a repeated message id is dropped (``SET NX`` for 24 h in the shared store);
* **in order**: one chat's messages are served first come, first served in this process and,
  through a session-store lock of the channel's own, across processes;
* **always answered**: a fault is logged (never the text or the number) and the member gets an
  apology.

Per chat, the store keeps (under an HMAC pseudonym of the number, never the number): when the
member last wrote (the 24-hour customer-service window), the numbered choices last offered,
and the language the conversation is in. A reply outside the window (an agent answering late,
see :class:`WhatsAppOutbox`) goes as the configured template. Statuses are counted; a failed
one is logged with its error code.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from typing import Any

from app.metrics import Metrics
from channels.core import APOLOGY, ChatQueue
from channels.whatsapp.chats import WINDOW, ChatState, WhatsAppCounters
from channels.whatsapp.config import WhatsAppConfig
from channels.whatsapp.graph import (
    PAIR_RATE_LIMIT,
    RATE_LIMIT,
    REENGAGEMENT,
    UNDELIVERABLE,
    Graph,
    GraphError,
    Outgoing,
    PywaGraph,
    TextMessage,
)
from channels.whatsapp.inbound import (
    Inbound,
    Notification,
    Status,
    message_ref,
    parse_notification,
)
from channels.whatsapp.limiter import Limit, OutboundLimiter
from channels.whatsapp.locale import LocaleGuesser
from channels.whatsapp.render import CONTACT_OTHER, CONTACT_OWN, render, render_template, words
from flows.flow import Ports
from flows.i18n import Catalog
from flows.ports import SessionBusy, SessionStore, StoreUnavailable
from flows.types import Event, Reply, SessionKey, Text

__all__ = ["CHANNEL", "WINDOW", "WhatsAppChannel"]

log = logging.getLogger(__name__)
Handler = Callable[[SessionKey, Event], Awaitable[list[Reply]]]
CHANNEL = "whatsapp"
ORDER = "whatsapp-order"  # the session-store channel of each chat's cross-process order lock
DEDUPE_TTL = 24 * 3600.0


def classify(exc: BaseException) -> Limit | None:
    """The rate limit a Graph API error says was hit."""
    if isinstance(exc, GraphError) and exc.code == RATE_LIMIT:
        return Limit.NUMBER
    if isinstance(exc, GraphError) and exc.code == PAIR_RATE_LIMIT:
        return Limit.RECIPIENT
    return None


class WhatsAppChannel:
    """Connects one business phone number to the engine."""

    def __init__(self, config: WhatsAppConfig, *, graph: Graph, handle: Handler,
                 sessions: SessionStore, ports: Ports, metrics: Metrics, catalog: Catalog,
                 limiter: OutboundLimiter | None = None,
                 guesser: LocaleGuesser | None = None) -> None:
        self.config = config
        self._graph = graph
        self._handle = handle
        self._sessions = sessions
        self._kv = ports.kv
        self._metrics = metrics
        self._counters = WhatsAppCounters(metrics.registry)
        self._catalog = catalog
        self._limiter = limiter or OutboundLimiter(rate=config.rate, classify=classify)
        self._chats = ChatState(ports.kv, ports.secret, ports.clock, self._store_fault, guesser)
        self._queue: ChatQueue[str] = ChatQueue()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def create(cls, config: WhatsAppConfig, *, handle: Handler, sessions: SessionStore,
               ports: Ports, metrics: Metrics, catalog: Catalog) -> WhatsAppChannel:
        """The channel with pywa's client on ``config.api_base``."""
        graph = PywaGraph(token=config.token, phone_number_id=config.phone_number_id,
                          api_base=config.api_base)
        return cls(config, graph=graph, handle=handle, sessions=sessions, ports=ports,
                   metrics=metrics, catalog=catalog)

    # --- the webhook ----------------------------------------------------------------------

    def challenge(self, mode: str, token: str, challenge: str) -> str | None:
        """The verification handshake: the challenge to echo, or ``None`` (403)."""
        expected = self.config.verify_token.encode()
        if mode != "subscribe" or not hmac.compare_digest(token.encode(), expected):
            return None
        return challenge

    def parse(self, payload: object) -> Notification:
        """A webhook body; ``ValueError`` when it is not a notification."""
        return parse_notification(payload, self.config.phone_number_id)

    def accept(self, notification: Notification) -> None:
        """Record the statuses now; handle each message in the background."""
        for status in notification.statuses:
            self._record(status)
        for message in notification.messages:
            self._spawn(self._serve(message))

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for messages in progress; cancel those still running after ``timeout``."""
        pending = {t for t in self._tasks if t is not asyncio.current_task()}
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            log.warning("cancelled %d whatsapp messages still running at shutdown", len(late))
            await asyncio.wait(late)

    async def close(self) -> None:
        """Close the Graph API client."""
        closing = getattr(self._graph, "close", None)
        if closing is not None:
            await closing()

    # --- delivery outside a member's message (the agent desk) ------------------------------

    async def deliver_later(self, wa_id: str, replies: Sequence[Reply]) -> bool:
        """Send replies that answer no message of the member: free text inside the 24-hour
        window, the template outside it. False when WhatsApp cannot reach the member (or no
        template is configured and the window is closed). Other API errors are raised."""
        ref = self._chats.ref(wa_id)
        async with self._queue.hold(wa_id), self._ordered(ref):
            return await self._send(wa_id, ref, replies, window_open=False)

    # --- one member message ----------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, message: Inbound) -> None:
        started = time.perf_counter()
        async with self._queue.hold(message.wa_id):  # first await: keeps arrival order
            if not await self._first_delivery(message.id):
                self._metrics.duplicates.inc()
                return
            self._metrics.updates.labels(CHANNEL).inc()
            try:
                await self._answer(message)
            except Exception as exc:  # noqa: BLE001 - every fault gets an apology
                await self._fail(message, exc)
            finally:
                self._metrics.update_seconds.labels(CHANNEL).observe(
                    time.perf_counter() - started)

    async def _answer(self, message: Inbound) -> None:
        ref = self._chats.ref(message.wa_id)
        await self._chats.note_seen(ref, message.sent_at)
        async with self._ordered(ref):
            event = await self._event(message, ref)
            if event is None:  # "use another number": the member will type it
                locale = await self._chats.stored_locale(ref)
                await self._send(message.wa_id, ref, [Reply(words(locale)["type_phone"])],
                                 window_open=True)
                return
            key = SessionKey(CHANNEL, message.wa_id)
            replies = await self._handle(key, replace(event, update_id=_update_id(message)))
            await self._send(message.wa_id, ref, replies, window_open=True)

    async def _event(self, message: Inbound, ref: str) -> Event | None:
        """The engine's event (WhatsApp sends no language: the engine's default applies until
        the member picks one); ``None`` for the channel's own "use another number"."""
        if message.kind == "button":
            if message.data == CONTACT_OWN:
                return Event.contact("+" + message.wa_id, own=True)
            return None if message.data == CONTACT_OTHER else Event.button(message.data)
        if message.kind == "contact":
            return Event.contact(message.phone, own=message.own)
        if message.kind != "text":
            return Event.message("")  # media, locations: the engine explains what it reads
        chosen = await self._chats.numbered_choice(ref, message.text)
        return Event.button(chosen) if chosen is not None else Event.message(message.text)

    async def _first_delivery(self, message_id: str) -> bool:
        try:
            return await self._kv.put_if_absent(f"wa:msg:{message_ref(message_id)}", "1",
                                                DEDUPE_TTL)
        except StoreUnavailable:
            self._metrics.errors.labels("store").inc()
            log.warning("cannot check whatsapp message %s for a repeat; handling it",
                        message_ref(message_id)[:12])
            return True

    async def _fail(self, message: Inbound, exc: Exception) -> None:
        kind = ("whatsapp" if isinstance(exc, GraphError) else
                "store" if isinstance(exc, StoreUnavailable | SessionBusy) else "internal")
        self._metrics.errors.labels(kind).inc()
        log.error("whatsapp message %s failed: %s", _update_id(message), exc_name(exc))
        locale = await self._chats.stored_locale(self._chats.ref(message.wa_id))
        text = self._catalog.render(Text(APOLOGY), locale)
        try:
            await self._post(message.wa_id, TextMessage(text))
        except Exception as again:  # noqa: BLE001 - nothing more can be done for this message
            log.error("could not apologise for whatsapp message %s: %s", _update_id(message),
                      exc_name(again))

    # --- sending --------------------------------------------------------------------------

    async def _send(self, wa_id: str, ref: str, replies: Sequence[Reply], *,
                    window_open: bool) -> bool:
        locale = await self._chats.locale(ref, replies)
        if not window_open and not await self._chats.in_window(ref):
            return await self._send_template(wa_id, ref, replies, locale)
        rendered = render(replies, locale=locale, wa_id=wa_id)
        await self._chats.remember_choices(ref, rendered.choices)
        for index, message in rendered.messages:
            try:
                await self._post(wa_id, message)
            except GraphError as exc:
                if exc.code == REENGAGEMENT:  # the window closed after all
                    return await self._send_template(wa_id, ref, replies[index:], locale)
                if exc.code == UNDELIVERABLE:
                    return False
                raise
        return True

    async def _send_template(self, wa_id: str, ref: str, replies: Sequence[Reply],
                             locale: str) -> bool:
        language = self.config.template_language(locale)
        if language is None:
            self._counters.failures.labels("no_template").inc()
            log.warning("a whatsapp reply outside the 24-hour window was not sent: "
                        "WHATSAPP_TEMPLATE_NAME is not set")
            return False
        rendered = render_template(replies, name=self.config.template_name,
                                   language=language, locale=locale)
        await self._chats.remember_choices(ref, rendered.choices)
        try:
            for _, message in rendered.messages:
                await self._post(wa_id, message)
        except GraphError as exc:
            if exc.code in (UNDELIVERABLE, REENGAGEMENT):
                return False
            raise
        self._counters.templates.inc()
        return True

    async def _post(self, wa_id: str, message: Outgoing) -> None:
        async def call() -> str:
            return await self._graph.send(wa_id, message)
        try:
            await self._limiter.send(wa_id, call)
        except GraphError as exc:
            self._counters.failures.labels(str(exc.code)).inc()
            log.warning("whatsapp refused a message: error %s (%s)", f"{exc.code:_}", exc.title)
            raise
        self._metrics.replies.labels(CHANNEL).inc()

    @asynccontextmanager
    async def _ordered(self, ref: str) -> AsyncIterator[None]:
        """Hold the chat's order lock across processes; without it when the store is busy or
        down (answering out of order beats not answering)."""
        finished = False
        try:
            async with AsyncExitStack() as stack:
                try:
                    await stack.enter_async_context(self._sessions.chat(SessionKey(ORDER, ref)))
                except (SessionBusy, StoreUnavailable) as exc:
                    log.warning("whatsapp chat served without its order lock: %s",
                                exc_name(exc))
                yield
                finished = True
        except (SessionBusy, StoreUnavailable) as exc:
            if not finished:
                raise
            log.warning("could not release a whatsapp order lock: %s", exc_name(exc))

    def _store_fault(self) -> None:
        self._metrics.errors.labels("store").inc()

    def _record(self, status: Status) -> None:
        self._counters.status(status.status)
        if status.status != "failed":
            return
        code = f"{status.error_code:_}" if status.error_code is not None else "unknown"
        self._counters.failures.labels(str(status.error_code or "unknown")).inc()
        log.warning("a whatsapp message failed: error %s (%s), message %s", code,
                    status.error_title, message_ref(status.id)[:12])


def _update_id(message: Inbound) -> str:
    return message_ref(message.id)[:12]


def exc_name(exc: BaseException) -> str:
    """An exception's class and, for Graph errors, its code: never a member's data."""
    return f"GraphError {exc.code:_}" if isinstance(exc, GraphError) else type(exc).__name__

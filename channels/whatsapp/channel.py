"""The WhatsApp channel on the Cloud API: Meta's webhook in, :meth:`Engine.serve`, the Graph
API out.

A webhook post is answered 200 once its signature checked out and each of its member messages
is kept in the inbox (:mod:`channels.inbox`: Redis in production), from where the chat's
runner, in whatever process, serves the chat's messages in their order of arrival, through
the skeleton every channel shares (:class:`channels.core.Updates`); 503 when the inbox cannot
keep them (Meta delivers the notification again). The channel keeps the same promises as
Telegram's, in the same two session-store round trips per message besides the inbox's two:

* **once**: a repeated message id is dropped (``Engine.serve`` remembers it for a day, in the
  round trip that locks the chat);
* **in order**: one chat's messages are served one after another, in their order of arrival,
  by the one runner that holds the chat's turn, whatever process received them;
* **always answered**: a fault is logged (never the text or the number) and the member gets an
  apology in the chat's language.

**Bounded**: at most ``config.concurrency`` messages are served at once (no more than the Graph
API client's connections), the others wait in arrival order; beyond ``config.max_backlog``
messages received and not finished, :meth:`WhatsAppChannel.take` takes nothing and the webhook
answers 503, so Meta delivers the notification again later.

Each member message is marked as read after its replies, outside its slot, by at most
:data:`RECEIPT_SENDERS` background senders on connections of their own (a receipt never
competes with a reply, and a failure never costs an answer). A receipt marks every earlier
message of the chat read, so only the newest message of a chat gets one: a message with a later
one of the same chat already waiting gets none of its own, and receipts waiting to be sent keep
only each chat's newest (under load they coalesce instead of queueing).
What the channel remembers of a chat lives in ``Session.view`` (:class:`ChatView`): when the
member last wrote, by each message's own timestamp, so that a message Meta delivers late
(after an outage) is answered with the template once the 24-hour window has closed, and the
language of the last replies (each :class:`~flows.types.Reply` carries its locale). Agent
replies (:meth:`WhatsAppChannel.deliver_later`) take the same render and send path under the
chat's lock. A ``failed`` status for a reply is acted on: resent as the template when the
window is closed (error 131047), otherwise recorded.

A reply with a file is uploaded (``POST /{phone_number_id}/media``) and sent as a document or
image message naming the upload, paced and retried like any message; when Meta refuses the
upload or the file message, the member reads :data:`FILE_NOT_SENT` instead. The bytes are not
kept: the turns remembered for failed statuses hold the replies without them.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace

from app.metrics import Metrics
from channels.core import APOLOGY, Serve, Tasks, Updates, describe, open_view
from channels.inbox import RETRY_DELAYS, Inbox, Mailroom
from channels.whatsapp.chats import WINDOW, ChatView, SentTurns, Turn, WhatsAppCounters
from channels.whatsapp.config import WhatsAppConfig
from channels.whatsapp.graph import (
    PAIR_RATE_LIMIT,
    RATE_LIMIT,
    REENGAGEMENT,
    UNDELIVERABLE,
    Graph,
    GraphClient,
    GraphError,
    Outgoing,
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
from channels.whatsapp.render import (
    CONTACT_OTHER,
    CONTACT_OWN,
    FileMessage,
    Words,
    carries_file,
    contact_choice,
    render,
    render_template,
)
from flows.engine import NotServed, View, session_ttl
from flows.flow import Ports
from flows.i18n import DEFAULT_LOCALE, LOCALES, N_, Catalog
from flows.ports import SessionStore
from flows.typed_buttons import shown_buttons
from flows.types import Event, Reply, Session, SessionKey, Text

__all__ = ["CHANNEL", "FILE_NOT_SENT", "RECEIPT_SENDERS", "WINDOW", "WhatsAppChannel",
           "classify"]

log = logging.getLogger(__name__)
CHANNEL = "whatsapp"
RECEIPT_SENDERS = 4  # read receipts being sent at once, at most
FILE_NOT_SENT = N_("Sorry, the file could not be sent just now. Please try again in a few "
                   "minutes.")  # the same words as Telegram's (one msgid)


def classify(exc: BaseException) -> Limit | None:
    """The rate limit a Graph API error says was hit."""
    if isinstance(exc, GraphError) and exc.code == RATE_LIMIT:
        return Limit.NUMBER
    if isinstance(exc, GraphError) and exc.code == PAIR_RATE_LIMIT:
        return Limit.RECIPIENT
    return None


class WhatsAppChannel:
    """Connects one business phone number to the engine (``serve`` is ``Engine.serve``;
    ``ttl_for`` the engine's ``ttl_for``, for views saved outside a member message)."""

    def __init__(self, config: WhatsAppConfig, *, graph: Graph, serve: Serve,
                 sessions: SessionStore, ports: Ports, metrics: Metrics, catalog: Catalog,
                 limiter: OutboundLimiter | None = None, inbox: Inbox | None = None,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS,
                 ttl_for: Callable[[Session], float | None] = session_ttl) -> None:
        self.config = config
        self._graph = graph
        self._sessions = sessions
        self._ttl_for = ttl_for
        self._clock = ports.clock
        self._metrics = metrics
        self._counters = WhatsAppCounters(metrics.registry)
        self._catalog = catalog
        self._words = {locale: Words.of(catalog, locale) for locale in LOCALES}
        self._limiter = limiter or OutboundLimiter(rate=config.rate, classify=classify)
        connections = getattr(graph, "connections", None)
        concurrency = (config.concurrency if connections is None
                       else min(config.concurrency, connections))
        self._updates: Updates[str] = Updates(CHANNEL, serve, metrics,
                                              platform_errors=(GraphError,),
                                              concurrency=concurrency)
        self._tasks = Tasks()  # failed replies resent as the template, receipts
        if inbox is None:
            from storage.inbox import MemoryInbox  # the embedded default: one process
            inbox = MemoryInbox()
        self.mailroom = Mailroom(inbox, self._handle_queued, channel=CHANNEL, metrics=metrics,
                                 max_backlog=config.max_backlog, retry_delays=retry_delays)
        self._unread: dict[str, str] = {}  # chat -> its newest message awaiting a receipt
        self._readers = 0  # receipt senders running
        self._turns = SentTurns()

    @classmethod
    def create(cls, config: WhatsAppConfig, *, serve: Serve, sessions: SessionStore,
               ports: Ports, metrics: Metrics, catalog: Catalog, inbox: Inbox | None = None,
               ttl_for: Callable[[Session], float | None] = session_ttl) -> WhatsAppChannel:
        """The channel with the Graph API client on ``config.api_base``."""
        graph = GraphClient(token=config.token, phone_number_id=config.phone_number_id,
                            api_base=config.api_base,
                            connections=config.concurrency + RECEIPT_SENDERS)
        return cls(config, graph=graph, serve=serve, sessions=sessions, ports=ports,
                   metrics=metrics, catalog=catalog, inbox=inbox, ttl_for=ttl_for)

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

    @property
    def backlog(self) -> int:
        """Member messages received by this process and not finished yet."""
        return self.mailroom.backlog

    async def take(self, notification: Notification) -> bool:
        """Record the statuses now (a failed reply may be resent in the background); keep
        each message in the inbox for its chat's turn. False, and nothing taken (statuses
        included), when a notification with messages comes while ``max_backlog`` messages are
        waiting: memory stays bounded and Meta, answered 503, delivers the notification again
        later. :class:`~flows.ports.StoreUnavailable` when the inbox is unreachable (messages
        kept before the fault are served; their redelivery is dropped as a repeat)."""
        if notification.messages and self.mailroom.backlog >= self.config.max_backlog:
            self._metrics.errors.labels("overload").inc()
            return False
        for message in notification.messages:
            if not await self.mailroom.put(message.wa_id, json.dumps(asdict(message)),
                                           message):
                return False
        for status in notification.statuses:
            self._record(status)
        return True

    def start(self) -> None:
        """Start the inbox's keeper (renewing turns, taking up stranded chats)."""
        self.mailroom.reopen()
        self.mailroom.start()

    async def drain(self, timeout: float = 30.0, *, reopen: bool = True) -> None:
        """Wait for messages in progress, taking no more meanwhile; hand back the chats still
        running after ``timeout`` (their messages stay in the inbox). Messages are taken
        again afterwards."""
        try:
            await self.mailroom.drain(timeout)
        finally:
            if reopen:  # not at the web app's shutdown: late requests are answered 503
                self.mailroom.reopen()
        await self._tasks.drain(timeout)  # the receipts and resends they started

    async def close(self) -> None:
        """Close the Graph API client."""
        closing = getattr(self._graph, "close", None)
        if closing is not None:
            await closing()

    # --- delivery outside a member's message (the agent desk) ------------------------------

    async def deliver_later(self, wa_id: str, replies: Sequence[Reply], *,
                            template: str | None = None) -> bool:
        """Send replies that answer no message of the member, under the chat's lock and with
        its view, as a member message's replies are sent: free text inside the 24-hour
        window, the template outside it (``template``, by default ``WHATSAPP_TEMPLATE_NAME``).
        False when WhatsApp cannot reach the member (or no template is configured and the
        window is closed). Other API errors are raised."""
        key = SessionKey(CHANNEL, wa_id)
        async with self._updates.queue.hold(wa_id), \
                open_view(self._sessions, key, self._ttl_for,
                          shown=shown_buttons(replies)) as kept:
            chat = ChatView.load(kept)
            try:
                return await self._send(wa_id, replies, chat, template=template)
            finally:
                chat.save(kept)

    # --- one member message ----------------------------------------------------------------

    async def _handle_queued(self, chat: str, seq: int, payload: str,
                             parsed: Inbound | None, last: bool) -> bool:
        """Serve one message of the inbox (:data:`channels.inbox.Handle`)."""
        message = parsed
        if message is None:
            try:
                message = Inbound(**json.loads(payload))
            except (TypeError, ValueError):
                log.error("a whatsapp message in the inbox is unreadable; dropped")
                return True
        try:
            await self._one(message, requeue=not last)
        except NotServed:
            return False
        return True

    async def _one(self, message: Inbound, *, requeue: bool = False) -> None:
        chat = ChatView()  # what deliver learns of the chat; the apology's language

        async def work() -> None:
            await self._answer(message, chat, requeue=requeue)

        async def apologise(_: Exception) -> None:
            chat.wrote(message.sent_at, self._now())
            locale = chat.locale or DEFAULT_LOCALE
            text = self._catalog.render(Text(APOLOGY), locale)
            await self._send(message.wa_id, [Reply(text, locale=locale)], chat)

        await self._updates.run(message.wa_id, _ref(message), work, apologise)

    async def _answer(self, message: Inbound, chat: ChatView, *, requeue: bool = False) -> None:
        event = self._event(message)
        if isinstance(event, Words):  # "use another number": the member will type it
            self._metrics.updates.labels(CHANNEL).inc()
            chat.wrote(message.sent_at, self._now())
            chat.locale = event.locale
            await self._send(message.wa_id, [Reply(event.type_phone, locale=event.locale)],
                             chat)
            self._mark_read(message)
            return

        answered = False

        async def deliver(replies: list[Reply], kept: View) -> None:
            nonlocal answered
            answered = True
            loaded = ChatView.load(kept)
            chat.seen, chat.locale = loaded.seen, loaded.locale
            chat.wrote(message.sent_at, self._now())
            try:
                await self._send(message.wa_id, replies, chat)
            finally:
                chat.save(kept)

        key = SessionKey(CHANNEL, message.wa_id)
        await self._updates.serve(key, replace(event, update_id=_ref(message)), deliver,
                                  requeue=requeue)
        if answered:  # a repeat is neither answered nor marked again
            self._mark_read(message)  # after the replies

    def _event(self, message: Inbound) -> Event | Words:
        """The engine's event (WhatsApp sends no language: the engine's default applies until
        the member picks one); the words of the member's language for the channel's own
        "use another number", pressed or typed."""
        if message.kind == "button":
            return self._pressed(message)
        if message.kind == "contact":
            return Event.contact(message.phone, own=message.own)
        if message.kind != "text":
            return Event.message("")  # media, locations: the engine explains what it reads
        typed = contact_choice(message.text, self._words.values())
        if typed is None:
            return Event.message(message.text)
        data, words = typed
        return Event.contact("+" + message.wa_id, own=True) if data == CONTACT_OWN else words

    def _pressed(self, message: Inbound) -> Event | Words:
        if message.data == CONTACT_OWN:
            return Event.contact("+" + message.wa_id, own=True)
        if message.data.startswith(CONTACT_OTHER):
            locale = message.data.removeprefix(CONTACT_OTHER).lstrip(":")
            return self._words.get(locale) or self._words[DEFAULT_LOCALE]
        return Event.button(message.data)

    def _mark_read(self, message: Inbound) -> None:
        """Blue ticks for ``message`` and the chat's earlier ones, sent in the background,
        unless a later message of the chat is waiting (its receipt covers this one)."""
        if self.mailroom.waiting(message.wa_id) > 1:
            return
        self._unread.pop(message.wa_id, None)  # an older one not sent yet: this one covers it
        self._unread[message.wa_id] = message.id
        if len(self._unread) > self.config.max_backlog:  # bounded: the oldest go without
            del self._unread[next(iter(self._unread))]
        if self._readers < RECEIPT_SENDERS:
            self._readers += 1
            self._tasks.spawn(self._send_receipts())

    async def _send_receipts(self) -> None:
        try:
            while self._unread:
                wa_id = next(iter(self._unread))
                message_id = self._unread.pop(wa_id)
                try:
                    await self._graph.mark_read(message_id)
                except Exception as exc:  # noqa: BLE001 - blue ticks never cost an answer
                    self._counters.read_failures.inc()
                    log.info("could not mark a whatsapp message as read: %s", describe(exc))
        finally:
            self._readers -= 1

    # --- sending --------------------------------------------------------------------------

    async def _send(self, wa_id: str, replies: Sequence[Reply], chat: ChatView, *,
                    template: str | None = None) -> bool:
        """Free text while the chat's window is open, else the template (``template``, by
        default the reply template); the replies' language noted in ``chat``. False when the
        member cannot be reached. When the window is unknown (the chat's session expired) and
        there is no template, free text is tried: Meta refuses it (131047) only when the
        window has closed."""
        words = self._words[chat.spoke(replies)]
        name = template or self.config.template_name
        unknown = chat.seen is None and not name  # free text may pass
        if not chat.window_open(self._now()) and not unknown:
            return await self._send_template(wa_id, replies, chat, words, name=name)
        turn = Turn(wa_id, _without_files(replies), words.locale, chat.seen, template=False,
                    template_name=template or "")
        for index, message in render(replies, words=words, wa_id=wa_id).messages:
            try:
                await self._post_any(wa_id, message, turn)
            except GraphError as exc:
                if exc.code == REENGAGEMENT:  # the window closed after all
                    turn.acted = True
                    return await self._send_template(wa_id, replies, chat, words, skip=index,
                                                     name=name)
                if exc.code == UNDELIVERABLE:
                    return False
                raise
        return True

    async def _send_template(self, wa_id: str, replies: Sequence[Reply], chat: ChatView,
                             words: Words, *, skip: int = 0, name: str | None = None) -> bool:
        name = name or self.config.template_name
        language = self.config.template_language(words.locale, name)
        if language is None:
            self._counters.failures.labels("no_template").inc()
            log.warning("a whatsapp reply outside the 24-hour window was not sent: "
                        "WHATSAPP_TEMPLATE_NAME is not set")
            return False
        turn = Turn(wa_id, _without_files(replies), words.locale, chat.seen, template=True)
        note = self._file_not_sent(words.locale) if any(map(carries_file, replies)) else ""
        rendered = render_template(replies, name=name,
                                   language=language, words=words, skip=skip, file_note=note)
        try:
            for _, message in rendered.messages:
                await self._post_any(wa_id, message, turn)
        except GraphError as exc:
            if exc.code in (UNDELIVERABLE, REENGAGEMENT):
                return False
            raise
        self._counters.templates.inc()
        return True

    async def _post_any(self, wa_id: str, message: Outgoing | FileMessage, turn: Turn) -> None:
        if isinstance(message, FileMessage):
            await self._post_file(wa_id, message, turn)
        else:
            await self._post(wa_id, message, turn)

    async def _post_file(self, wa_id: str, message: FileMessage, turn: Turn) -> None:
        """Upload the file and send the message naming it; when Meta refuses either (not for
        a closed window, an unreachable member or a rate limit retried in vain: those are
        the caller's), the member is told the file could not be sent."""
        attachment = message.attachment

        async def upload() -> str:
            return await self._graph.upload_media(attachment.content,
                                                  filename=attachment.filename,
                                                  mime=attachment.mime)
        try:
            media_id = await self._limiter.send(wa_id, upload)
            await self._post(wa_id, message.sent_as(media_id), turn)
        except GraphError as exc:
            if exc.code in (REENGAGEMENT, UNDELIVERABLE) or classify(exc) is not None:
                raise
            self._counters.failures.labels(str(exc.code)).inc()
            log.warning("whatsapp could not take a file: error %s (%s)", f"{exc.code:_}",
                        exc.title)
            await self._post(wa_id, TextMessage(self._file_not_sent(turn.locale)), turn)

    def _file_not_sent(self, locale: str) -> str:
        # Rendered when needed, not with the channel's other words at start.
        return self._catalog.render(Text(FILE_NOT_SENT), locale)

    async def _post(self, wa_id: str, message: Outgoing, turn: Turn) -> None:
        async def call() -> str:
            return await self._graph.send(wa_id, message)
        try:
            sent = await self._limiter.send(wa_id, call)
        except GraphError as exc:
            self._counters.failures.labels(str(exc.code)).inc()
            log.warning("whatsapp refused a message: error %s (%s)", f"{exc.code:_}", exc.title)
            raise
        self._turns.add(sent, turn)
        self._metrics.replies.labels(CHANNEL).inc()

    # --- statuses -------------------------------------------------------------------------

    def _record(self, status: Status) -> None:
        self._counters.status(status.status)
        if status.status != "failed":
            return
        self._counters.failures.labels(str(status.error_code or "unknown")).inc()
        turn = self._turns.get(status.id)
        resend = turn is not None and not turn.template and not turn.acted and (
            status.error_code == REENGAGEMENT
            or not ChatView(turn.seen).window_open(self._now()))
        action = "template" if resend else "recorded"
        self._counters.failed_replies.labels(action).inc()
        code = f"{status.error_code:_}" if status.error_code is not None else "unknown"
        log.warning("a whatsapp message failed: error %s (%s), message %s; %s", code,
                    status.error_title, message_ref(status.id)[:12],
                    "resending it as the template" if resend else "recorded")
        if resend and turn is not None:
            turn.acted = True
            self._tasks.spawn(self._resend(turn))

    async def _resend(self, turn: Turn) -> None:
        """A turn Meta refused after all (the window had closed), as the template, in the
        chat's order."""
        key = SessionKey(CHANNEL, turn.wa_id)
        try:
            async with self._updates.queue.hold(turn.wa_id), \
                    open_view(self._sessions, key, self._ttl_for) as kept:
                chat = ChatView.load(kept)
                sent = await self._send_template(turn.wa_id, turn.replies, chat,
                                                 self._words[turn.locale],
                                                 name=turn.template_name or None)
                if not sent:
                    log.warning("a failed whatsapp reply could not be resent as the template")
        except Exception as exc:  # noqa: BLE001 - a background task has nobody to raise to
            self._metrics.errors.labels("whatsapp" if isinstance(exc, GraphError)
                                        else "internal").inc()
            log.error("resending a failed whatsapp reply failed: %s", describe(exc))

    def _now(self) -> float:
        return self._clock.now().timestamp()


def _without_files(replies: Sequence[Reply]) -> tuple[Reply, ...]:
    """The replies as a turn remembers them: a file's bytes are not kept after sending."""
    return tuple(replace(r, attachment=None) if r.attachment is not None else r
                 for r in replies)


def _ref(message: Inbound) -> str:
    """A message's name in logs and in the store's record of served updates."""
    return message_ref(message.id)

"""The agent desk on Telegram: a supergroup with topics (``AGENT_CHAT_ID``), one topic per ticket.

:class:`TelegramForumDesk` is the :class:`~flows.ports.AgentDesk` the flows talk to: it opens a
topic named ``#<id> · <masked member> · <reason>`` with the ticket's context and the buttons
Claim and Close, and posts the member's messages and notices into it. Any Bot API or network
failure (chat not found, the bot not an admin allowed to manage topics, forbidden, timeouts) is
:class:`~flows.ports.DeskUnavailable`: the ticket is kept and delivered later by the sweeper.

:class:`AgentGroup` is the channel's group hook: in a ticket's topic, a message from a member
of the group (creator, administrator or member; checked with ``getChatMember`` and cached
briefly) is the agent's reply, relayed to the member signed with the agent's first name;
``/note <text>`` is an internal note; ``/close [resolution]`` closes; the Claim and Close
buttons do what they say. What happened is told back in the topic. Messages outside ticket
topics, from non-members, from bots, and from other chats are ignored. Only text is relayed:
a photo or a document is copied to a Telegram member with its caption.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.methods import AnswerCallbackQuery, CreateForumTopic, GetChatMember, SendMessage
from aiogram.methods.base import TelegramMethod
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)

from channels.core import ChatQueue, store_key
from channels.telegram.chats import CHANNEL, KEYS
from channels.telegram.keyboards import sign, verify
from channels.telegram.throttle import SendThrottle
from flows.ports import (
    DeskUnavailable,
    KeyValueStore,
    StoreUnavailable,
    Ticket,
    TicketBrief,
    TicketStatus,
    TicketStore,
)
from support.desk import DeskService, Result

__all__ = ["MEMBER_STATUSES", "AgentGroup", "TelegramForumDesk", "context_text", "topic_name"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")
MAX_TOPIC_NAME = 128
MAX_LINE = 300  # characters of one transcript line in the context message
MEMBER_STATUSES = frozenset({"creator", "administrator", "member"})
MEMBER_CACHE_SECONDS = 60.0
DEDUPE_TTL = 24 * 3600.0
CLAIM, CLOSE = "desk:claim", "desk:close"
_NETWORK = (TelegramAPIError, aiohttp.ClientError, TimeoutError, OSError)


def topic_name(brief: TicketBrief) -> str:
    """``#<id> · <masked member> · <reason>``, within Telegram's 128 characters."""
    ticket = brief.ticket
    name = f"#{ticket.id} · {brief.member or '-'} · {ticket.reason or 'handoff'}"
    return name[:MAX_TOPIC_NAME]


def context_text(brief: TicketBrief) -> str:
    """The first message of a ticket's topic: what the agent needs, never a full identifier."""
    ticket = brief.ticket
    linked = f"linked, KPJ {brief.linked_kpj}" if brief.linked_kpj else "not linked"
    lines = [f"Ticket #{ticket.id} · {ticket.reason or 'handoff'}",
             f"Channel: {ticket.key.channel}",
             f"Language: {ticket.locale}",
             f"Member: {brief.member or '-'} ({linked})",
             f"Membership: {brief.membership or '-'}"]
    if brief.transcript:
        lines.append("")
        lines.append(f"Last {len(brief.transcript)} lines:")
        lines += [f"{line.who}: {_cut(line.text)}" for line in brief.transcript]
    lines += ["", "Write in this topic to answer the member (signed with your first name). "
              "/note <text>: internal note, not sent. /close [resolution]: close the ticket."]
    return "\n".join(lines)[:4096]


def _cut(text: str) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= MAX_LINE else one_line[:MAX_LINE - 1] + "…"


class TelegramForumDesk:
    """:class:`~flows.ports.AgentDesk` on a forum supergroup; the thread id is the topic's."""

    def __init__(self, bot: Bot, throttle: SendThrottle, chat_id: int, *,
                 secret: bytes) -> None:
        self.bot = bot
        self._throttle = throttle
        self.chat_id = chat_id
        self.secret = secret

    async def copy_to_member(self, chat_id: int, message: Message) -> None:
        """Copy an agent's photo or document from the topic to the member's private chat."""
        await self._throttle.send(chat_id, lambda: self.bot.copy_message(
            chat_id=chat_id, from_chat_id=message.chat.id, message_id=message.message_id))

    async def open(self, brief: TicketBrief) -> int:
        """Create the ticket's topic and post its context with the Claim and Close buttons."""
        ticket = brief.ticket
        topic = await self._call(CreateForumTopic(chat_id=self.chat_id, name=topic_name(brief)))
        thread = topic.message_thread_id
        await self._call(SendMessage(chat_id=self.chat_id, message_thread_id=thread,
                                     text=context_text(brief),
                                     reply_markup=self.buttons(ticket.id)))
        return thread

    async def relay(self, ticket: Ticket, text: str) -> None:
        """Post the member's message into the ticket's topic."""
        await self.post(ticket, f"Member: {text}")

    async def notice(self, ticket: Ticket, text: str) -> None:
        """Post a system notice into the ticket's topic."""
        await self.post(ticket, text)

    async def post(self, ticket: Ticket, text: str) -> None:
        """One message in the ticket's topic; :class:`DeskUnavailable` when it cannot be."""
        if ticket.topic_id is None:
            raise DeskUnavailable(f"ticket {ticket.id} has no topic yet")
        await self.say(ticket.topic_id, text)

    async def say(self, thread_id: int, text: str) -> None:
        """One message in a topic."""
        await self._call(SendMessage(chat_id=self.chat_id, message_thread_id=thread_id,
                                     text=text[:4096]))

    def buttons(self, ticket_id: int) -> InlineKeyboardMarkup:
        """Claim and Close, signed for the agent group like the members' buttons."""
        return InlineKeyboardMarkup(inline_keyboard=[[
            InlineKeyboardButton(text="Claim", callback_data=sign(
                self.secret, self.chat_id, f"{CLAIM}:{ticket_id}")),
            InlineKeyboardButton(text="Close", callback_data=sign(
                self.secret, self.chat_id, f"{CLOSE}:{ticket_id}"))]])

    async def _call(self, method: TelegramMethod[_T]) -> _T:
        async def call() -> _T:
            return await self.bot(method)
        try:
            return await self._throttle.send(self.chat_id, call)
        except _NETWORK as exc:
            log.warning("the agent desk is unavailable: %s", _describe(exc))
            raise DeskUnavailable(_describe(exc)) from None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc.message}" if isinstance(exc, TelegramAPIError) \
        else type(exc).__name__


class AgentGroup:
    """Agents' messages and button presses in the desk group, turned into desk actions."""

    def __init__(self, desk: TelegramForumDesk, *, tickets: TicketStore, service: DeskService,
                 kv: KeyValueStore | None = None, member_ttl: float = MEMBER_CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._desk = desk
        self._tickets = tickets
        self._service = service
        self._kv = kv
        self._member_ttl = member_ttl
        self._clock = clock
        self._members: dict[int, tuple[bool, float]] = {}
        self._queue: ChatQueue[int] = ChatQueue()

    async def handle(self, update: Update) -> None:
        """The channel's ``on_group_update``: everything but the agent group is ignored."""
        message, query = update.message, update.callback_query
        if message is not None and message.chat.id == self._desk.chat_id:
            thread = message.message_thread_id if message.is_topic_message else None
            if thread is None:
                return  # the General topic, or a plain group: not a ticket
            async with self._queue.hold(thread):  # first await: one topic's order is kept
                if await self._first(update.update_id):
                    await self._guarded(self._on_message(message, thread), update, thread)
        elif query is not None and isinstance(query.message, Message) \
                and query.message.chat.id == self._desk.chat_id:
            thread = query.message.message_thread_id or 0
            async with self._queue.hold(thread):
                if await self._first(update.update_id):
                    await self._guarded(self._on_button(query, thread), update, thread)

    async def _guarded(self, work: Coroutine[Any, Any, None], update: Update,
                       thread: int) -> None:
        try:
            await work
        except Exception as exc:  # noqa: BLE001 - the agent hears it, the log keeps the kind
            log.error("agent desk update %s failed: %s", update.update_id, type(exc).__name__)
            await self._tell(thread, "Something went wrong on the bot's side; the member may "
                                     "not have received this. Please try again.")

    # --- messages ---------------------------------------------------------------------------

    async def _on_message(self, message: Message, thread: int) -> None:
        agent = message.from_user
        if agent is None or agent.is_bot or not await self._is_member(agent):
            return
        ticket = await self._tickets.by_topic(thread)
        if ticket is None:
            return
        text = message.text or ""
        if not text:
            if message.photo or message.document:
                await self._relay_file(ticket, thread, _name(agent), message)
            elif message.caption is not None or any((message.video, message.voice,
                                                     message.audio, message.sticker,
                                                     message.animation)):
                await self._tell(thread, "Only text, photos and documents are relayed to the "
                                         "member: please write your answer as a message.")
            return
        name = _name(agent)
        command, _, rest = text.partition(" ")
        verb = command.split("@", 1)[0].lower() if command.startswith("/") else ""
        if verb == "/note":
            await self._note(ticket, thread, name, rest.strip())
        elif verb == "/close":
            await self._close(ticket, thread, name, rest.strip())
        elif verb == "/claim":
            await self._claim(ticket, thread, name)
        elif verb:
            await self._tell(thread, "Not sent to the member. Commands here: /note <text> "
                                     "(internal note), /close [resolution], /claim; any other "
                                     "message is sent to the member.")
        else:
            await self._reply(ticket, thread, name, text)

    async def _relay_file(self, ticket: Ticket, thread: int, name: str,
                          message: Message) -> None:
        """A photo or document: its caption goes as the agent's reply, then a copy of the file
        (only a Telegram member can receive it; others are asked for in text)."""
        if ticket.key.channel != CHANNEL:
            await self._tell(thread, "This member is not on Telegram: files cannot be relayed. "
                                     "Please describe it in text.")
            return
        caption = "📎 " + (message.caption or "")
        await self._reply(ticket, thread, name, caption.strip())
        current = await self._tickets.get(ticket.id)
        if current is None or current.status is TicketStatus.CLOSED:
            return
        await self._desk.copy_to_member(int(ticket.key.chat_id), message)

    async def _reply(self, ticket: Ticket, thread: int, name: str, text: str) -> None:
        unclaimed = ticket.agent is None and ticket.status is not TicketStatus.CLOSED
        result = await self._service.reply(ticket.id, name, text)
        if result is Result.DONE and unclaimed:
            await self._tell(thread, f"Claimed by {name}.")
        elif result is Result.CLOSED:
            await self._tell(thread, f"Ticket #{ticket.id}: this ticket is closed; your message "
                                     "was not sent to the member.")
        elif result is not Result.DONE:
            await self._tell_result(ticket, thread, result)

    async def _note(self, ticket: Ticket, thread: int, name: str, text: str) -> None:
        if not text:
            await self._tell(thread, "Usage: /note <text> (an internal note, never sent).")
            return
        result = await self._service.note(ticket.id, name, text)
        await self._tell(thread, "Note saved (not sent to the member)." if result is Result.DONE
                         else f"Ticket #{ticket.id}: {result.value}")

    async def _close(self, ticket: Ticket, thread: int, name: str, resolution: str) -> None:
        result = await self._service.close(ticket.id, name, resolution)
        if result is Result.DONE:
            await self._tell(thread, f"Ticket #{ticket.id} closed by {name}. The member was "
                                     "asked for a rating; the bot answers them again.")
        else:
            await self._tell_result(ticket, thread, result)

    async def _claim(self, ticket: Ticket, thread: int, name: str) -> None:
        result = await self._service.claim(ticket.id, name)
        if result is Result.DONE:
            await self._tell(thread, f"Claimed by {name}.")
        elif result is Result.TAKEN:
            current = await self._tickets.get(ticket.id)
            holder = current.agent if current is not None and current.agent else "another agent"
            await self._tell(thread, f"Already claimed by {holder}.")
        else:
            await self._tell_result(ticket, thread, result)

    async def _tell_result(self, ticket: Ticket, thread: int, result: Result) -> None:
        told = {
            Result.CLOSED: f"Ticket #{ticket.id}: this ticket is closed.",
            Result.UNREACHABLE: f"Ticket #{ticket.id}: the member cannot be reached (they "
                                "blocked the bot); the ticket is closed.",
            Result.UNKNOWN: f"Ticket #{ticket.id} was not found.",
            Result.TAKEN: f"Ticket #{ticket.id} is already claimed.",
        }.get(result)
        if told:
            await self._tell(thread, told)

    # --- buttons ----------------------------------------------------------------------------

    async def _on_button(self, query: CallbackQuery, thread: int) -> None:
        await self._answer(query)
        agent = query.from_user
        if agent.is_bot or not await self._is_member(agent):
            return
        data = verify(self._desk.secret, self._desk.chat_id, query.data)
        action, _, number = (data or "").rpartition(":")
        if action not in (CLAIM, CLOSE) or not number.isdigit():
            return
        ticket = await self._tickets.get(int(number))
        if ticket is None:
            return
        thread = ticket.topic_id or thread
        if action == CLAIM:
            await self._claim(ticket, thread, _name(agent))
        else:
            await self._close(ticket, thread, _name(agent), "")

    async def _answer(self, query: CallbackQuery) -> None:
        try:
            await self._desk.bot(AnswerCallbackQuery(callback_query_id=query.id))
        except TelegramBadRequest as exc:  # too old: the action matters more
            log.info("could not answer a desk button: %s", exc.message)

    # --- helpers ----------------------------------------------------------------------------

    async def _is_member(self, user: User) -> bool:
        now = self._clock()
        cached = self._members.get(user.id)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            member = await self._desk.bot(GetChatMember(chat_id=self._desk.chat_id,
                                                        user_id=user.id))
        except _NETWORK as exc:
            log.warning("could not check an agent's membership: %s", _describe(exc))
            return False
        allowed = str(member.status) in MEMBER_STATUSES or \
            getattr(member.status, "value", None) in MEMBER_STATUSES
        self._members[user.id] = (allowed, now + self._member_ttl)
        return allowed

    async def _first(self, update_id: int) -> bool:
        if self._kv is None:
            return True
        try:
            return await self._kv.put_if_absent(store_key(KEYS, "update", update_id), "1",
                                                DEDUPE_TTL)
        except StoreUnavailable:
            return True

    async def _tell(self, thread: int, text: str) -> None:
        with contextlib.suppress(DeskUnavailable):  # logged; the action itself is done
            await self._desk.say(thread, text)


def _name(user: User) -> str:
    return (user.first_name or "").strip() or "Agent"

"""Engine replies as Bot API calls, every one paced by the
:class:`~channels.telegram.throttle.SendThrottle`.

A message with buttons gets an inline keyboard; ``ASK_CONTACT`` a one-time share-contact
keyboard, which the next plain message removes; ``DELETE_MEMBER_MESSAGE`` deletes the member's
message (it held a NIK or OTP) and then says why. A page of history edits the message whose
button was pressed instead of adding a new one. A reply with a file (``DOCUMENT``, ``PHOTO``)
is uploaded with its text as the caption and its buttons under it (:mod:`.media`); when the
upload fails the member is told so, in the reply's language.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import cache, partial
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    EditMessageText,
    SendMessage,
    TelegramMethod,
)
from aiogram.methods.base import Response
from aiogram.types import InlineKeyboardMarkup, Message, ReplyKeyboardMarkup, ReplyKeyboardRemove

from app.metrics import Metrics
from channels.core import describe, split_text
from channels.telegram.chats import CHANNEL, BlockedChats, ChatView
from channels.telegram.keyboards import contact_keyboard, inline_keyboard
from channels.telegram.media import FILE_NOT_SENT, UPLOAD_FAILURES, caption_fits, file_method
from channels.telegram.session import JsonAiohttpSession
from channels.telegram.throttle import SendThrottle
from flows.i18n import DEFAULT_LOCALE, Catalog
from flows.types import Attachment, Reply, SayKind, Text

# aiogram builds Response[...] pydantic models per call; pydantic drops its cached copies at
# garbage collection and rebuilds them (measured at about 8% of the bot's CPU under load).
# Holding them for the process's lifetime keeps them built once.
_RESPONSE_TYPES = (Response[Message], Response[bool], Response[Message | bool])


__all__ = ["CHANNEL", "TelegramRenderer"]

log = logging.getLogger(__name__)
MAX_MESSAGE = 4096  # characters Telegram accepts in one message
Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


class TelegramRenderer:
    """Sends, edits and deletes messages for the engine's replies."""

    def __init__(self, bot: Bot, throttle: SendThrottle, metrics: Metrics, secret: bytes, *,
                 catalog: Catalog | None = None) -> None:
        self._bot = bot
        self._throttle = throttle
        self._metrics = metrics
        self._secret = secret
        self._catalog = catalog or _default_catalog()  # the renderer's own words
        # No caller uses a call's result: the project's JSON session does not build one.
        session = bot.session
        self._run: Callable[[TelegramMethod[Any]], Awaitable[object]] = (
            partial(session.send, bot) if isinstance(session, JsonAiohttpSession) else bot)

    async def deliver(self, chat_id: int, replies: Sequence[Reply], view: ChatView, *,
                      incoming: int | None = None, edit: int | None = None) -> None:
        """Render ``replies`` in order. ``incoming`` is the member's message (deleted on
        request); ``edit`` a bot message that the first reply replaces when it is a page with
        buttons (a reply without buttons first, such as a summary line, means a new view:
        everything is sent anew). Raises the Bot API's errors,
        :class:`~aiogram.exceptions.TelegramForbiddenError` included."""
        for index, reply in enumerate(replies):
            asks_later = any(r.kind is SayKind.ASK_CONTACT for r in replies[index + 1:])
            if reply.kind is SayKind.DELETE_MEMBER_MESSAGE and incoming is not None:
                await self._delete(chat_id, incoming)
            if reply.kind is SayKind.ASK_CONTACT:
                await self._send(chat_id, reply.text, contact_keyboard(reply.buttons))
                view.contact_keyboard = True
            elif reply.attachment is not None:
                await self._send_file(chat_id, reply, reply.attachment,
                                      self._markup(chat_id, reply, view, asks_later))
            elif index == 0 and edit is not None and reply.buttons:
                await self._edit_or_send(chat_id, edit, reply, view, asks_later)
            else:
                await self._send(chat_id, reply.text, self._markup(chat_id, reply, view,
                                                                   asks_later))

    async def deliver_or_block(self, chat_id: int, replies: Sequence[Reply], view: ChatView,
                               blocked: BlockedChats, *, incoming: int | None = None,
                               edit: int | None = None) -> bool:
        """:meth:`deliver`, the path of every reply to a member (the channel's and the
        outbox's): false, and the chat marked in ``blocked``, when the member blocked the bot;
        the Bot API's other errors are raised."""
        try:
            await self.deliver(chat_id, replies, view, incoming=incoming, edit=edit)
        except TelegramForbiddenError:
            await blocked.mark(chat_id, view)
            return False
        return True

    async def say(self, chat_id: int, text: str) -> None:
        """One plain message (the apology after a fault)."""
        await self._send(chat_id, text, None)

    async def answer_callback(self, chat_id: int, query_id: str) -> None:
        """Stop the button's spinner. Not a chat message: paced apart from the chat's replies."""
        await self.call(f"{chat_id}:actions", AnswerCallbackQuery(callback_query_id=query_id))

    def _markup(self, chat_id: int, reply: Reply, view: ChatView,
                asks_later: bool) -> Markup | None:
        if reply.buttons:
            return inline_keyboard(self._secret, chat_id, reply.buttons)
        if view.contact_keyboard and not asks_later:
            view.contact_keyboard = False
            return ReplyKeyboardRemove()
        return None

    async def _send(self, chat_id: int, text: str, markup: Markup | None) -> None:
        if not text.strip():
            return  # Telegram refuses empty messages; the engine never means to send one
        parts = split_text(text, MAX_MESSAGE)
        for number, part in enumerate(parts, start=1):
            await self.call(chat_id, SendMessage(
                chat_id=chat_id, text=part, reply_markup=markup if number == len(parts) else None))
            self._metrics.replies.labels(CHANNEL).inc()

    async def _send_file(self, chat_id: int, reply: Reply, attachment: Attachment,
                         markup: Markup | None) -> None:
        """Upload the reply's file with its text as the caption (a text too long for one
        goes first as a message); a failed upload is logged, counted and told the member,
        with the reply's buttons, so a press can ask for the file again."""
        caption = reply.text
        if not caption_fits(caption):
            await self._send(chat_id, caption, None)
            caption = ""
        method = file_method(chat_id, attachment, reply.kind, caption, markup)
        try:
            await self.call(chat_id, method)
        except UPLOAD_FAILURES as exc:
            self._metrics.errors.labels(CHANNEL).inc()
            log.warning("could not send a file to a member: %s", describe(exc))
            text = self._catalog.render(Text(FILE_NOT_SENT), reply.locale or DEFAULT_LOCALE)
            await self._send(chat_id, text, markup)
            return
        self._metrics.replies.labels(CHANNEL).inc()

    async def _edit_or_send(self, chat_id: int, message_id: int, reply: Reply, view: ChatView,
                            asks_later: bool) -> None:
        markup = self._markup(chat_id, reply, view, asks_later)
        if not isinstance(markup, InlineKeyboardMarkup | None) or len(reply.text) > MAX_MESSAGE:
            await self._send(chat_id, reply.text, markup)
            return
        try:
            await self.call(chat_id, EditMessageText(chat_id=chat_id, message_id=message_id,
                                                      text=reply.text, reply_markup=markup))
        except TelegramBadRequest as exc:
            if "not modified" in exc.message:
                return
            log.info("could not edit a message, sending a new one: %s", exc.message)
            await self._send(chat_id, reply.text, markup)
            return
        self._metrics.replies.labels(CHANNEL).inc()

    async def _delete(self, chat_id: int, message_id: int) -> None:
        try:
            await self.call(f"{chat_id}:actions",
                             DeleteMessage(chat_id=chat_id, message_id=message_id))
        except TelegramBadRequest as exc:  # too old, or already deleted by the member
            log.warning("could not delete a member's message: %s", exc.message)

    async def call(self, lane: int | str, method: TelegramMethod[Any]) -> None:
        """Run one Bot API method through the throttle; ``lane`` is the chat it paces."""
        await self._throttle.send(lane, partial(self._run, method))


@cache
def _default_catalog() -> Catalog:
    return Catalog()

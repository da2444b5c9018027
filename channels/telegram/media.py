"""A reply's file as a Bot API call: ``sendPhoto`` for a picture, ``sendDocument`` for anything
else, uploaded as multipart form data from the reply's bytes (nothing touches the disk).

Telegram allows a caption of at most 1,024 characters; a longer text goes first as a message of
its own (the renderer's part) and the file then carries no caption.
"""

from __future__ import annotations

from aiogram.exceptions import TelegramBadRequest, TelegramNetworkError, TelegramServerError
from aiogram.methods import SendDocument, SendPhoto
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardMarkup,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from flows.i18n import N_
from flows.types import Attachment, SayKind

__all__ = ["FILE_NOT_SENT", "MAX_CAPTION", "UPLOAD_FAILURES", "caption_fits", "file_method"]

MAX_CAPTION = 1024  # characters Telegram accepts as a file's caption
FILE_NOT_SENT = N_("Sorry, the file could not be sent just now. Please try again in a few "
                   "minutes.")
# A refused or broken upload (400 such as a wrong file, 413 too large, the network, Telegram's
# own 5xx): the member is told the file did not come. A 429 is retried by the throttle, a 403
# (the member blocked the bot) is the channel's to record.
UPLOAD_FAILURES = (TelegramBadRequest, TelegramNetworkError, TelegramServerError)

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


def caption_fits(text: str) -> bool:
    """Whether ``text`` can go as a file's caption."""
    return len(text) <= MAX_CAPTION


def file_method(chat_id: int, attachment: Attachment, kind: SayKind, caption: str,
                markup: Markup | None) -> SendPhoto | SendDocument:
    """The upload of ``attachment`` to ``chat_id``: a photo when ``kind`` is ``PHOTO``, else a
    document; ``caption`` empty for none."""
    upload = BufferedInputFile(attachment.content, attachment.filename)
    text = caption if caption.strip() else None
    if kind is SayKind.PHOTO:
        return SendPhoto(chat_id=chat_id, photo=upload, caption=text, reply_markup=markup)
    return SendDocument(chat_id=chat_id, document=upload, caption=text, reply_markup=markup)

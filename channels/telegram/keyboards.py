"""Telegram markup for engine replies: signed inline buttons, the share-contact keyboard and the
command menu in both languages.

Callback data is ``"1" + data + "|" + tag``: a format version, the engine's button data, and
the first characters of an HMAC over the chat id and the data, so that a button cannot be
forged or carried over from another chat. Telegram allows at most 64 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from functools import cache

from aiogram.types import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from flows.flow import Command
from flows.i18n import Catalog
from flows.routes import LISTED
from flows.types import Button, Text

__all__ = ["MAX_CALLBACK_BYTES", "commands", "contact_keyboard", "inline_keyboard", "sign",
           "verify"]

VERSION = "1"
TAG_LENGTH = 6
MAX_CALLBACK_BYTES = 64
CONTACT_DATA = "contact"  # the engine's share-my-number button (registration)


def _tag(secret: bytes, chat_id: int | str, data: str) -> str:
    digest = hmac.new(secret, f"{chat_id}:{data}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:TAG_LENGTH]


def sign(secret: bytes, chat_id: int | str, data: str) -> str:
    """Callback data for a button of ``chat_id`` carrying ``data``."""
    signed = f"{VERSION}{data}|{_tag(secret, chat_id, data)}"
    if len(signed.encode()) > MAX_CALLBACK_BYTES:
        raise ValueError(f"button data of {len(data.encode())} bytes is too long for Telegram")
    return signed


def verify(secret: bytes, chat_id: int | str, signed: str | None) -> str | None:
    """The engine's data of a pressed button, or ``None`` when stale, forged or malformed."""
    if not signed or not signed.startswith(VERSION) or "|" not in signed:
        return None
    data, _, tag = signed[len(VERSION):].rpartition("|")
    expected = _tag(secret, chat_id, data)
    return data if hmac.compare_digest(tag.encode(), expected.encode()) else None


def inline_keyboard(secret: bytes, chat_id: int | str,
                    rows: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup:
    """The reply's buttons, row by row, with signed callback data."""
    return InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=b.label, callback_data=sign(secret, chat_id, b.data))
         for b in row] for row in rows])


def contact_keyboard(rows: Sequence[Sequence[Button]]) -> ReplyKeyboardMarkup:
    """A one-time reply keyboard whose share-contact button sends the member's own number."""
    keys = [[KeyboardButton(text=b.label, request_contact=b.data == CONTACT_DATA) for b in row]
            for row in rows]
    return ReplyKeyboardMarkup(keyboard=keys or [[KeyboardButton(text="📱",
                                                                 request_contact=True)]],
                               one_time_keyboard=True, resize_keyboard=True)


def commands(language: str, listed: Sequence[Command] = LISTED,
             catalog: Catalog | None = None) -> list[BotCommand]:
    """The command menu Telegram shows on "/" in ``"id"`` (also the default) or ``"en"``: the
    commands the flows list (:data:`flows.routes.LISTED`), by their Indonesian names, each
    described by its summary in the language."""
    locale = "en" if language == "en" else "id"
    catalog = catalog or _catalog()
    return [BotCommand(command=c.name, description=catalog.render(Text(c.summary), locale))
            for c in listed]


@cache
def _catalog() -> Catalog:
    return Catalog()

"""Chats, messages and update builders of the fake Bot API server.

Message ids count per chat, shared by incoming and outgoing messages, as Telegram does in a
private chat; a forum topic's thread id is the id of the service message that created it. Every
message is remembered so edits, deletes and callback queries can refer to it.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

DEFAULT_BOT_ID = 100_000


def _now() -> int:
    return int(time.time())


class Chats:
    """The chats the fake has seen and every message in them."""

    def __init__(self) -> None:
        self.bot_user: dict[str, Any] = bot_user(DEFAULT_BOT_ID)
        self._chats: dict[str, dict[str, Any]] = {}
        self._counters: dict[str, itertools.count[int]] = {}
        self._messages: dict[tuple[str, int], dict[str, Any]] = {}

    def chat(self, chat_id: int | str, chat_type: str | None = None) -> dict[str, Any]:
        """The Chat object for ``chat_id``; a type given here sticks to the chat."""
        key = str(chat_id)
        known = self._chats.get(key)
        if known is not None and chat_type in (None, known["type"]):
            return dict(known)
        chat = _chat_object(chat_id, chat_type or _default_type(chat_id))
        self._chats[key] = chat
        return dict(chat)

    def next_message_id(self, chat_id: int | str) -> int:
        """A fresh message id in the chat."""
        counter = self._counters.setdefault(str(chat_id), itertools.count(1))
        return next(counter)

    def new_message(
        self, chat_id: int | str, sender: dict[str, Any], **fields: Any
    ) -> dict[str, Any]:
        """A message in the chat, remembered; fields that are ``None`` are left out."""
        message: dict[str, Any] = {
            "message_id": fields.pop("message_id", None) or self.next_message_id(chat_id),
            "date": _now(),
            "chat": self.chat(chat_id),
            "from": sender,
        }
        message.update({k: v for k, v in fields.items() if v is not None})
        self.remember(message)
        return message

    def remember(self, message: dict[str, Any]) -> None:
        """Store (or replace) a message under its chat and id."""
        self._messages[(str(message["chat"]["id"]), int(message["message_id"]))] = message

    def message(self, chat_id: int | str, message_id: int) -> dict[str, Any] | None:
        """A message seen earlier, or ``None``."""
        return self._messages.get((str(chat_id), int(message_id)))

    def forget(self, chat_id: int | str, message_id: int) -> dict[str, Any] | None:
        """Drop a message (deleted); returns it when it existed."""
        return self._messages.pop((str(chat_id), int(message_id)), None)


def bot_user(user_id: int) -> dict[str, Any]:
    """The bot's own User object."""
    return {"id": user_id, "is_bot": True, "first_name": "Fake Bot", "username": "fake_bot"}


def member_user(user_id: int, language_code: str | None) -> dict[str, Any]:
    """A human User object."""
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
    if language_code:
        user["language_code"] = language_code
    return user


def _default_type(chat_id: int | str) -> str:
    text = str(chat_id)
    if text.startswith("-100"):
        return "supergroup"
    return "group" if text.startswith("-") else "private"


def _chat_object(chat_id: int | str, chat_type: str) -> dict[str, Any]:
    chat: dict[str, Any] = {"id": int(chat_id), "type": chat_type}
    if chat_type == "private":
        chat["first_name"] = f"User{chat_id}"
    else:
        chat["title"] = f"Chat {chat_id}"
    if chat_type == "supergroup":
        chat["is_forum"] = True
    return chat


class UpdateFactory:
    """Builders of Update dicts with auto-incrementing update ids."""

    def __init__(self, chats: Chats) -> None:
        self.chats = chats
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(1)

    def next_update_id(self) -> int:
        """A fresh update id."""
        return next(self._update_ids)

    def message_update(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        language_code: str | None = "id",
        message_id: int | None = None,
        chat_type: str = "private",
        thread_id: int | None = None,
        is_topic: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A text message from a person (``extra`` adds message fields, e.g. ``photo``)."""
        self.chats.chat(chat_id, chat_type)
        sender = member_user(user_id if user_id is not None else chat_id, language_code)
        message = self.chats.new_message(
            chat_id,
            sender,
            message_id=message_id,
            text=text or None,
            entities=_command_entities(text),
            message_thread_id=thread_id,
            is_topic_message=True if is_topic else None,
            **(extra or {}),
        )
        return {"update_id": self.next_update_id(), "message": message}

    def contact_update(
        self,
        chat_id: int,
        phone: str,
        *,
        contact_user_id: int | None,
        user_id: int | None = None,
        language_code: str | None = "id",
    ) -> dict[str, Any]:
        """A shared contact (``contact_user_id`` equal to the sender's id: their own number)."""
        sender = member_user(user_id if user_id is not None else chat_id, language_code)
        contact: dict[str, Any] = {"phone_number": phone, "first_name": sender["first_name"]}
        if contact_user_id is not None:
            contact["user_id"] = contact_user_id
        message = self.chats.new_message(chat_id, sender, contact=contact)
        return {"update_id": self.next_update_id(), "message": message}

    def callback_update(
        self,
        chat_id: int,
        data: str,
        *,
        message_id: int,
        user_id: int | None = None,
        language_code: str | None = "id",
    ) -> dict[str, Any]:
        """A press on an inline button of message ``message_id``."""
        sender = member_user(user_id if user_id is not None else chat_id, language_code)
        message = self.chats.message(chat_id, message_id) or {
            "message_id": message_id,
            "date": _now(),
            "chat": self.chats.chat(chat_id),
            "from": self.chats.bot_user,
            "text": "",
        }
        query = {
            "id": f"q{next(self._query_ids)}",
            "from": sender,
            "chat_instance": f"ci{chat_id}",
            "message": message,
            "data": data,
        }
        return {"update_id": self.next_update_id(), "callback_query": query}


def _command_entities(text: str) -> list[dict[str, Any]] | None:
    if not text.startswith("/"):
        return None
    command = text.split(maxsplit=1)[0]
    return [{"type": "bot_command", "offset": 0, "length": len(command)}]

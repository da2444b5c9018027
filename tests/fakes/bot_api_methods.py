"""The Bot API methods the fake server answers: messages, keyboards, commands, forum topics.

Each handler takes the decoded parameters and returns the ``result`` Telegram would send, or
raises ``ApiError`` with Telegram's own wording. Update delivery (``getUpdates``, webhooks) lives
in ``bot_api.py``. With ``strict`` on, editing or deleting a message the fake never saw, and an
edit that changes nothing, fail as they do on Telegram.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.bot_api_updates import Chats, member_user
from tests.fakes.bot_api_wire import ApiError, UploadedFile, bad_request

Handler = Callable[[dict[str, Any]], Any]
DEFAULT_ICON_COLOR = 0x6FB9F0
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_PHOTO = 10 * 1024 * 1024  # bytes of a photo upload
MAX_DOCUMENT = 50 * 1024 * 1024  # bytes of any other upload
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8", b"RIFF")  # PNG JPEG GIF WebP
TOO_LARGE = "Request Entity Too Large"
MAX_CALLBACK_DATA = 64
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)


@dataclass
class ForumTopicState:
    """A forum topic as the fake keeps it."""

    message_thread_id: int
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None = None
    closed: bool = False


def _require(params: dict[str, Any], name: str, description: str) -> Any:
    value = params.get(name)
    if value in (None, ""):
        raise bad_request(description)
    return value


def check_markup(markup: Any) -> None:
    """Telegram rejects callback data longer than 64 bytes (or empty)."""
    if not isinstance(markup, dict):
        return
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 0 < len(str(data).encode()) <= MAX_CALLBACK_DATA:
                raise bad_request("BUTTON_DATA_INVALID")


def _inline_only(markup: Any) -> Any:
    """A Message only ever carries an inline keyboard."""
    return markup if isinstance(markup, dict) and "inline_keyboard" in markup else None


def _file_id(value: Any, kind: str) -> str:
    if isinstance(value, UploadedFile):
        return f"{kind}-{value.filename}-{len(value.content)}"
    return str(value)


def _check_upload(params: dict[str, Any], value: Any, *, photo: bool) -> None:
    """What Telegram refuses of a file message: a caption over 1,024 characters, an upload
    over the size limit (413), a photo that is no picture."""
    if len(str(params.get("caption") or "")) > MAX_CAPTION:
        raise bad_request("message caption is too long")
    if not isinstance(value, UploadedFile):
        return
    if len(value.content) > (MAX_PHOTO if photo else MAX_DOCUMENT):
        raise ApiError(413, TOO_LARGE)
    if photo and not value.content.startswith(IMAGE_MAGIC):
        raise bad_request("IMAGE_PROCESS_FAILED")


class Methods:
    """Handlers by method name (the name as Telegram documents it)."""

    def __init__(self, chats: Chats, *, strict: bool = True) -> None:
        self.chats = chats
        self.strict = strict
        self.topics: dict[str, dict[int, ForumTopicState]] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.members: dict[tuple[str, int], str] = {}
        self.handlers: dict[str, Handler] = {
            "getMe": self.get_me,
            "sendMessage": self.send_message,
            "editMessageText": self.edit_message_text,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "deleteMessage": self.delete_message,
            "deleteMessages": lambda _params: True,
            "sendPhoto": self.send_photo,
            "sendDocument": self.send_document,
            "copyMessage": self.copy_message,
            "sendChatAction": lambda _params: True,
            "answerCallbackQuery": self.answer_callback_query,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "getChatMember": self.get_chat_member,
            "createForumTopic": self.create_forum_topic,
            "editForumTopic": self.edit_forum_topic,
            "closeForumTopic": lambda params: self._set_closed(params, closed=True),
            "reopenForumTopic": lambda params: self._set_closed(params, closed=False),
            "deleteForumTopic": self.delete_forum_topic,
        }
        for name in ("setMyDescription", "setMyShortDescription", "setChatMenuButton", "logOut"):
            self.handlers[name] = lambda _params: True

    # --- messages -------------------------------------------------------------------------

    def get_me(self, _params: dict[str, Any]) -> dict[str, Any]:
        """The bot itself."""
        return {
            **self.chats.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        """A text message from the bot."""
        chat_id = _require(params, "chat_id", "chat_id is empty")
        text = str(_require(params, "text", "message text is empty"))
        if len(text) > MAX_TEXT:
            raise bad_request("message is too long")
        check_markup(params.get("reply_markup"))
        return self._bot_message(chat_id, params, text=text)

    def _bot_message(self, chat_id: Any, params: dict[str, Any], **fields: Any) -> dict[str, Any]:
        thread_id = params.get("message_thread_id")
        return self.chats.new_message(
            chat_id,
            self.chats.bot_user,
            reply_markup=_inline_only(params.get("reply_markup")),
            message_thread_id=thread_id,
            is_topic_message=True if thread_id is not None else None,
            **fields,
        )

    def edit_message_text(self, params: dict[str, Any]) -> Any:
        """New text (and inline keyboard: left out, it is removed) for a bot message."""
        text = str(_require(params, "text", "message text is empty"))
        check_markup(params.get("reply_markup"))
        return self._edit(params, text=text, reply_markup=_inline_only(params.get("reply_markup")))

    def edit_message_reply_markup(self, params: dict[str, Any]) -> Any:
        """A new inline keyboard for a bot message."""
        check_markup(params.get("reply_markup"))
        return self._edit(params, reply_markup=_inline_only(params.get("reply_markup")))

    def _edit(self, params: dict[str, Any], **changes: Any) -> Any:
        if params.get("inline_message_id"):
            return True
        chat_id = _require(params, "chat_id", "chat_id is empty")
        message_id = int(_require(params, "message_id", "message identifier is not specified"))
        message = self.chats.message(chat_id, message_id)
        if message is None:
            if self.strict:
                raise bad_request("message to edit not found")
            message = self.chats.new_message(chat_id, self.chats.bot_user, message_id=message_id)
        edited = {k: v for k, v in {**message, **changes}.items() if v is not None}
        if self.strict and all(edited.get(k) == message.get(k) for k in changes):
            raise bad_request(NOT_MODIFIED)
        edited["edit_date"] = edited["date"] + 1
        self.chats.remember(edited)
        return edited

    def delete_message(self, params: dict[str, Any]) -> bool:
        """Delete any message in the chat."""
        chat_id = _require(params, "chat_id", "chat_id is empty")
        message_id = int(_require(params, "message_id", "message identifier is not specified"))
        if self.chats.forget(chat_id, message_id) is None and self.strict:
            raise bad_request("message to delete not found")
        return True

    def send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        """A photo (file id or upload) with an optional caption."""
        chat_id = _require(params, "chat_id", "chat_id is empty")
        raw = _require(params, "photo", "there is no photo in the request")
        _check_upload(params, raw, photo=True)
        check_markup(params.get("reply_markup"))
        photo = _file_id(raw, "photo")
        size = {"file_id": photo, "file_unique_id": photo[:32], "width": 800, "height": 600}
        return self._bot_message(chat_id, params, photo=[size], caption=params.get("caption"))

    def send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        """A document (file id or upload) with an optional caption."""
        chat_id = _require(params, "chat_id", "chat_id is empty")
        raw = _require(params, "document", "there is no document in the request")
        _check_upload(params, raw, photo=False)
        check_markup(params.get("reply_markup"))
        document: dict[str, Any] = {"file_id": _file_id(raw, "doc"), "file_unique_id": "doc"}
        if isinstance(raw, UploadedFile):
            document["file_name"] = raw.filename
        return self._bot_message(chat_id, params, document=document, caption=params.get("caption"))

    def copy_message(self, params: dict[str, Any]) -> dict[str, Any]:
        """A copy of a message the fake has seen, into another chat (or topic)."""
        chat_id = _require(params, "chat_id", "chat_id is empty")
        source = self.chats.message(
            _require(params, "from_chat_id", "chat_id is empty"),
            int(_require(params, "message_id", "message identifier is not specified")),
        )
        if source is None:
            raise bad_request("message to copy not found")
        kept = {k: source[k] for k in ("text", "photo", "document", "caption") if k in source}
        if "caption" in params:
            kept["caption"] = params["caption"]
        return {"message_id": self._bot_message(chat_id, params, **kept)["message_id"]}

    def answer_callback_query(self, params: dict[str, Any]) -> bool:
        """Acknowledge a button press."""
        _require(params, "callback_query_id", "query is too old and response timeout expired")
        return True

    # --- commands and members -------------------------------------------------------------

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return str(scope.get("type", "default")), str(params.get("language_code") or "")

    def set_my_commands(self, params: dict[str, Any]) -> bool:
        """Store the command menu for a scope and language."""
        commands = _require(params, "commands", "commands are empty")
        self.commands[self._commands_key(params)] = list(commands)
        return True

    def get_my_commands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The stored command menu for a scope and language."""
        return self.commands.get(self._commands_key(params), [])

    def delete_my_commands(self, params: dict[str, Any]) -> bool:
        """Forget the command menu for a scope and language."""
        self.commands.pop(self._commands_key(params), None)
        return True

    def get_chat_member(self, params: dict[str, Any]) -> dict[str, Any]:
        """A member's status (``member`` unless set; the bot is an administrator)."""
        chat_id = _require(params, "chat_id", "chat_id is empty")
        user_id = int(_require(params, "user_id", "user not found"))
        if user_id == self.chats.bot_user["id"]:
            return _administrator(self.chats.bot_user)
        status = self.members.get((str(chat_id), user_id), "member")
        user = member_user(user_id, None)
        if status == "administrator":
            return _administrator(user)
        if status == "creator":
            return {"status": "creator", "user": user, "is_anonymous": False}
        return {"status": status, "user": user}

    # --- forum topics ---------------------------------------------------------------------

    def create_forum_topic(self, params: dict[str, Any]) -> dict[str, Any]:
        """A new topic; its thread id is the id of the service message that opens it."""
        chat_id = _require(params, "chat_id", "chat_id is empty")
        name = str(_require(params, "name", "TOPIC_TITLE_EMPTY"))
        if self.chats.chat(chat_id)["type"] != "supergroup":
            raise bad_request("the chat is not a forum")
        if len(name) > 128:
            raise bad_request("TOPIC_TITLE_TOO_LONG")
        topic = ForumTopicState(
            message_thread_id=self.chats.next_message_id(chat_id),
            name=name,
            icon_color=int(params.get("icon_color") or DEFAULT_ICON_COLOR),
            icon_custom_emoji_id=params.get("icon_custom_emoji_id"),
        )
        self.topics.setdefault(str(chat_id), {})[topic.message_thread_id] = topic
        return _topic_object(topic)

    def _topic(self, params: dict[str, Any]) -> ForumTopicState:
        chat_id = _require(params, "chat_id", "chat_id is empty")
        thread_id = int(_require(params, "message_thread_id", "message thread not found"))
        topic = self.topics.get(str(chat_id), {}).get(thread_id)
        if topic is None:
            raise bad_request("message thread not found")
        return topic

    def edit_forum_topic(self, params: dict[str, Any]) -> bool:
        """Rename a topic or change its icon."""
        topic = self._topic(params)
        name = params.get("name") or topic.name
        emoji = params.get("icon_custom_emoji_id", topic.icon_custom_emoji_id)
        if (name, emoji) == (topic.name, topic.icon_custom_emoji_id):
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic.name, topic.icon_custom_emoji_id = name, emoji
        return True

    def _set_closed(self, params: dict[str, Any], *, closed: bool) -> bool:
        topic = self._topic(params)
        if topic.closed == closed:
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic.closed = closed
        return True

    def delete_forum_topic(self, params: dict[str, Any]) -> bool:
        """Delete a topic with its messages."""
        topic = self._topic(params)
        del self.topics[str(params["chat_id"])][topic.message_thread_id]
        return True


def _topic_object(topic: ForumTopicState) -> dict[str, Any]:
    result: dict[str, Any] = {
        "message_thread_id": topic.message_thread_id,
        "name": topic.name,
        "icon_color": topic.icon_color,
    }
    if topic.icon_custom_emoji_id:
        result["icon_custom_emoji_id"] = topic.icon_custom_emoji_id
    return result


def _administrator(user: dict[str, Any]) -> dict[str, Any]:
    rights = [
        "can_manage_chat",
        "can_delete_messages",
        "can_manage_video_chats",
        "can_restrict_members",
        "can_change_info",
        "can_invite_users",
        "can_post_stories",
        "can_edit_stories",
        "can_delete_stories",
        "can_pin_messages",
        "can_manage_topics",
        "can_send_welcome_messages",
    ]
    return {
        "status": "administrator",
        "user": user,
        "can_be_edited": False,
        "is_anonymous": False,
        "can_promote_members": False,
        **dict.fromkeys(rights, True),
    }


def unknown_method() -> ApiError:
    """Telegram's answer to a method it does not have."""
    return ApiError(404, "Not Found: method not found")

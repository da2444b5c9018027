"""A fake Telegram Bot API server on loopback, for end-to-end tests with the real aiogram client.

    async with FakeBotApi() as fake:
        session = AiohttpSession(api=TelegramAPIServer.from_base(fake.api_base))
        async with Bot("42:TEST", session=session) as bot:
            await bot.send_message(7, "halo")
        assert fake.sent_to(7) == ["halo"]

It records every call, serves queued updates by ``getUpdates`` (offset and capped long polling)
or posts them to the webhook registered by ``setWebhook`` with the secret header, and injects
faults: 429 with ``retry_after`` for a method or a chat, 403 for a chat that blocked the bot,
any status for a method. Uploads (``sendDocument``, ``sendPhoto``) are read from the multipart
body and kept with their bytes (:meth:`FakeBotApi.files_to`); Telegram's refusals of them are
enforced (a caption over 1,024 characters, a photo that is no picture, 413 over the size
limits). :meth:`FakeBotApi.hold_after` makes it stop answering mid-pass: later requests wait
unrecorded until :meth:`FakeBotApi.release`, and one whose client went away meanwhile is
dropped, never recorded, as Telegram never got it (``bot_api_hold.py`` says what it models).
Method semantics live in ``bot_api_methods.py``, the wire format in ``bot_api_wire.py``,
update builders in ``bot_api_updates.py``, delivery in ``bot_api_delivery.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
from aiohttp import web

from tests.fakes.bot_api_delivery import (
    REGISTERED,
    SECRET_HEADER,
    WEBHOOK_METHODS,
    Delivery,
)
from tests.fakes.bot_api_hold import Hold
from tests.fakes.bot_api_methods import ForumTopicState, Handler, Methods, unknown_method
from tests.fakes.bot_api_updates import Chats, UpdateFactory, bot_user
from tests.fakes.bot_api_wire import (
    ApiError,
    UploadedFile,
    bot_id,
    check_token,
    decode_request,
    failed,
    ok,
    too_many_requests,
)
from tests.fakes.loopback import LoopbackServer

__all__ = [
    "SECRET_HEADER",
    "ApiError",
    "CallRecord",
    "FakeBotApi",
    "ForumTopicState",
    "SentFile",
    "UploadedFile",
]

BLOCKED: Final = "Forbidden: bot was blocked by the user"
MAX_BODY: Final = 64 * 1024 * 1024  # a request the fake reads: a 50 MB document and its fields
SEND_METHODS: Final = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "copyMessage",
        "editMessageText",
        "editMessageReplyMarkup",
    }
)
TEXT_METHODS: Final = ("sendMessage", "editMessageText")
FILE_METHODS: Final = {"sendDocument": "document", "sendPhoto": "photo"}  # -> the file's field
MARKUP_METHODS: Final = frozenset(
    {"sendMessage", "editMessageText", "editMessageReplyMarkup", "sendPhoto", "sendDocument"}
)


@dataclass
class CallRecord:
    """One call as the fake received it: ``at`` is ``time.monotonic()`` on arrival; ``status``
    is the HTTP status answered (200 on success) and ``result`` the result sent back."""

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200
    result: Any = None

    @property
    def ok(self) -> bool:
        """Whether Telegram would have accepted the call."""
        return self.status == 200

    def targets(self, chat_id: int | str) -> bool:
        """Whether the call is addressed to ``chat_id``."""
        return str(self.params.get("chat_id")) == str(chat_id)


@dataclass(frozen=True)
class SentFile:
    """A file the bot sent to a chat and Telegram accepted: ``method`` is ``sendDocument`` or
    ``sendPhoto``, ``caption`` ``None`` when it had none, ``reply_markup`` as sent."""

    method: str
    filename: str
    content: bytes
    caption: str | None
    reply_markup: dict[str, Any] | None


@dataclass
class _Fault:
    error: ApiError
    times: int | None  # None: until cleared
    chat_id: str | None = None


class FakeBotApi(LoopbackServer):
    """The fake server. ``poll_cap`` bounds a long poll's wait (seconds) so tests stay fast;
    ``strict`` makes edits and deletes of unknown messages, and no-op edits, fail."""

    def __init__(self, *, poll_cap: float = 0.5, strict: bool = True) -> None:
        self.chats = Chats()
        self.methods = Methods(self.chats, strict=strict)
        self.updates = UpdateFactory(self.chats)
        self._records: list[CallRecord] = []
        self.delivery = Delivery(self.updates, poll_cap)
        self.hold = Hold()
        self._faults: dict[str, list[_Fault]] = {}
        self._blocked: set[str] = set()
        self._custom: dict[str, Handler] = {}
        self._client: aiohttp.ClientSession | None = None
        # Update builders (``bot_api_updates.UpdateFactory``): a text message, a press on an
        # inline button of the bot's message ``message_id``, a shared contact.
        self.message_update = self.updates.message_update
        self.callback_update = self.updates.callback_update
        self.contact_update = self.updates.contact_update

    # --- lifecycle ------------------------------------------------------------------------

    def app(self) -> web.Application:
        """Every method under ``/bot<token>/``."""
        app = web.Application(client_max_size=MAX_BODY)  # uploads up to Telegram's limits
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        return app

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        await super().start()
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def close(self) -> None:
        """Stop serving; long polls in progress return at once, held requests are served."""
        self.delivery.close()
        self.hold.release()
        if self._client is not None:
            await self._client.close()
        await super().close()

    @property
    def api_base(self) -> str:
        """Base URL for ``TelegramAPIServer.from_base``."""
        return self.url()

    # --- serving --------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        token, name = request.match_info["token"], request.match_info["method"]
        if not await self.hold.admit(request, self._canonical(name)):
            return failed(ApiError(502, "Bad Gateway"))  # nobody reads it: the client is gone
        record = CallRecord(self._canonical(name), {}, time.monotonic())
        self._records.append(record)
        try:
            check_token(token)
            record.params = await decode_request(request)
            record.result = await self._execute(token, record.method, record.params)
        except ApiError as error:
            record.status = error.status
            return failed(error)
        except Exception as exc:  # a bug in the fake or a test's handler: answer like Telegram
            record.status = 500
            return failed(ApiError(500, f"Internal Server Error: {exc!r}"))
        return ok(record.result)

    def _canonical(self, name: str) -> str:
        known = (*self.methods.handlers, *self._custom, "getUpdates", *WEBHOOK_METHODS)
        return next((m for m in known if m.lower() == name.lower()), name)

    async def _execute(self, token: str, method: str, params: dict[str, Any]) -> Any:
        self.chats.bot_user = bot_user(bot_id(token))
        self._check_faults(method, params)
        if method in self._custom:
            return self._custom[method](params)
        if method == "getUpdates":
            return await self.delivery.get_updates(params)
        if method in WEBHOOK_METHODS:
            return self.delivery.webhook_method(token, method, params)
        handler = self.methods.handlers.get(method)
        if handler is None:
            raise unknown_method()
        return handler(params)

    def _check_faults(self, method: str, params: dict[str, Any]) -> None:
        chat = str(params["chat_id"]) if "chat_id" in params else None
        if chat is not None and chat in self._blocked:
            raise ApiError(403, BLOCKED)
        for key in (method, f"chat:{chat}"):
            for fault in self._faults.get(key, []):
                if fault.chat_id not in (None, chat) or fault.times == 0:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                raise fault.error

    # --- records --------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[CallRecord]:
        """Every call received (failed ones too), oldest first; only ``method`` when given."""
        return [r for r in self._records if method is None or r.method == method]

    def clear_calls(self) -> None:
        """Forget the calls recorded so far."""
        self._records.clear()

    def sent_to(self, chat_id: int | str) -> list[str]:
        """Texts of accepted ``sendMessage`` and ``editMessageText`` calls to a chat, in order."""
        return [
            str(r.params["text"])
            for r in self._records
            if r.ok and r.method in TEXT_METHODS and r.targets(chat_id)
        ]

    def files_to(self, chat_id: int | str) -> list[SentFile]:
        """Uploads of accepted ``sendDocument`` and ``sendPhoto`` calls to a chat, in order
        (a file sent by id, not uploaded, is left out)."""
        found: list[SentFile] = []
        for record in self._records:
            if not (record.ok and record.method in FILE_METHODS and record.targets(chat_id)):
                continue
            upload = record.params.get(FILE_METHODS[record.method])
            markup = record.params.get("reply_markup")
            if isinstance(upload, UploadedFile):
                found.append(SentFile(record.method, upload.filename, upload.content,
                                      record.params.get("caption"),
                                      markup if isinstance(markup, dict) else None))
        return found

    def last_markup(self, chat_id: int | str) -> dict[str, Any] | None:
        """``reply_markup`` of the last accepted message call to a chat (``None``: it had none)."""
        for record in reversed(self._records):
            if record.ok and record.method in MARKUP_METHODS and record.targets(chat_id):
                markup = record.params.get("reply_markup")
                return markup if isinstance(markup, dict) else None
        return None

    def topic_messages(self, chat_id: int | str, thread_id: int) -> list[str]:
        """Texts of accepted ``sendMessage``/``editMessageText`` calls in one forum topic."""
        return [
            str(r.params["text"])
            for r in self._records
            if r.ok
            and r.method in TEXT_METHODS
            and r.targets(chat_id)
            and isinstance(r.result, dict)
            and r.result.get("message_thread_id") == thread_id
        ]

    def topics(self, chat_id: int | str) -> dict[int, ForumTopicState]:
        """The forum topics of a chat by thread id (name, icon, closed)."""
        return dict(self.methods.topics.get(str(chat_id), {}))

    def send_times(self, chat_id: int | str | None = None) -> list[float]:
        """Monotonic arrival times of accepted sends and edits (``SEND_METHODS``)."""
        return [
            r.at
            for r in self._records
            if r.ok and r.method in SEND_METHODS and (chat_id is None or r.targets(chat_id))
        ]

    # --- faults ---------------------------------------------------------------------------

    def fail_with_429(self, method: str, times: int, retry_after: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer 429 with ``retry_after``."""
        self._faults.setdefault(method, []).append(_Fault(too_many_requests(retry_after), times))

    def fail_chat_with_429(self, chat_id: int | str, times: int, retry_after: int = 1) -> None:
        """The next ``times`` calls addressed to ``chat_id`` answer 429 with ``retry_after``."""
        fault = _Fault(too_many_requests(retry_after), times)
        self._faults.setdefault(f"chat:{chat_id}", []).append(fault)

    def fail_method(
        self,
        method: str,
        status: int,
        description: str,
        *,
        times: int | None = None,
        chat_id: int | str | None = None,
    ) -> None:
        """``method`` (to ``chat_id`` only, when given) answers ``status`` with ``description``
        (Telegram's wording, e.g. "Bad Request: not enough rights to create a topic"), for the
        next ``times`` calls or until ``clear_faults``."""
        chat = None if chat_id is None else str(chat_id)
        self._faults.setdefault(method, []).append(
            _Fault(ApiError(status, description), times, chat)
        )

    def block(self, chat_id: int | str) -> None:
        """Every call addressed to ``chat_id`` answers 403 "bot was blocked by the user"."""
        self._blocked.add(str(chat_id))

    def unblock(self, chat_id: int | str) -> None:
        """The member unblocked the bot."""
        self._blocked.discard(str(chat_id))

    def clear_faults(self, method: str | None = None) -> None:
        """Remove injected failures (for one method, or all but blocks)."""
        if method is None:
            self._faults.clear()
        else:
            self._faults.pop(method, None)

    def set_member(self, chat_id: int | str, user_id: int, status: str) -> None:
        """``getChatMember`` status of a user ("member" by default; "left", "kicked",
        "administrator", "creator", "restricted")."""
        self.methods.members[(str(chat_id), user_id)] = status

    def on(self, method: str, handler: Handler) -> None:
        """Answer ``method`` with ``handler(params)`` (raise ``ApiError`` to fail)."""
        self._custom[method] = handler

    # --- holding ----------------------------------------------------------------------------

    def hold_after(self, count: int, method: str = "sendMessage") -> None:
        """Answer the next ``count`` calls of ``method``, then hold every request, unrecorded,
        until :meth:`release`; a held request whose client connection is gone is dropped and
        never recorded (Telegram never got it: see ``bot_api_hold.py``)."""
        self.hold.hold_after(count, method)

    def release(self) -> None:
        """Stop holding: held requests whose client is still connected are served now."""
        self.hold.release()

    @property
    def held(self) -> int:
        """Requests waiting now because of :meth:`hold_after`."""
        return self.hold.held

    @property
    def dropped(self) -> int:
        """Held requests given up because their client connection was gone (never recorded)."""
        return self.hold.dropped

    # --- delivery ---------------------------------------------------------------------------

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update for ``getUpdates`` (an ``update_id`` is added when missing)."""
        return self.delivery.push(update)

    @property
    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed by an ``offset``."""
        return self.delivery.pending

    @property
    def webhook_url(self) -> str:
        """The URL registered by ``setWebhook`` ("" when none)."""
        return self.delivery.webhook.url

    @property
    def webhook_secret(self) -> str | None:
        """The ``secret_token`` given to ``setWebhook``."""
        return self.delivery.webhook.secret

    async def post_to_webhook(
        self, update: dict[str, Any], *, secret: str | None = REGISTERED, url: str | None = None
    ) -> int:
        """POST an update to the webhook as Telegram does and return the HTTP status.

        The secret header carries the ``secret_token`` given to ``setWebhook`` unless ``secret``
        says otherwise (``None``: no header). A method call answered in the response body is
        executed and recorded like any call."""
        if self._client is None:
            raise RuntimeError("FakeBotApi is not started")
        status, reply = await self.delivery.post(self._client, update, secret, url)
        if reply is not None:
            await self._run_reply(*reply)
        return status

    async def _run_reply(self, method: str, params: dict[str, Any]) -> None:
        record = CallRecord(self._canonical(method), params, time.monotonic())
        self._records.append(record)
        try:
            result = await self._execute(self.delivery.webhook.token, record.method, params)
        except ApiError as error:
            record.status = error.status
        else:
            record.result = result

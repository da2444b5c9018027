"""The fake Bot API server, driven by the real aiogram client over loopback HTTP."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.methods import SendMessage
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from tests.fakes.bot_api import SECRET_HEADER, FakeBotApi, UploadedFile
from tests.fakes.media_samples import PDF, PNG

TOKEN = "42:TEST-token"
MEMBER = 1001
GROUP = -1001234


@pytest.fixture
def bot_api_options() -> dict[str, Any]:
    return {"poll_cap": 0.3}


@pytest.fixture
def bot_token() -> str:
    return TOKEN


@pytest.fixture
def bot(fake_bot: Bot) -> Bot:
    return fake_bot


class Receiver:
    """A tiny webhook endpoint: records what arrives, checks the secret, may answer a method."""

    def __init__(self, secret: str, answer: dict[str, Any] | None = None) -> None:
        self.secret = secret
        self.answer = answer
        self.received: list[tuple[dict[str, Any], str | None]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        header = request.headers.get(SECRET_HEADER)
        if header != self.secret:
            return web.Response(status=401)
        self.received.append((await request.json(), header))
        return web.json_response(self.answer or {})

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = await _serve(app)
        self.url = _url(self._runner, "/hook")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


async def _serve(app: web.Application) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def _url(runner: web.AppRunner, path: str) -> str:
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}{path}"


# --- messages and keyboards ---------------------------------------------------------------


async def test_get_me_is_the_bot_of_the_token(bot: Bot, fake: FakeBotApi) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (42, True, "fake_bot")
    assert [c.method for c in fake.calls()] == ["getMe"]


async def test_inline_keyboard_round_trips_into_the_records(bot: Bot, fake: FakeBotApi) -> None:
    markup = InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text="Cek saldo", callback_data="1go:balance|abc123")],
            [InlineKeyboardButton(text="FAQ", callback_data="1go:faq|def456")],
        ]
    )
    sent = await bot.send_message(MEMBER, "Menu", reply_markup=markup)
    assert isinstance(sent, Message) and sent.chat.id == MEMBER and sent.chat.type == "private"
    assert sent.from_user is not None and sent.from_user.id == 42
    assert sent.reply_markup is not None
    assert sent.reply_markup.model_dump() == markup.model_dump()
    assert fake.sent_to(MEMBER) == ["Menu"]
    assert fake.last_markup(MEMBER) == {
        "inline_keyboard": [
            [{"text": "Cek saldo", "callback_data": "1go:balance|abc123"}],
            [{"text": "FAQ", "callback_data": "1go:faq|def456"}],
        ]
    }
    record = fake.calls("sendMessage")[0]
    assert record.params["chat_id"] == MEMBER and record.result["message_id"] == sent.message_id


async def test_contact_keyboard_then_its_removal(bot: Bot, fake: FakeBotApi) -> None:
    ask = ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text="Kirim nomor", request_contact=True)]],
        one_time_keyboard=True,
        resize_keyboard=True,
    )
    sent = await bot.send_message(MEMBER, "Nomor HP?", reply_markup=ask)
    assert sent.reply_markup is None  # a Message only carries inline keyboards
    assert fake.last_markup(MEMBER) == {
        "keyboard": [[{"text": "Kirim nomor", "request_contact": True}]],
        "resize_keyboard": True,
        "one_time_keyboard": True,
    }
    await bot.send_message(MEMBER, "Terima kasih", reply_markup=ReplyKeyboardRemove())
    assert fake.last_markup(MEMBER) == {"remove_keyboard": True}
    await bot.send_message(MEMBER, "Polos")
    assert fake.last_markup(MEMBER) is None


async def test_callback_data_over_64_bytes_is_refused(bot: Bot, fake: FakeBotApi) -> None:
    button = InlineKeyboardButton(text="x", callback_data="d" * 65)
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(
            MEMBER, "x", reply_markup=InlineKeyboardMarkup(inline_keyboard=[[button]])
        )
    assert fake.sent_to(MEMBER) == []


async def test_delete_message_of_a_member(bot: Bot, fake: FakeBotApi) -> None:
    update = fake.message_update(MEMBER, "3201234567890001")
    assert await bot.delete_message(MEMBER, update["message"]["message_id"]) is True
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(MEMBER, update["message"]["message_id"])
    assert [c.status for c in fake.calls("deleteMessage")] == [200, 400]


async def test_edit_message_text_for_pagination(bot: Bot, fake: FakeBotApi) -> None:
    more = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Next", callback_data="hist:2")]]
    )
    sent = await bot.send_message(MEMBER, "Page 1", reply_markup=more)
    edited = await bot.edit_message_text(
        "Page 2", chat_id=MEMBER, message_id=sent.message_id, reply_markup=more
    )
    assert isinstance(edited, Message) and edited.text == "Page 2"
    assert edited.message_id == sent.message_id and edited.edit_date is not None
    assert fake.sent_to(MEMBER) == ["Page 1", "Page 2"]
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "Page 2", chat_id=MEMBER, message_id=sent.message_id, reply_markup=more
        )
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=MEMBER, message_id=999)


async def test_callback_update_carries_the_bot_message(bot: Bot, fake: FakeBotApi) -> None:
    sent = await bot.send_message(
        MEMBER,
        "Menu",
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="A", callback_data="1a|tag")]]
        ),
    )
    update = Update.model_validate(
        fake.callback_update(MEMBER, "1a|tag", message_id=sent.message_id)
    )
    query = update.callback_query
    assert query is not None and query.data == "1a|tag" and query.from_user.id == MEMBER
    assert isinstance(query.message, Message) and query.message.text == "Menu"
    assert await bot.answer_callback_query(query.id, text="ok") is True
    assert fake.calls("answerCallbackQuery")[0].params == {
        "callback_query_id": query.id,
        "text": "ok",
    }


async def test_set_my_commands_per_language(bot: Bot, fake: FakeBotApi) -> None:
    commands = [BotCommand(command="saldo", description="Cek saldo JHT")]
    assert await bot.set_my_commands(commands, language_code="id") is True
    assert await bot.set_my_commands(
        [BotCommand(command="saldo", description="Check balance")],
        scope=BotCommandScopeAllPrivateChats(),
        language_code="en",
    )
    stored = await bot.get_my_commands(language_code="id")
    assert [(c.command, c.description) for c in stored] == [("saldo", "Cek saldo JHT")]
    en = fake.calls("setMyCommands")[1].params
    assert en["scope"] == {"type": "all_private_chats"} and en["language_code"] == "en"
    assert en["commands"] == [{"command": "saldo", "description": "Check balance"}]


async def test_uploads_arrive_as_files(bot: Bot, fake: FakeBotApi) -> None:
    document = BufferedInputFile(b"%PDF-1.4", filename="saldo.pdf")
    sent = await bot.send_document(MEMBER, document, caption="Rincian")
    assert sent.document is not None and sent.document.file_name == "saldo.pdf"
    params = fake.calls("sendDocument")[0].params
    assert params["document"] == UploadedFile("saldo.pdf", b"%PDF-1.4")
    assert params["caption"] == "Rincian"


async def test_uploads_are_kept_for_assertions(bot: Bot, fake: FakeBotApi) -> None:
    await bot.send_photo(MEMBER, BufferedInputFile(PNG, filename="grafik.png"), caption="Grafik")
    await bot.send_document(MEMBER, BufferedInputFile(PDF, filename="laporan.pdf"))
    photo, document = fake.files_to(MEMBER)
    assert (photo.method, photo.filename, photo.content, photo.caption) == (
        "sendPhoto", "grafik.png", PNG, "Grafik")
    assert (document.method, document.content, document.caption) == ("sendDocument", PDF, None)
    assert fake.files_to(MEMBER + 1) == []


async def test_what_telegram_refuses_of_a_file(bot: Bot, fake: FakeBotApi) -> None:
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_document(MEMBER, BufferedInputFile(PDF, filename="laporan.pdf"),
                                caption="x" * 1025)
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(MEMBER, BufferedInputFile(PDF, filename="grafik.png"))
    with pytest.raises(TelegramEntityTooLarge):
        await bot.send_photo(MEMBER, BufferedInputFile(PNG + bytes(10 * 1024 * 1024),
                                                       filename="besar.png"))
    assert fake.files_to(MEMBER) == []


# --- delivery -----------------------------------------------------------------------------


async def test_webhook_delivery_with_the_secret_header(bot: Bot, fake: FakeBotApi) -> None:
    async with Receiver("s3cret") as receiver:
        assert await bot.set_webhook(receiver.url, secret_token="s3cret") is True
        info = await bot.get_webhook_info()
        assert info.url == receiver.url and info.pending_update_count == 0
        update = fake.message_update(MEMBER, "cek saldo")
        assert await fake.post_to_webhook(update) == 200
        assert await fake.post_to_webhook(update, secret="forged") == 401
        assert await fake.post_to_webhook(update, secret=None) == 401
    assert receiver.received == [(update, "s3cret")]
    with pytest.raises(TelegramConflictError):
        await bot.get_updates()
    assert await bot.delete_webhook() is True
    assert fake.webhook_url == "" and await bot.get_updates() == []


async def test_a_method_answered_in_the_webhook_response_is_executed(
    bot: Bot, fake: FakeBotApi
) -> None:
    answer = {"method": "sendMessage", "chat_id": MEMBER, "text": "pong"}
    async with Receiver("s", answer=answer) as receiver:
        await bot.set_webhook(receiver.url, secret_token="s")
        assert await fake.post_to_webhook(fake.message_update(MEMBER, "ping")) == 200
    assert fake.sent_to(MEMBER) == ["pong"]


async def test_aiogram_webhook_handler_and_its_reply(bot: Bot, fake: FakeBotApi) -> None:
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> SendMessage:
        return message.answer(f"echo: {message.text}")

    app = web.Application()
    SimpleRequestHandler(dp, bot, secret_token="s3", handle_in_background=False).register(
        app, path="/tg"
    )
    runner = await _serve(app)
    try:
        await bot.set_webhook(_url(runner, "/tg"), secret_token="s3")
        assert await fake.post_to_webhook(fake.message_update(MEMBER, "halo")) == 200
        assert await fake.post_to_webhook(fake.message_update(MEMBER, "x"), secret="no") == 401
    finally:
        await runner.cleanup()
    assert fake.sent_to(MEMBER) == ["echo: halo"]


async def test_get_updates_with_offset(bot: Bot, fake: FakeBotApi) -> None:
    sent = await bot.send_message(MEMBER, "Menu")
    first = fake.push_update(fake.message_update(MEMBER, "/start"))
    fake.push_update(fake.contact_update(MEMBER, "+628123", contact_user_id=MEMBER))
    fake.push_update(fake.callback_update(MEMBER, "1x|t", message_id=sent.message_id))
    updates = await bot.get_updates()
    assert [u.update_id for u in updates] == [first, first + 1, first + 2]
    assert updates[0].message is not None and updates[0].message.text == "/start"
    contact = updates[1].message.contact if updates[1].message else None
    assert contact is not None and contact.user_id == MEMBER
    assert updates[2].callback_query is not None
    assert len(await bot.get_updates(offset=first + 1)) == 2  # first confirmed
    assert await bot.get_updates(offset=first + 3) == []
    assert fake.pending_updates == 0


async def test_long_poll_wakes_on_push_and_is_capped(bot: Bot, fake: FakeBotApi) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=30) == []
    assert time.monotonic() - started < 2  # capped at poll_cap
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await asyncio.sleep(0.05)
    fake.push_update(fake.message_update(MEMBER, "halo"))
    updates = await poll
    assert [u.message.text for u in updates if u.message] == ["halo"]


async def test_aiogram_polling_dispatcher_end_to_end(bot: Bot, fake: FakeBotApi) -> None:
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    polling = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False)
    )
    fake.push_update(fake.message_update(MEMBER, "satu"))
    fake.push_update(fake.message_update(MEMBER, "dua"))
    for _ in range(100):
        if len(fake.sent_to(MEMBER)) == 2:
            break
        await asyncio.sleep(0.02)
    await dp.stop_polling()
    await polling
    assert sorted(fake.sent_to(MEMBER)) == ["echo: dua", "echo: satu"]


# --- faults -------------------------------------------------------------------------------


async def test_429_raises_retry_after_then_recovers(bot: Bot, fake: FakeBotApi) -> None:
    fake.fail_with_429("sendMessage", times=2, retry_after=3)
    for _ in range(2):
        with pytest.raises(TelegramRetryAfter) as caught:
            await bot.send_message(MEMBER, "halo")
        assert caught.value.retry_after == 3
    await bot.send_message(MEMBER, "halo")
    assert fake.sent_to(MEMBER) == ["halo"]
    assert [c.status for c in fake.calls("sendMessage")] == [429, 429, 200]
    assert len(fake.send_times()) == 1


async def test_429_for_one_chat_only(bot: Bot, fake: FakeBotApi) -> None:
    fake.fail_chat_with_429(MEMBER, times=1, retry_after=5)
    await bot.send_message(MEMBER + 1, "other chat")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(MEMBER, "halo")
    assert caught.value.retry_after == 5
    await bot.send_message(MEMBER, "halo")
    assert fake.sent_to(MEMBER) == ["halo"]


async def test_blocked_chat_answers_403(bot: Bot, fake: FakeBotApi) -> None:
    fake.block(MEMBER)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(MEMBER, "halo")
    await bot.send_message(MEMBER + 1, "still fine")
    fake.unblock(MEMBER)
    await bot.send_message(MEMBER, "halo")
    assert fake.sent_to(MEMBER) == ["halo"]


async def test_fail_method_until_cleared(bot: Bot, fake: FakeBotApi) -> None:
    fake.fail_method("sendMessage", 400, "Bad Request: chat not found", chat_id=GROUP)
    for _ in range(2):
        with pytest.raises(TelegramBadRequest, match="chat not found"):
            await bot.send_message(GROUP, "ticket")
    await bot.send_message(MEMBER, "member still served")
    fake.clear_faults()
    await bot.send_message(GROUP, "ticket")
    assert fake.sent_to(GROUP) == ["ticket"]


async def test_send_times_per_chat(bot: Bot, fake: FakeBotApi) -> None:
    for chat in (MEMBER, MEMBER + 1, MEMBER):
        await bot.send_message(chat, "x")
    times = fake.send_times()
    assert len(times) == 3 and times == sorted(times)
    assert fake.send_times(MEMBER) == [times[0], times[2]]


# --- forum topics -------------------------------------------------------------------------


async def test_forum_topics_of_the_agent_desk(bot: Bot, fake: FakeBotApi) -> None:
    fake.fail_method(
        "createForumTopic", 400, "Bad Request: not enough rights to create a topic", times=1
    )
    with pytest.raises(TelegramBadRequest, match="not enough rights"):
        await bot.create_forum_topic(GROUP, "#1 S*** - saldo")
    first = await bot.create_forum_topic(GROUP, "#1 S*** - saldo")
    second = await bot.create_forum_topic(GROUP, "#2 B*** - klaim", icon_color=0xFFD67E)
    assert second.message_thread_id > first.message_thread_id
    assert (second.name, second.icon_color) == ("#2 B*** - klaim", 0xFFD67E)
    sent = await bot.send_message(
        GROUP, "Konteks tiket", message_thread_id=first.message_thread_id
    )
    assert sent.message_thread_id == first.message_thread_id and sent.is_topic_message
    await bot.send_message(GROUP, "Lain", message_thread_id=second.message_thread_id)
    assert fake.topic_messages(GROUP, first.message_thread_id) == ["Konteks tiket"]
    assert await bot.edit_forum_topic(GROUP, first.message_thread_id, name="#1 [closed]")
    assert await bot.close_forum_topic(GROUP, first.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="TOPIC_NOT_MODIFIED"):
        await bot.close_forum_topic(GROUP, first.message_thread_id)
    topic = fake.topics(GROUP)[first.message_thread_id]
    assert (topic.name, topic.closed) == ("#1 [closed]", True)
    assert await bot.reopen_forum_topic(GROUP, first.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="not a forum"):
        await bot.create_forum_topic(MEMBER, "private")


async def test_agent_message_in_a_topic_and_membership(bot: Bot, fake: FakeBotApi) -> None:
    topic = await bot.create_forum_topic(GROUP, "#1")
    update = Update.model_validate(
        fake.message_update(
            GROUP,
            "/note cek KPJ",
            user_id=77,
            chat_type="supergroup",
            thread_id=topic.message_thread_id,
            is_topic=True,
        )
    )
    message = update.message
    assert message is not None and message.chat.is_forum and message.is_topic_message
    assert message.message_thread_id == topic.message_thread_id
    assert message.from_user is not None and message.from_user.id == 77
    assert (await bot.get_chat_member(GROUP, 77)).status == "member"
    fake.set_member(GROUP, 78, "left")
    assert (await bot.get_chat_member(GROUP, 78)).status == "left"
    assert (await bot.get_chat_member(GROUP, 42)).status == "administrator"


# --- wire formats -------------------------------------------------------------------------


async def test_json_urlencoded_and_lowercase_method_names(fake: FakeBotApi) -> None:
    base = f"{fake.api_base}/bot{TOKEN}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/sendmessage", json={"chat_id": 5, "text": "123"}) as r:
            assert (await r.json())["result"]["text"] == "123"
        form = {"chat_id": "5", "text": "true", "reply_markup": '{"remove_keyboard": true}'}
        async with http.post(f"{base}/sendMessage", data=form) as r:
            assert r.status == 200
        async with http.post(f"{base}/noSuchMethod") as r:
            assert r.status == 404 and not (await r.json())["ok"]
        async with http.post(f"{fake.api_base}/botnot-a-token/getMe") as r:
            assert r.status == 401
    assert fake.sent_to(5) == ["123", "true"]
    assert fake.calls("sendMessage")[1].params["reply_markup"] == {"remove_keyboard": True}


async def test_custom_handler_and_no_webhook(bot: Bot, fake: FakeBotApi) -> None:
    fake.on("sendPoll", lambda params: {"poll": params["question"]})
    async with aiohttp.ClientSession() as http:
        url = f"{fake.api_base}/bot{TOKEN}/sendPoll"
        async with http.post(url, data={"chat_id": "5", "question": "?"}) as response:
            assert (await response.json())["result"] == {"poll": "?"}
    with pytest.raises(RuntimeError, match="no webhook"):
        await fake.post_to_webhook(fake.message_update(MEMBER, "x"))


async def test_builders_shape_valid_updates(fake: FakeBotApi) -> None:
    other = Update.model_validate(fake.contact_update(MEMBER, "+62811", contact_user_id=999))
    assert other.message is not None and other.message.contact is not None
    assert other.message.contact.user_id == 999 and other.message.from_user is not None
    assert other.message.from_user.id == MEMBER
    assert other.message.from_user.language_code == "id"
    command = Update.model_validate(fake.message_update(MEMBER, "/saldo now", message_id=50))
    assert command.message is not None and command.message.message_id == 50
    assert command.message.entities is not None
    assert command.message.entities[0].type == "bot_command"
    photo = {"photo": [{"file_id": "p", "file_unique_id": "p", "width": 1, "height": 1}]}
    agent = Update.model_validate(
        fake.message_update(GROUP, "", user_id=77, chat_type="supergroup", extra=photo)
    )
    assert agent.message is not None and agent.message.photo is not None
    assert agent.message.text is None
    ids = [fake.message_update(MEMBER, "a")["update_id"] for _ in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3

"""The Bot API session that posts JSON: what goes over the wire, and the errors it raises."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
)
from aiogram.methods import SendDocument, SendMessage
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import web
from aiohttp.test_utils import TestServer

from channels.telegram.session import JsonAiohttpSession

TOKEN = "42:test-session-token"
MESSAGE = {"message_id": 7, "date": 1_700_000_000, "chat": {"id": 5, "type": "private"},
           "text": "halo"}


class Recorder:
    """A loopback Bot API that records each request's content type and body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes]] = []
        self.answer: tuple[int, dict[str, Any]] = (200, {"ok": True, "result": MESSAGE})

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.content_type, await request.read()))
        status, body = self.answer
        return web.json_response(body, status=status)


@pytest.fixture
async def api() -> AsyncIterator[tuple[Recorder, Bot]]:
    recorder = Recorder()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", recorder.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    bot = Bot(TOKEN, session=JsonAiohttpSession(api=TelegramAPIServer.from_base(base)))
    yield recorder, bot
    await bot.session.close()
    await server.close()


async def test_a_message_goes_as_one_json_document(api: tuple[Recorder, Bot]) -> None:
    recorder, bot = api
    markup = InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text="Riwayat", callback_data="1hist|abc")]])
    sent = await bot(SendMessage(chat_id=5, text="Saldo JHT", reply_markup=markup,
                                 disable_notification=False))
    assert sent.message_id == 7
    [(content_type, body)] = recorder.requests
    assert content_type == "application/json"
    assert json.loads(body) == {"chat_id": 5, "text": "Saldo JHT", "reply_markup": {
        "inline_keyboard": [[{"text": "Riwayat", "callback_data": "1hist|abc"}]]},
        "disable_notification": False}  # False is a value: sent, as the form sends "false"


async def test_a_file_still_goes_as_form_data(api: tuple[Recorder, Bot]) -> None:
    recorder, bot = api
    await bot(SendDocument(chat_id=5, document=BufferedInputFile(b"%PDF", "kartu.pdf")))
    [(content_type, body)] = recorder.requests
    assert content_type == "multipart/form-data"
    assert b"kartu.pdf" in body


async def test_an_error_answer_raises_aiograms_error(api: tuple[Recorder, Bot]) -> None:
    recorder, bot = api
    recorder.answer = (400, {"ok": False, "error_code": 400,
                             "description": "Bad Request: chat not found"})
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot(SendMessage(chat_id=5, text="x"))


async def test_an_unreachable_server_is_a_network_error() -> None:
    bot = Bot(TOKEN, session=JsonAiohttpSession(
        api=TelegramAPIServer.from_base("http://127.0.0.1:9")))
    try:
        with pytest.raises(TelegramNetworkError):
            await bot(SendMessage(chat_id=5, text="x"))
    finally:
        await bot.session.close()


async def test_the_bots_defaults_still_fill_unset_fields(api: tuple[Recorder, Bot]) -> None:
    recorder, bot = api
    styled = Bot(TOKEN, session=bot.session, default=DefaultBotProperties(parse_mode="HTML"))
    await styled(SendMessage(chat_id=5, text="<b>Saldo</b>"))
    [(_, body)] = recorder.requests
    assert json.loads(body) == {"chat_id": 5, "text": "<b>Saldo</b>", "parse_mode": "HTML"}


def _session(bot: Bot) -> JsonAiohttpSession:
    assert isinstance(bot.session, JsonAiohttpSession)
    return bot.session


async def test_send_posts_the_same_json_and_builds_no_result(
        api: tuple[Recorder, Bot], monkeypatch: pytest.MonkeyPatch) -> None:
    recorder, bot = api

    def no_models(*_: object, **__: object) -> None:
        raise AssertionError("a successful send built aiogram's result models")

    monkeypatch.setattr(_session(bot), "check_response", no_models)
    assert await _session(bot).send(bot, SendMessage(chat_id=5, text="Saldo")) is None
    [(content_type, body)] = recorder.requests
    assert content_type == "application/json"
    assert json.loads(body) == {"chat_id": 5, "text": "Saldo"}


@pytest.mark.parametrize(("status", "answer", "error"), [
    (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7",
           "parameters": {"retry_after": 7}}, TelegramRetryAfter),
    (403, {"ok": False, "error_code": 403,
           "description": "Forbidden: bot was blocked by the user"}, TelegramForbiddenError),
    (400, {"ok": False, "error_code": 400,
           "description": "Bad Request: message is not modified"}, TelegramBadRequest),
    (200, {"ok": False, "error_code": 400, "description": "odd"}, TelegramAPIError),
    (200, {"result": True}, ClientDecodeError),  # no "ok": not an answer of the Bot API
])
async def test_send_raises_aiograms_errors(api: tuple[Recorder, Bot], status: int,
                                           answer: dict[str, Any],
                                           error: type[Exception]) -> None:
    recorder, bot = api
    recorder.answer = (status, answer)
    with pytest.raises(error) as raised:
        await _session(bot).send(bot, SendMessage(chat_id=5, text="x"))
    if isinstance(raised.value, TelegramRetryAfter):
        assert raised.value.retry_after == 7


async def test_send_of_a_file_goes_as_form_data(api: tuple[Recorder, Bot]) -> None:
    recorder, bot = api
    await _session(bot).send(bot, SendDocument(
        chat_id=5, document=BufferedInputFile(b"%PDF", "kartu.pdf")))
    [(content_type, _)] = recorder.requests
    assert content_type == "multipart/form-data"

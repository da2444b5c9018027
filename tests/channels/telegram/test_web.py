"""The Telegram webhook route: the secret and body checks (malformed bodies refused with a 4xx,
no stack trace, nothing processed), back-pressure, background handling."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest
from aiogram.types import Update
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app.metrics import Metrics
from app.web import MAX_BODY, MAX_DEPTH, create_web_app
from channels.telegram.web import SECRET_HEADER, TELEGRAM_PATH, add_telegram_routes
from flows.ports import StoreUnavailable
from tests.conftest import WebClient
from tests.fakes.loopback import raw_post

SECRET = "right-secret"
JSON_HEADERS = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}
UPDATE = {"update_id": 7, "message": {"message_id": 1, "date": 0,
                                      "chat": {"id": 5, "type": "private"}, "text": "halo"}}


class StubChannel:
    """Records accepted updates; each is 'handled' by a task that waits for ``release``."""

    def __init__(self, backlog: int = 100) -> None:
        self.accepted: list[int] = []
        self.finished: list[int] = []
        self.release = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.backlog = backlog
        self.payloads: list[object] = []
        self.raws: list[str] = []
        self.down = False
        self.started = 0

    def start(self) -> None:
        self.started += 1

    def parse(self, payload: object) -> Update:
        if not isinstance(payload, dict) or "update_id" not in payload:
            raise ValueError("not an update")
        self.payloads.append(payload)
        return Update.model_validate(payload)

    async def take(self, update: Update, raw: str) -> bool:
        if self.down:
            raise StoreUnavailable("the inbox is down")
        if len(self.tasks) >= self.backlog:
            return False
        self.raws.append(raw)
        self.accepted.append(update.update_id)
        self.tasks.add(asyncio.create_task(self._handle(update.update_id)))
        return True

    async def _handle(self, update_id: int) -> None:
        await self.release.wait()
        self.finished.append(update_id)

    async def drain(self, timeout: float = 30.0, *, reopen: bool = True) -> None:
        self.release.set()
        await asyncio.gather(*self.tasks)


@pytest.fixture
def channel() -> StubChannel:
    return StubChannel()


def _app(channel: StubChannel | None) -> web.Application:
    app = create_web_app(metrics=Metrics(), checks={})
    if channel is not None:
        add_telegram_routes(app, channel, secret=SECRET)
    return app


@pytest.mark.parametrize("headers", [{}, {SECRET_HEADER: "wrong-secret"},
                                     {SECRET_HEADER: SECRET + "x"}, {SECRET_HEADER: ""}])
async def test_a_missing_or_wrong_secret_is_401_and_nothing_is_read(
        web_client: WebClient, channel: StubChannel, headers: dict[str, str]) -> None:
    http = await web_client(_app(channel))
    response = await http.post(TELEGRAM_PATH, data=b"not even json", headers=headers)
    assert response.status == 401
    assert channel.accepted == []


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"no": "update id"}',
                                  b"\xff\xfe", b""])
async def test_a_body_that_is_not_an_update_is_400(web_client: WebClient, channel: StubChannel,
                                                   body: bytes) -> None:
    http = await web_client(_app(channel))
    response = await http.post(TELEGRAM_PATH, data=body, headers=JSON_HEADERS)
    assert response.status == 400
    assert channel.accepted == []


def _nested(depth: int) -> bytes:
    """An update whose message has a field nested ``depth`` arrays deep (``2 + depth``
    levels in all)."""
    inner = "[" * depth + "]" * depth
    return (b'{"update_id": 7, "message": {"message_id": 1, "date": 0, '
            b'"chat": {"id": 5, "type": "private"}, "x": ' + inner.encode() + b"}}")


MALFORMED = {
    "nested past the recursion limit": (_nested(100_000), JSON_HEADERS, 400),
    "nested one past MAX_DEPTH": (_nested(MAX_DEPTH - 1), JSON_HEADERS, 400),
    "not JSON": (b"update_id=7", JSON_HEADERS, 400),
    "latin-1": (json.dumps({**UPDATE, "x": "caf\u00e9"}).replace("\\u00e9", "\xe9")
                .encode("latin-1"), JSON_HEADERS, 400),
    "UTF-16": (json.dumps(UPDATE).encode("utf-16"), JSON_HEADERS, 400),
    "a digit string past Python's limit": (b'{"update_id": ' + b"9" * 5000 + b"}",
                                           JSON_HEADERS, 400),
    "oversized": (json.dumps({**UPDATE, "pad": "x" * MAX_BODY}).encode(), JSON_HEADERS, 413),
    "text/plain": (json.dumps(UPDATE).encode(),
                   {SECRET_HEADER: SECRET, "Content-Type": "text/plain"}, 415),
    "a form": (b"update_id=7", {SECRET_HEADER: SECRET,
                                "Content-Type": "application/x-www-form-urlencoded"}, 415),
    "octet-stream": (json.dumps(UPDATE).encode(), {
        SECRET_HEADER: SECRET, "Content-Type": "application/octet-stream"}, 415),
    "JSON in another charset": (json.dumps(UPDATE).encode(), {
        SECRET_HEADER: SECRET, "Content-Type": "application/json; charset=latin-1"}, 415),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_a_malformed_body_is_a_4xx_with_no_trace_and_nothing_processed(
        web_client: WebClient, channel: StubChannel, caplog: pytest.LogCaptureFixture,
        case: str) -> None:
    body, headers, status = MALFORMED[case]
    caplog.set_level(logging.DEBUG)
    http = await web_client(_app(channel))
    response = await http.post(TELEGRAM_PATH, data=io.BytesIO(body), headers=headers)
    assert response.status == status
    assert channel.payloads == [] and channel.accepted == []
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_deep_but_allowed_body_and_a_utf8_charset_are_taken(
        web_client: WebClient, channel: StubChannel) -> None:
    http = await web_client(_app(channel))
    headers = {SECRET_HEADER: SECRET, "Content-Type": "application/json; charset=UTF-8"}
    deep = json.loads(_nested(MAX_DEPTH - 2))  # MAX_DEPTH levels in all
    deep["update_id"] = 8
    first = await http.post(TELEGRAM_PATH, json=UPDATE, headers=headers)
    second = await http.post(TELEGRAM_PATH, data=json.dumps(deep), headers=JSON_HEADERS)
    assert (first.status, second.status) == (200, 200)
    assert channel.accepted == [7, 8]
    await channel.drain()


async def test_lone_surrogates_are_replaced_before_the_channel_sees_them(
        web_client: WebClient, channel: StubChannel) -> None:
    http = await web_client(_app(channel))
    body = json.dumps({**UPDATE, "callback_query": {
        "id": "q\ud800", "chat_instance": "c", "data": "reg:agree\udfff",
        "from": {"id": 5, "is_bot": False, "first_name": "Siti\ud83d"}}})
    assert "\\ud800" in body  # json.dumps escaped them: the form JSON carries them in
    response = await http.post(TELEGRAM_PATH, data=body, headers=JSON_HEADERS)
    assert response.status == 200
    [payload] = channel.payloads
    assert isinstance(payload, dict)
    query = payload["callback_query"]
    assert query["data"] == "reg:agree\ufffd" and query["from"]["first_name"] == "Siti\ufffd"
    assert json.dumps(payload, ensure_ascii=False).encode("utf-8")  # encodable throughout
    await channel.drain()


async def test_a_secret_header_that_is_not_utf8_is_401_without_a_trace(
        web_client: WebClient, channel: StubChannel, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    http = await web_client(_app(channel))
    body = json.dumps(UPDATE).encode()
    status = await raw_post(http.host, http.port, TELEGRAM_PATH,
                            (SECRET_HEADER, SECRET.encode() + b"\xff"), body)
    assert status in (b"400", b"401")  # the parser or the webhook refuses it
    assert channel.payloads == []
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_an_update_is_acknowledged_before_it_is_handled_and_shutdown_waits(
        channel: StubChannel) -> None:
    server = TestServer(_app(channel))
    http = TestClient(server)
    await http.start_server()
    response = await http.post(TELEGRAM_PATH, json=UPDATE, headers={SECRET_HEADER: SECRET})
    assert response.status == 200
    assert await response.json() == {"ok": True}
    assert channel.accepted == [7]
    assert channel.finished == []  # still in the background
    await http.close()  # on_shutdown drains the channel
    assert channel.finished == [7]


async def test_a_full_backlog_is_503_with_retry_after(web_client: WebClient) -> None:
    channel = StubChannel(backlog=1)
    http = await web_client(_app(channel))
    first = await http.post(TELEGRAM_PATH, json=UPDATE, headers={SECRET_HEADER: SECRET})
    second = await http.post(TELEGRAM_PATH, json={**UPDATE, "update_id": 8},
                             headers={SECRET_HEADER: SECRET})
    assert (first.status, second.status) == (200, 503)
    assert second.headers["Retry-After"] == "1"
    assert channel.accepted == [7]
    await channel.drain()


async def test_an_unreachable_inbox_is_503_and_the_update_is_not_acknowledged(
        web_client: WebClient) -> None:
    channel = StubChannel()
    channel.down = True  # Redis is down: the update cannot be kept
    http = await web_client(_app(channel))
    response = await http.post(TELEGRAM_PATH, json=UPDATE, headers={SECRET_HEADER: SECRET})
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"  # Telegram delivers it again
    assert channel.accepted == []
    channel.down = False  # Redis is back: the redelivery is kept and acknowledged
    again = await http.post(TELEGRAM_PATH, json=UPDATE, headers={SECRET_HEADER: SECRET})
    assert again.status == 200 and channel.accepted == [7]
    assert [json.loads(raw) for raw in channel.raws] == [UPDATE]  # the body, as received
    assert channel.started == 1  # the inbox's keeper runs from the app's start-up
    await channel.drain()


def test_a_webhook_without_a_secret_is_refused(channel: StubChannel) -> None:
    with pytest.raises(ValueError, match="secret"):
        add_telegram_routes(create_web_app(metrics=Metrics(), checks={}), channel, secret="")


async def test_without_the_channel_there_is_no_webhook_route(web_client: WebClient) -> None:
    http = await web_client(_app(None))
    response = await http.post(TELEGRAM_PATH, json=UPDATE, headers={SECRET_HEADER: SECRET})
    assert response.status == 404


def test_the_update_fixture_is_a_valid_update() -> None:
    assert StubChannel().parse(json.loads(json.dumps(UPDATE))).update_id == 7

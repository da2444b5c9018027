"""The Telegram webhook route: the secret and body checks, back-pressure, background handling."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiogram.types import Update
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app.metrics import Metrics
from app.web import create_web_app
from channels.telegram.web import SECRET_HEADER, TELEGRAM_PATH, add_telegram_routes
from tests.conftest import WebClient

SECRET = "right-secret"
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

    def parse(self, payload: object) -> Update:
        if not isinstance(payload, dict) or "update_id" not in payload:
            raise ValueError("not an update")
        return Update.model_validate(payload)

    def accept(self, update: Update) -> bool:
        if len(self.tasks) >= self.backlog:
            return False
        self.accepted.append(update.update_id)
        self.tasks.add(asyncio.create_task(self._handle(update.update_id)))
        return True

    async def _handle(self, update_id: int) -> None:
        await self.release.wait()
        self.finished.append(update_id)

    async def drain(self, timeout: float = 30.0) -> None:
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
    response = await http.post(TELEGRAM_PATH, data=body, headers={SECRET_HEADER: SECRET})
    assert response.status == 400
    assert channel.accepted == []


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


def test_a_webhook_without_a_secret_is_refused(channel: StubChannel) -> None:
    with pytest.raises(ValueError, match="secret"):
        add_telegram_routes(create_web_app(metrics=Metrics(), checks={}), channel, secret="")


async def test_without_the_channel_there_is_no_webhook_route(web_client: WebClient) -> None:
    http = await web_client(_app(None))
    response = await http.post(TELEGRAM_PATH, json=UPDATE, headers={SECRET_HEADER: SECRET})
    assert response.status == 404


def test_the_update_fixture_is_a_valid_update() -> None:
    assert StubChannel().parse(json.loads(json.dumps(UPDATE))).update_id == 7

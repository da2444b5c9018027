"""The web app: the webhook's secret and body checks, background handling, health, metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import pytest
from aiogram.types import Update
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app.metrics import Metrics
from app.web import (
    SECRET_HEADER,
    TELEGRAM_PATH,
    HealthCheck,
    create_web_app,
    database_check,
    http_check,
    kv_check,
)
from storage.db import create_engine
from storage.sessions import MemorySessionStore, redis_store_from_url

SECRET = "right-secret"
UPDATE = {"update_id": 7, "message": {"message_id": 1, "date": 0,
                                      "chat": {"id": 5, "type": "private"}, "text": "halo"}}


class StubChannel:
    """Records accepted updates; each is 'handled' by a task that waits for ``release``."""

    def __init__(self) -> None:
        self.accepted: list[int] = []
        self.finished: list[int] = []
        self.release = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    def parse(self, payload: object) -> Update:
        if not isinstance(payload, dict) or "update_id" not in payload:
            raise ValueError("not an update")
        return Update.model_validate(payload)

    def accept(self, update: Update) -> bool:
        self.accepted.append(update.update_id)
        self.tasks.add(asyncio.create_task(self._handle(update.update_id)))
        return True

    async def _handle(self, update_id: int) -> None:
        await self.release.wait()
        self.finished.append(update_id)

    async def drain(self, timeout: float = 30.0) -> None:
        self.release.set()
        await asyncio.gather(*self.tasks)


async def ok() -> None:
    """A part that answers."""


async def down() -> None:
    raise ConnectionError("refused")


async def slow() -> None:
    await asyncio.sleep(5)


@pytest.fixture
def channel() -> StubChannel:
    return StubChannel()


Client = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    made: list[TestClient[web.Request, web.Application]] = []

    async def make(app: web.Application) -> TestClient[web.Request, web.Application]:
        test_client = TestClient(TestServer(app))
        await test_client.start_server()
        made.append(test_client)
        return test_client

    yield make
    for test_client in made:
        await test_client.close()


def _app(channel: StubChannel | None, checks: Mapping[str, HealthCheck] | None = None,
         metrics: Metrics | None = None) -> web.Application:
    return create_web_app(metrics=metrics or Metrics(), checks=checks or {"database": ok},
                          telegram=channel, telegram_secret=SECRET)


@pytest.mark.parametrize("headers", [{}, {SECRET_HEADER: "wrong-secret"},
                                     {SECRET_HEADER: SECRET + "x"}, {SECRET_HEADER: ""}])
async def test_a_missing_or_wrong_secret_is_401_and_nothing_is_read(
        client: Client, channel: StubChannel, headers: dict[str, str]) -> None:
    http = await client(_app(channel))
    response = await http.post(TELEGRAM_PATH, data=b"not even json", headers=headers)
    assert response.status == 401
    assert channel.accepted == []


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"no": "update id"}',
                                  b"\xff\xfe", b""])
async def test_a_body_that_is_not_an_update_is_400(client: Client, channel: StubChannel,
                                                   body: bytes) -> None:
    http = await client(_app(channel))
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


def test_a_webhook_without_a_secret_is_refused(channel: StubChannel) -> None:
    with pytest.raises(ValueError, match="secret"):
        create_web_app(metrics=Metrics(), checks={}, telegram=channel, telegram_secret="")


async def test_without_a_channel_there_is_no_webhook_route(client: Client) -> None:
    http = await client(_app(None))
    response = await http.post(TELEGRAM_PATH, json=UPDATE, headers={SECRET_HEADER: SECRET})
    assert response.status == 404


async def test_health_is_200_when_every_part_answers(client: Client) -> None:
    http = await client(_app(None, {"redis": ok, "database": ok, "balance_service": ok}))
    response = await http.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "redis": "ok", "database": "ok",
                                     "balance_service": "ok"}


async def test_health_is_503_naming_the_part_that_is_down_or_slow(client: Client) -> None:
    http = await client(_app(None, {"redis": down, "database": ok, "balance_service": slow}))
    started = asyncio.get_running_loop().time()
    response = await http.get("/healthz")
    assert asyncio.get_running_loop().time() - started < 3  # one second per check, together
    assert response.status == 503
    assert await response.json() == {"status": "unavailable", "redis": "unreachable",
                                     "database": "ok", "balance_service": "timeout"}


async def test_metrics_are_served_in_prometheus_text_format(client: Client) -> None:
    metrics = Metrics()
    metrics.updates.labels("telegram").inc(3)
    http = await client(_app(None, metrics=metrics))
    response = await http.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'bot_updates_total{channel="telegram"} 3.0' in await response.text()


async def test_kv_check_reaches_the_store_and_fails_when_redis_is_down() -> None:
    await kv_check(MemorySessionStore())()
    store = redis_store_from_url("redis://127.0.0.1:1/0", timeout=0.5)
    try:
        with pytest.raises(Exception, match="Redis"):
            await kv_check(store)()
    finally:
        await store.aclose()


async def test_kv_check_on_real_redis(redis_url: str) -> None:
    store = redis_store_from_url(redis_url)
    try:
        await kv_check(store)()
    finally:
        await store.aclose()


async def test_database_check_runs_select_1(tmp_path: Path) -> None:
    database = create_engine(f"sqlite:///{tmp_path / 'health.db'}")
    try:
        await database_check(database)()
    finally:
        await database.dispose()


async def test_database_check_fails_when_the_server_is_unreachable() -> None:
    broken = create_engine("postgresql://nobody@127.0.0.1:1/none")
    try:
        with pytest.raises(OSError):
            await database_check(broken)()
    finally:
        await broken.dispose()


async def test_http_check_needs_a_2xx_answer(client: Client) -> None:
    async def healthy(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def sick(_: web.Request) -> web.Response:
        return web.json_response({}, status=503)

    app = web.Application()
    app.router.add_get("/healthz", healthy)
    app.router.add_get("/sick", sick)
    http = await client(app)
    await http_check(str(http.make_url("/healthz")))()
    with pytest.raises(Exception, match="503"):
        await http_check(str(http.make_url("/sick")))()


def test_the_update_fixture_is_a_valid_update() -> None:
    assert StubChannel().parse(json.loads(json.dumps(UPDATE))).update_id == 7

"""The web app: health checks, metrics, background work drained at shutdown, and the rules a
webhook body must meet (size, content type, UTF-8 JSON, nesting, encodable strings)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from app.metrics import Metrics
from app.web import (
    MAX_BODY,
    MAX_DEPTH,
    HealthCheck,
    MalformedBody,
    create_web_app,
    database_check,
    drain_on_shutdown,
    http_check,
    json_type_ok,
    kv_check,
    parse_json,
)
from storage.db import create_engine
from storage.sessions import MemorySessionStore, redis_store_from_url
from tests.conftest import WebClient


async def ok() -> None:
    """A part that answers."""


async def down() -> None:
    raise ConnectionError("refused")


async def slow() -> None:
    await asyncio.sleep(5)


def _app(checks: Mapping[str, HealthCheck] | None = None,
         metrics: Metrics | None = None) -> web.Application:
    return create_web_app(metrics=metrics or Metrics(), checks=checks or {"database": ok})


async def test_the_bare_app_serves_health_and_metrics_only(web_client: WebClient) -> None:
    http = await web_client(_app())
    assert (await http.get("/healthz")).status == 200
    assert (await http.get("/metrics")).status == 200
    assert (await http.post("/telegram/webhook", json={})).status == 404
    assert (await http.post("/whatsapp/webhook", json={})).status == 404


async def test_drain_on_shutdown_awaits_the_background_work() -> None:
    drained: list[str] = []

    async def drain() -> None:
        await asyncio.sleep(0)
        drained.append("done")

    app = _app()
    drain_on_shutdown(app, drain)
    http = TestClient(TestServer(app))
    await http.start_server()
    assert drained == []
    await http.close()
    assert drained == ["done"]


async def test_health_is_200_when_every_part_answers(web_client: WebClient) -> None:
    http = await web_client(_app({"redis": ok, "database": ok, "balance_service": ok}))
    response = await http.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "redis": "ok", "database": "ok",
                                     "balance_service": "ok"}


async def test_health_is_503_naming_the_part_that_is_down_or_slow(web_client: WebClient) -> None:
    http = await web_client(_app({"redis": down, "database": ok, "balance_service": slow}))
    started = asyncio.get_running_loop().time()
    response = await http.get("/healthz")
    assert asyncio.get_running_loop().time() - started < 3  # one second per check, together
    assert response.status == 503
    assert await response.json() == {"status": "unavailable", "redis": "unreachable",
                                     "database": "ok", "balance_service": "timeout"}


async def test_metrics_are_served_in_prometheus_text_format(web_client: WebClient) -> None:
    metrics = Metrics()
    metrics.updates.labels("telegram").inc(3)
    http = await web_client(_app(metrics=metrics))
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


async def test_http_check_needs_a_2xx_answer(web_client: WebClient) -> None:
    async def healthy(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def sick(_: web.Request) -> web.Response:
        return web.json_response({}, status=503)

    app = web.Application()
    app.router.add_get("/healthz", healthy)
    app.router.add_get("/sick", sick)
    http = await web_client(app)
    await http_check(str(http.make_url("/healthz")))()
    with pytest.raises(Exception, match="503"):
        await http_check(str(http.make_url("/sick")))()


async def test_the_app_caps_request_bodies_at_one_mib(web_client: WebClient) -> None:
    app = _app()

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=str(len(await request.read())))

    app.router.add_post("/echo", echo)
    http = await web_client(app)
    assert MAX_BODY == 1024 * 1024
    fits = await http.post("/echo", data=io.BytesIO(b"x" * MAX_BODY))
    assert (fits.status, await fits.text()) == (200, str(MAX_BODY))
    assert (await http.post("/echo", data=io.BytesIO(b"x" * (MAX_BODY + 1)))).status == 413


@pytest.mark.parametrize(("content_type", "ok"), [
    ("application/json", True), ("application/json; charset=utf-8", True),
    ("Application/JSON; charset=UTF8", True), ("application/json; charset=latin-1", False),
    ("text/plain", False), ("application/x-www-form-urlencoded", False),
    ("multipart/form-data; boundary=x", False), ("application/jsonx", False), (None, False),
])
def test_only_json_in_utf8_is_a_json_content_type(content_type: str | None, ok: bool) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    assert json_type_ok(make_mocked_request("POST", "/", headers=headers)) is ok


def _nest(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def test_json_nested_up_to_max_depth_is_parsed_and_deeper_refused() -> None:
    assert parse_json(_nest(MAX_DEPTH)) is not None
    deep_objects = ('{"a": ' * MAX_DEPTH + "1" + "}" * MAX_DEPTH).encode()
    assert isinstance(parse_json(deep_objects), dict)
    for body in (_nest(MAX_DEPTH + 1), b'{"a": ' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1),
                 _nest(1_000_000)):
        with pytest.raises(MalformedBody, match="nested|JSON"):
            parse_json(body)


@pytest.mark.parametrize("body", [b"", b"{", b"\xff", b"\xef\xbb\xbf{}", '{"x": "\u00e9"}'.encode(
    "latin-1"), b'{"n": ' + b"9" * 5000 + b"}", '{"a": 1}'.encode("utf-16")])
def test_what_is_not_utf8_json_is_refused(body: bytes) -> None:
    with pytest.raises(MalformedBody):
        parse_json(body)


def test_lone_surrogates_are_replaced_everywhere_and_the_rest_is_kept() -> None:
    body = json.dumps({"k\ud800": ["a\udfff", {"deep": "\ud83d"}], "ok": "😀 é",
                       "pair": "\ud83d\ude00", "n": 1}).encode()
    assert b"\\ud800" in body and b"\\ud83d\\ude00" in body
    assert parse_json(body) == {"k\ufffd": ["a\ufffd", {"deep": "\ufffd"}], "ok": "😀 é",
                                "pair": "😀", "n": 1}
    assert parse_json(b'"\\ud800"') == "\ufffd"

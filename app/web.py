"""The bot's web app (``run_bot.py serve``): ``/healthz``, ``/metrics``, and the routes each
channel adds.

The app knows no channel: a channel adds its webhook with its own function
(``channels.telegram.web.add_telegram_routes``, ``channels.whatsapp.web.add_whatsapp_routes``)
and, with :func:`drain_on_shutdown`, has its background work awaited when the app stops.
Several processes can serve the same bots behind a load balancer; they share Redis and the
database, which is what keeps updates once-only and in order per chat.

A webhook body is at most :data:`MAX_BODY` bytes (aiohttp answers 413 beyond it), and
:func:`json_type_ok` and :func:`parse_json` refuse the rest of what is malformed before
anything is processed: another content type than ``application/json`` (415), a body that is
not UTF-8 or not JSON, or JSON nested deeper than :data:`MAX_DEPTH` (400). Lone surrogates
(``"\\ud800"`` escapes, which no encoder accepts) are replaced by U+FFFD in every string, keys
included, so nothing downstream (Redis, SQL, logs) meets unencodable text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.metrics import CONTENT_TYPE, Metrics
from app.verify_page import HEADERS, normalized_code, page_for, pick_page_locale
from flows.i18n import Catalog
from flows.ports import DatabaseUnavailable, KeyValueStore, StatementIssueStore
from storage.sessions import RedisSessionStore

__all__ = ["MAX_BODY", "MAX_DEPTH", "VERIFY_PATH", "HealthCheck", "MalformedBody", "Route",
           "add_verify_route", "create_web_app", "database_check", "drain_on_shutdown",
           "http_check", "json_type_ok", "kv_check", "parse_json", "redis_check", "serve_app"]

log = logging.getLogger(__name__)
CHECK_TIMEOUT = 1.0  # seconds each health check may take
# Raises when the part is unreachable; may return a warning (the part works, but not as
# production needs it: Redis without persistence), shown under "warnings", still healthy.
HealthCheck = Callable[[], Awaitable[str | None]]
Route = Callable[[web.Request], Awaitable[web.Response]]
MAX_BODY = 1024 * 1024  # bytes of a request body; a Telegram update or Meta post is a few KiB
MAX_DEPTH = 64  # nesting of a webhook's JSON; an update or notification nests about ten deep
_JSON = "application/json"
_UTF8 = frozenset({"utf-8", "utf8"})
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # how one reaches json.loads
_REPLACEMENT = "\N{REPLACEMENT CHARACTER}"


class MalformedBody(ValueError):
    """A webhook body refused before any of it is processed (the message names no content)."""


def create_web_app(*, metrics: Metrics, checks: Mapping[str, HealthCheck]) -> web.Application:
    """The app with ``/healthz`` and ``/metrics``; channels add their routes to it."""
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_get("/healthz", _health(checks))
    app.router.add_get("/metrics", _metrics(metrics))
    return app


VERIFY_PATH = "/verify"


def add_verify_route(app: web.Application, statements: StatementIssueStore,
                     catalog: Catalog) -> None:
    """``GET /verify/<code>``: whether a statement with that code was issued (a small HTML
    page, :mod:`app.verify_page`); 404 when none was; 503 when the database is down."""
    async def verify(request: web.Request) -> web.Response:
        raw = request.match_info.get("code", "")
        locale = pick_page_locale(request.query.get("lang"),
                                  request.headers.get("Accept-Language"))
        code = normalized_code(raw)
        try:
            record = await statements.lookup(code) if code is not None else None
        except DatabaseUnavailable:
            return web.Response(status=503, text="503: try again later",
                                headers={"Retry-After": "30", **HEADERS})
        page = page_for(record, code or raw[:64], locale, catalog)
        return web.Response(status=page.status, text=page.html, content_type="text/html",
                            charset="utf-8", headers={**HEADERS, "Content-Language": locale})

    app.router.add_get(VERIFY_PATH + "/{code}", verify)


def drain_on_shutdown(app: web.Application, drain: Callable[[], Awaitable[None]]) -> None:
    """Await ``drain()`` (a channel's background work) when the app shuts down, before its
    connections close."""
    async def on_shutdown(_: web.Application) -> None:
        await drain()

    app.on_shutdown.append(on_shutdown)


def json_type_ok(request: web.BaseRequest) -> bool:
    """Whether the request says its body is JSON: ``application/json``, with no charset or
    UTF-8. Anything else (``text/plain``, a form, no type at all) is answered 415."""
    charset = request.charset
    return request.content_type == _JSON and (charset is None or charset.lower() in _UTF8)


def parse_json(body: bytes) -> object:
    """The body as JSON, with lone surrogates replaced by U+FFFD in every string.

    :class:`MalformedBody` when it is not UTF-8, not JSON, or nested deeper than
    :data:`MAX_DEPTH` (an array or object nested past Python's recursion limit included: it
    is refused, not raised)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("the body is not UTF-8") from None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError; an int of too many digits
        raise MalformedBody("the body is not JSON") from None
    return _checked(value, scrub=_SURROGATE_ESCAPE.search(text) is not None)


def _checked(value: object, *, scrub: bool) -> object:
    """``value`` refused when nested too deep, its strings scrubbed when ``scrub`` (a loop,
    not recursion: the depth is what is being checked)."""
    root: list[object] = [value]
    pending: list[tuple[list[object] | dict[str, object], int]] = [(root, 0)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise MalformedBody("the body is nested too deep")
        if isinstance(node, dict) and scrub:
            items = [(_SURROGATE.sub(_REPLACEMENT, k), v) for k, v in node.items()]
            node.clear()
            node.update(items)
        slots: Iterable[Any] = range(len(node)) if isinstance(node, list) else list(node)
        for slot in slots:
            item = node[slot]
            if isinstance(item, str):
                if scrub:
                    node[slot] = _SURROGATE.sub(_REPLACEMENT, item)
            elif isinstance(item, list | dict):
                pending.append((item, depth + 1))
    return root[0]


def _health(checks: Mapping[str, HealthCheck]) -> Route:
    async def health(_: web.Request) -> web.Response:
        names = list(checks)
        results = await asyncio.gather(*(_probe(name, checks[name]) for name in names))
        parts = {name: result for name, (result, _) in zip(names, results, strict=True)}
        warnings = {name: warning for name, (_, warning) in zip(names, results, strict=True)
                    if warning}
        healthy = all(result == "ok" for result in parts.values())
        body: dict[str, object] = {"status": "ok" if healthy else "unavailable", **parts}
        if warnings:
            body["warnings"] = warnings
        return web.json_response(body, status=200 if healthy else 503)

    return health


async def _probe(name: str, check: HealthCheck) -> tuple[str, str | None]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            warning = await check()
    except TimeoutError:
        log.warning("health check %s timed out", name)
        return "timeout", None
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        log.warning("health check %s failed: %s", name, type(exc).__name__)
        return "unreachable", None
    return "ok", warning


def _metrics(metrics: Metrics) -> Route:
    async def exposition(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    return exposition


def kv_check(kv: KeyValueStore) -> HealthCheck:
    """Reads a key: one round trip to Redis (a ``GET``, as cheap as ``PING``)."""
    async def check() -> None:
        await kv.get("healthz")

    return check


def redis_check(store: RedisSessionStore) -> HealthCheck:
    """:func:`kv_check`, then whether Redis keeps its data through a restart: a warning (still
    healthy) when it has neither AOF nor a replica, or will not say."""
    async def check() -> str | None:
        await store.get("healthz")
        return (await store.persistence()).warning

    return check


def database_check(database: AsyncEngine) -> HealthCheck:
    """``SELECT 1`` on a pooled connection."""
    async def check() -> None:
        async with database.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return check


def http_check(url: str) -> HealthCheck:
    """``GET url`` answers 2xx (the balance service's ``/healthz``)."""
    async def check() -> None:
        timeout = aiohttp.ClientTimeout(total=CHECK_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(url) as response:
            response.raise_for_status()

    return check


async def serve_app(app: web.Application, host: str, port: int,
                    started: Callable[[], None] = lambda: None) -> None:
    """Run ``app`` until SIGTERM, SIGINT or cancellation, then shut down gracefully (the
    channels' background updates are awaited)."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        started()
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await runner.cleanup()

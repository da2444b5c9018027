"""The bot's web app (``run_bot.py serve``): channel webhooks, ``/healthz`` and ``/metrics``.

The Telegram webhook checks ``X-Telegram-Bot-Api-Secret-Token`` in constant time before it
reads the body (401 and nothing processed otherwise), answers 400 to a body that is not an
update, and 200 at once: the update is handled in a background task that shutdown awaits.
Several processes can serve the same bot behind a load balancer; they share Redis and the
database, which is what keeps updates once-only and in order per chat.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

import aiohttp
from aiogram.types import Update
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.metrics import CONTENT_TYPE, Metrics
from flows.ports import KeyValueStore

__all__ = ["SECRET_HEADER", "TELEGRAM_PATH", "HealthCheck", "WebhookChannel", "create_web_app",
           "database_check", "http_check", "kv_check", "serve_app"]

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TELEGRAM_PATH = "/telegram/webhook"
CHECK_TIMEOUT = 1.0  # seconds each health check may take
HealthCheck = Callable[[], Awaitable[None]]  # raises when the part is unreachable
_Route = Callable[[web.Request], Awaitable[web.Response]]


class WebhookChannel(Protocol):
    """What the web app needs from a channel fed by webhook (``TelegramChannel``)."""

    def parse(self, payload: object) -> Update:
        """The body as an update; ``ValueError`` when it is not one."""
        ...

    def accept(self, update: Update) -> bool:
        """Handle the update in the background; false when the backlog is full (the update
        is not taken: Telegram delivers it again later)."""
        ...

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for the background work to finish."""
        ...


def create_web_app(*, metrics: Metrics, checks: Mapping[str, HealthCheck],
                   telegram: WebhookChannel | None = None, telegram_secret: str = "",
                   telegram_path: str = TELEGRAM_PATH) -> web.Application:
    """The app; the Telegram route exists only with a channel and a non-empty secret."""
    app = web.Application()
    app.router.add_get("/healthz", _health(checks))
    app.router.add_get("/metrics", _metrics(metrics))
    if telegram is not None:
        if not telegram_secret:
            raise ValueError("a Telegram webhook needs a secret token")
        app.router.add_post(telegram_path, _telegram_webhook(telegram, telegram_secret))

        async def drain(_: web.Application) -> None:
            await telegram.drain()

        app.on_shutdown.append(drain)
    return app


def _telegram_webhook(channel: WebhookChannel, secret: str) -> _Route:
    expected = secret.encode()

    async def webhook(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response({"ok": False, "error": "unauthorized"}, status=401)
        try:
            update = channel.parse(json.loads(await request.read()))
        except ValueError:  # JSONDecodeError and UnicodeDecodeError included
            return web.json_response({"ok": False, "error": "not an update"}, status=400)
        if not channel.accept(update):  # overloaded: Telegram retries the delivery later
            return web.json_response({"ok": False, "error": "busy"}, status=503,
                                     headers={"Retry-After": "1"})
        return web.json_response({"ok": True})

    return webhook


def _health(checks: Mapping[str, HealthCheck]) -> _Route:
    async def health(_: web.Request) -> web.Response:
        names = list(checks)
        results = await asyncio.gather(*(_probe(name, checks[name]) for name in names))
        parts = dict(zip(names, results, strict=True))
        healthy = all(result == "ok" for result in results)
        return web.json_response({"status": "ok" if healthy else "unavailable", **parts},
                                 status=200 if healthy else 503)

    return health


async def _probe(name: str, check: HealthCheck) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await check()
    except TimeoutError:
        log.warning("health check %s timed out", name)
        return "timeout"
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        log.warning("health check %s failed: %s", name, type(exc).__name__)
        return "unreachable"
    return "ok"


def _metrics(metrics: Metrics) -> _Route:
    async def exposition(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    return exposition


def kv_check(kv: KeyValueStore) -> HealthCheck:
    """Reads a key: one round trip to Redis (a ``GET``, as cheap as ``PING``)."""
    async def check() -> None:
        await kv.get("healthz")

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
    webhook's background updates are awaited)."""
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

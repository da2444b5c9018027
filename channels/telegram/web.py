"""The Telegram webhook route of the web app.

``POST`` on the webhook path checks ``X-Telegram-Bot-Api-Secret-Token`` in constant time
before it reads the body (401 and nothing processed otherwise), then refuses what is malformed
before anything is processed (``app.web``'s rules, no stack trace logged): 415 to another
content type than ``application/json``, 413 to a body over ``client_max_size`` (1 MiB), 400
to a body that is not UTF-8 JSON nested at most 64 deep, or not an update. It answers 200
only once the update is kept in the channel's inbox (:mod:`channels.inbox`), from where it is
served in its chat's turn; 503 with ``Retry-After`` when it is not kept (the backlog is full,
the process is stopping, or the inbox is unreachable): Telegram delivers it again later.
"""

from __future__ import annotations

import hmac
from functools import partial
from typing import Protocol

from aiogram.types import Update
from aiohttp import web

from app.web import MalformedBody, Route, drain_on_shutdown, json_type_ok, parse_json
from flows.ports import StoreUnavailable

__all__ = ["SECRET_HEADER", "TELEGRAM_PATH", "WebhookChannel", "add_telegram_routes"]

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TELEGRAM_PATH = "/telegram/webhook"


class WebhookChannel(Protocol):
    """What the webhook needs from the channel (``TelegramChannel``)."""

    def parse(self, payload: object) -> Update:
        """The body as an update; ``ValueError`` when it is not one."""
        ...

    async def take(self, update: Update, raw: str) -> bool:
        """Keep the update for its chat's turn; false when it is not taken (Telegram delivers
        it again later); :class:`StoreUnavailable` when the inbox is unreachable."""
        ...

    def start(self) -> None:
        """Start the background work (the inbox's keeper)."""
        ...

    async def drain(self, timeout: float = 30.0, *, reopen: bool = True) -> None:
        """Wait for the background work to finish (taking nothing more when not
        ``reopen``)."""
        ...


def add_telegram_routes(app: web.Application, channel: WebhookChannel, *, secret: str,
                        path: str = TELEGRAM_PATH) -> None:
    """Add the webhook (``POST`` on ``path``, guarded by ``secret``) and await the channel's
    background work when the app shuts down. Closing the bot stays with whoever built it."""
    if not secret:
        raise ValueError("a Telegram webhook needs a secret token")
    app.router.add_post(path, _webhook(channel, secret))

    async def start(_: web.Application) -> None:
        channel.start()

    app.on_startup.append(start)
    drain_on_shutdown(app, partial(channel.drain, reopen=False))


def _webhook(channel: WebhookChannel, secret: str) -> Route:
    expected = secret.encode()

    async def webhook(request: web.Request) -> web.Response:  # noqa: PLR0911 - one per answer
        # aiohttp decodes header bytes that are not UTF-8 as lone surrogates: give them back.
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, expected):
            return web.json_response({"ok": False, "error": "unauthorized"}, status=401)
        if not json_type_ok(request):
            return web.json_response({"ok": False, "error": "not application/json"},
                                     status=415)
        try:
            body = await request.read()  # over client_max_size: 413
            payload = parse_json(body)
        except MalformedBody:
            return web.json_response({"ok": False, "error": "not JSON"}, status=400)
        try:
            update = channel.parse(payload)
        except ValueError:
            return web.json_response({"ok": False, "error": "not an update"}, status=400)
        try:
            kept = await channel.take(update, body.decode())
        except StoreUnavailable:  # nothing kept: Telegram delivers it again
            return web.json_response({"ok": False, "error": "unavailable"}, status=503,
                                     headers={"Retry-After": "5"})
        if not kept:  # overloaded or stopping: Telegram retries the delivery later
            return web.json_response({"ok": False, "error": "busy"}, status=503,
                                     headers={"Retry-After": "1"})
        return web.json_response({"ok": True})

    return webhook

"""The Telegram webhook route of the web app.

``POST`` on the webhook path checks ``X-Telegram-Bot-Api-Secret-Token`` in constant time
before it reads the body (401 and nothing processed otherwise), then refuses what is malformed
before anything is processed (``app.web``'s rules, no stack trace logged): 415 to another
content type than ``application/json``, 413 to a body over ``client_max_size`` (1 MiB), 400
to a body that is not UTF-8 JSON nested at most 64 deep, or not an update. It answers 503 with
``Retry-After`` when the channel's backlog is full (Telegram delivers the update again later),
and 200 at once otherwise: the update is handled in a background task that the app's shutdown
awaits.
"""

from __future__ import annotations

import hmac
from typing import Protocol

from aiogram.types import Update
from aiohttp import web

from app.web import MalformedBody, Route, drain_on_shutdown, json_type_ok, parse_json

__all__ = ["SECRET_HEADER", "TELEGRAM_PATH", "WebhookChannel", "add_telegram_routes"]

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TELEGRAM_PATH = "/telegram/webhook"


class WebhookChannel(Protocol):
    """What the webhook needs from the channel (``TelegramChannel``)."""

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


def add_telegram_routes(app: web.Application, channel: WebhookChannel, *, secret: str,
                        path: str = TELEGRAM_PATH) -> None:
    """Add the webhook (``POST`` on ``path``, guarded by ``secret``) and await the channel's
    background work when the app shuts down. Closing the bot stays with whoever built it."""
    if not secret:
        raise ValueError("a Telegram webhook needs a secret token")
    app.router.add_post(path, _webhook(channel, secret))
    drain_on_shutdown(app, channel.drain)


def _webhook(channel: WebhookChannel, secret: str) -> Route:
    expected = secret.encode()

    async def webhook(request: web.Request) -> web.Response:
        # aiohttp decodes header bytes that are not UTF-8 as lone surrogates: give them back.
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, expected):
            return web.json_response({"ok": False, "error": "unauthorized"}, status=401)
        if not json_type_ok(request):
            return web.json_response({"ok": False, "error": "not application/json"},
                                     status=415)
        try:
            payload = parse_json(await request.read())  # over client_max_size: 413
        except MalformedBody:
            return web.json_response({"ok": False, "error": "not JSON"}, status=400)
        try:
            update = channel.parse(payload)
        except ValueError:
            return web.json_response({"ok": False, "error": "not an update"}, status=400)
        if not channel.accept(update):  # overloaded: Telegram retries the delivery later
            return web.json_response({"ok": False, "error": "busy"}, status=503,
                                     headers={"Retry-After": "1"})
        return web.json_response({"ok": True})

    return webhook

"""The WhatsApp webhook routes of the web app, and the agent desk's way back to members.

``GET`` is Meta's verification handshake: ``hub.mode=subscribe`` and ``hub.verify_token``
equal to ``WHATSAPP_VERIFY_TOKEN`` (constant time) echo ``hub.challenge`` as text; anything
else is 403. ``POST`` carries notifications: the ``X-Hub-Signature-256`` HMAC of the raw body
under ``WHATSAPP_APP_SECRET`` is checked first (missing or wrong: 401, nothing read further).
What is malformed is then refused before anything is processed (``app.web``'s rules, no stack
trace logged): 415 to another content type than ``application/json``, 400 to a body that is
not UTF-8 JSON nested at most 64 deep; a body over ``client_max_size`` (1 MiB) is 413 before
its signature can be checked. Anything else is 200 once its messages are kept in the
channel's inbox (served in their chats' turns; awaited at shutdown), or 503 with
``Retry-After`` when they are not (the backlog is full, or the inbox is unreachable): Meta
delivers the notification again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from app.web import json_type_ok, parse_json
from channels.whatsapp.channel import CHANNEL, WhatsAppChannel
from channels.whatsapp.inbound import SIGNATURE_HEADER, signature_ok
from flows.ports import StoreUnavailable
from flows.types import Reply, SessionKey

__all__ = ["WHATSAPP_PATH", "WhatsAppOutbox", "add_whatsapp_routes"]

WHATSAPP_PATH = "/whatsapp/webhook"
_Route = Callable[[web.Request], Awaitable[web.Response]]


def add_whatsapp_routes(app: web.Application, channel: WhatsAppChannel, *,
                        path: str = WHATSAPP_PATH) -> None:
    """Add the webhook (``GET`` and ``POST`` on ``path``) and await the channel's background
    work when the app shuts down. Closing the channel stays with whoever built it."""
    app.router.add_get(path, _handshake(channel))
    app.router.add_post(path, _notifications(channel))

    async def start(_: web.Application) -> None:
        channel.start()

    async def drain(_: web.Application) -> None:
        await channel.drain(reopen=False)

    app.on_startup.append(start)
    app.on_shutdown.append(drain)


def _handshake(channel: WhatsAppChannel) -> _Route:
    async def verify(request: web.Request) -> web.Response:
        query = request.query
        echo = channel.challenge(query.get("hub.mode", ""), query.get("hub.verify_token", ""),
                                 query.get("hub.challenge", ""))
        if echo is None:
            return web.Response(status=403, text="forbidden")
        return web.Response(text=echo, content_type="text/plain")

    return verify


def _notifications(channel: WhatsAppChannel) -> _Route:
    secret = channel.config.app_secret

    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()  # over client_max_size: 413
        if not signature_ok(secret, body, request.headers.get(SIGNATURE_HEADER)):
            return web.json_response({"error": "bad signature"}, status=401)
        if not json_type_ok(request):
            return web.json_response({"error": "not application/json"}, status=415)
        try:
            notification = channel.parse(parse_json(body))
        except ValueError:  # MalformedBody included
            return web.json_response({"error": "not a notification"}, status=400)
        try:
            kept = await channel.take(notification)
        except StoreUnavailable:  # not kept: Meta delivers the notification again
            return web.json_response({"error": "unavailable"}, status=503,
                                     headers={"Retry-After": "5"})
        if not kept:  # overloaded or stopping: Meta delivers it again later
            return web.json_response({"error": "busy"}, status=503,
                                     headers={"Retry-After": "1"})
        return web.json_response({"ok": True})

    return webhook


class WhatsAppOutbox:
    """:class:`~flows.ports.MemberOutbox` for WhatsApp chats: an agent's answer, a ticket
    closed, a reminder, sent by the channel's own render and send path under the chat's lock
    (:meth:`WhatsAppChannel.deliver_later`). Inside the member's 24-hour window it is sent as
    it is; outside, as the configured template (Meta refuses free text there): ``template``
    when given (the alerts' outbox: ``WHATSAPP_ALERT_TEMPLATE``), else the reply template."""

    def __init__(self, channel: WhatsAppChannel, *, template: str | None = None) -> None:
        self._channel = channel
        self._template = template or None  # alerts: WHATSAPP_ALERT_TEMPLATE

    async def deliver(self, key: SessionKey, replies: list[Reply]) -> bool:
        """Send the replies; false when the member cannot be reached on WhatsApp."""
        if key.channel != CHANNEL:
            raise ValueError(f"WhatsAppOutbox cannot deliver to a {key.channel} chat")
        return await self._channel.deliver_later(key.chat_id, replies,
                                                 template=self._template)

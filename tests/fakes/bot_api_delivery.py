"""Update delivery of the fake Bot API server: the ``getUpdates`` queue and the webhook.

As on Telegram, an update stays queued until a ``getUpdates`` call confirms it with a higher
``offset``; ``getUpdates`` answers 409 while a webhook is set; ``setWebhook`` or
``deleteWebhook`` with ``drop_pending_updates`` empties the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp

from tests.fakes.bot_api_updates import UpdateFactory
from tests.fakes.bot_api_wire import ApiError, webhook_reply

SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_METHODS: Final = frozenset({"setWebhook", "deleteWebhook", "getWebhookInfo"})
WEBHOOK_CONFLICT: Final = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
REGISTERED: Final[Any] = object()  # the secret given to setWebhook


@dataclass
class Webhook:
    """What ``setWebhook`` registered (``url`` empty: none)."""

    url: str = ""
    secret: str | None = None
    token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Delivery:
    """Queued updates for long polling, and the registered webhook."""

    def __init__(self, updates: UpdateFactory, poll_cap: float) -> None:
        self.updates = updates
        self.poll_cap = poll_cap
        self.webhook = Webhook()
        self._queue: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._closing = False

    def close(self) -> None:
        """Long polls in progress return at once."""
        self._closing = True
        self._arrived.set()

    def push(self, update: dict[str, Any]) -> int:
        """Queue an update (an ``update_id`` is added when missing); returns its id."""
        if "update_id" not in update:
            update["update_id"] = self.updates.next_update_id()
        self._queue.append(update)
        self._queue.sort(key=lambda u: int(u["update_id"]))
        self._arrived.set()
        return int(update["update_id"])

    @property
    def pending(self) -> int:
        """Updates queued and not yet confirmed."""
        return len(self._queue)

    async def get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """``getUpdates``: confirm by ``offset``, wait up to ``min(timeout, poll_cap)``."""
        if self.webhook.url:
            raise ApiError(409, WEBHOOK_CONFLICT)
        self._confirm(int(params.get("offset") or 0))
        limit = int(params.get("limit") or 100)
        wait = min(float(params.get("timeout") or 0), self.poll_cap)
        if not self._queue and wait > 0 and not self._closing:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), wait)
        return self._queue[:limit]

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            del self._queue[: max(0, len(self._queue) + offset)]
        elif offset > 0:
            self._queue = [u for u in self._queue if int(u["update_id"]) >= offset]

    def webhook_method(self, token: str, method: str, params: dict[str, Any]) -> Any:
        """``setWebhook`` (an empty url removes it), ``deleteWebhook``, ``getWebhookInfo``."""
        if method == "getWebhookInfo":
            return {
                "url": self.webhook.url,
                "has_custom_certificate": False,
                "pending_update_count": len(self._queue),
                **self.webhook.extra,
            }
        if params.get("drop_pending_updates"):
            self._queue.clear()
        url = str(params.get("url") or "") if method == "setWebhook" else ""
        extra: dict[str, Any] = {
            k: params[k] for k in ("max_connections", "allowed_updates") if k in params
        }
        self.webhook = Webhook(url, params.get("secret_token") if url else None, token, extra)
        return True

    async def post(
        self, client: aiohttp.ClientSession, update: dict[str, Any], secret: Any, url: str | None
    ) -> tuple[int, tuple[str, dict[str, Any]] | None]:
        """POST an update as Telegram does: the HTTP status and any method answered."""
        target = url or self.webhook.url
        if not target:
            raise RuntimeError("no webhook registered")
        value = self.webhook.secret if secret is REGISTERED else secret
        headers = {} if value is None else {SECRET_HEADER: str(value)}
        async with client.post(target, json=update, headers=headers) as response:
            return response.status, await webhook_reply(response)

"""Per-chat state of the WhatsApp channel: order within a process, what the store keeps per
chat, and the channel's own metrics."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from prometheus_client import CollectorRegistry, Counter

from channels.whatsapp.locale import LocaleGuesser
from flows.i18n import DEFAULT_LOCALE, LOCALES
from flows.ports import Clock, KeyValueStore, StoreUnavailable
from flows.types import Reply

__all__ = ["STATUSES", "WINDOW", "ChatState", "WhatsAppCounters"]

log = logging.getLogger(__name__)
WINDOW = 24 * 3600.0  # Meta's customer-service window after the member's last message
WINDOW_MARGIN = 60.0  # a reply this close to the window's end goes as a template
SEEN_TTL = WINDOW + 3600.0
CHOICES_TTL = 24 * 3600.0
LOCALE_TTL = 30 * 24 * 3600.0

STATUSES = frozenset({"sent", "delivered", "read", "failed", "deleted", "warning"})


class WhatsAppCounters:
    """Statuses Meta reported, messages it refused or could not deliver, templates sent."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.statuses = Counter("bot_whatsapp_statuses",
                                "Statuses of sent WhatsApp messages reported by Meta.",
                                ["status"], registry=registry)
        self.failures = Counter("bot_whatsapp_failures",
                                "WhatsApp messages refused or not delivered, by error code.",
                                ["code"], registry=registry)
        self.templates = Counter("bot_whatsapp_templates",
                                 "Replies sent as a template outside the 24-hour window.",
                                 registry=registry)

    def status(self, status: str) -> None:
        """Count one status (unknown ones as ``other``, keeping the label set small)."""
        self.statuses.labels(status if status in STATUSES else "other").inc()


class ChatState:
    """What the channel keeps per chat in the key-value store, named by an HMAC pseudonym of
    the number (never the number): when the member last wrote, the numbered choices last
    offered, the conversation's language. A store fault never stops a reply: it is counted,
    logged and answered with the safe default."""

    def __init__(self, kv: KeyValueStore, secret: bytes, clock: Clock,
                 on_fault: Callable[[], None], guesser: LocaleGuesser | None = None) -> None:
        self._kv = kv
        self._secret = secret
        self._clock = clock
        self._on_fault = on_fault
        self._guesser = guesser or LocaleGuesser()

    def ref(self, wa_id: str) -> str:
        """The chat's pseudonym in store keys."""
        return hmac.new(self._secret, f"wa:{wa_id}".encode(), hashlib.sha256).hexdigest()[:24]

    async def note_seen(self, ref: str, sent_at: float | None) -> None:
        """The member wrote (at ``sent_at`` by Meta's clock): the 24-hour window opens."""
        now = self._clock.now().timestamp()
        at = min(now, sent_at) if sent_at is not None else now
        await self._quietly(self._kv.put(f"wa:seen:{ref}", repr(at), SEEN_TTL))

    async def in_window(self, ref: str) -> bool:
        """Whether free text may still be sent (with a margin before the window closes)."""
        try:
            seen = await self._kv.get(f"wa:seen:{ref}")
        except StoreUnavailable:
            self._on_fault()
            return True  # try free text; Meta's 131047 turns it into a template after all
        if seen is None:
            return False
        return self._clock.now().timestamp() - float(seen) < WINDOW - WINDOW_MARGIN

    async def numbered_choice(self, ref: str, text: str) -> str | None:
        """The data of the choice a typed number picks from the last numbered list."""
        typed = text.strip()
        if not (typed.isascii() and typed.isdigit() and len(typed) <= 2 and int(typed) > 0):
            return None
        try:
            raw = await self._kv.get(f"wa:choices:{ref}")
        except StoreUnavailable:
            self._on_fault()
            return None
        choices = json.loads(raw) if raw else []
        number = int(typed)
        return str(choices[number - 1]) if number <= len(choices) else None

    async def remember_choices(self, ref: str, choices: list[str]) -> None:
        """Keep the numbered choices just offered (none: forget the earlier ones)."""
        name = f"wa:choices:{ref}"
        await self._quietly(self._kv.put(name, json.dumps(choices), CHOICES_TTL) if choices
                            else self._kv.delete(name))

    async def locale(self, ref: str, replies: Sequence[Reply]) -> str:
        """The language of ``replies``, remembered; the remembered one when they do not say."""
        guessed = self._guesser.guess(replies)
        if guessed is None:
            return await self.stored_locale(ref)
        await self._quietly(self._kv.put(f"wa:lang:{ref}", guessed, LOCALE_TTL))
        return guessed

    async def stored_locale(self, ref: str) -> str:
        """The conversation's last known language (Indonesian when unknown)."""
        try:
            stored = await self._kv.get(f"wa:lang:{ref}")
        except StoreUnavailable:
            self._on_fault()
            return DEFAULT_LOCALE
        return stored if stored in LOCALES else DEFAULT_LOCALE

    async def _quietly(self, work: Awaitable[None]) -> None:
        try:
            await work
        except StoreUnavailable:
            self._on_fault()
            log.warning("whatsapp chat state not saved: the store is unavailable")

"""What the WhatsApp channel remembers per chat, and its own metrics.

:class:`ChatView` lives in the chat's session (``Session.view``), loaded and saved by the
engine with each member message (no Redis call of the channel's own): when the member last
wrote, by the message's own timestamp (the 24-hour customer-service window), and the language
of the last replies (for the channel's words outside the engine, such as an apology).
:class:`SentTurns` remembers, in this process, which replies each sent message carried, so
that a ``failed`` status can be acted on.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from flows.i18n import DEFAULT_LOCALE, LOCALES
from flows.types import Reply

__all__ = ["STATUSES", "WINDOW", "WINDOW_MARGIN", "ChatView", "SentTurns", "Turn",
           "WhatsAppCounters"]

WINDOW = 24 * 3600.0  # Meta's customer-service window after the member's last message
WINDOW_MARGIN = 60.0  # a reply this close to the window's end goes as a template
STATUSES = frozenset({"sent", "delivered", "read", "failed", "deleted", "warning"})


class WhatsAppCounters:
    """Statuses Meta reported, messages it refused or could not deliver, templates sent, what
    was done about a failed reply, read receipts that failed."""

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
        self.failed_replies = Counter(
            "bot_whatsapp_failed_replies",
            "Replies Meta reported failed, by what was done: resent as the template "
            "(template) or recorded (recorded).", ["action"], registry=registry)
        self.read_failures = Counter("bot_whatsapp_read_failures",
                                     "Member messages that could not be marked as read.",
                                     registry=registry)

    def status(self, status: str) -> None:
        """Count one status (unknown ones as ``other``, keeping the label set small)."""
        self.statuses.labels(status if status in STATUSES else "other").inc()


@dataclass
class ChatView:
    """The channel's memory of a chat, kept in ``Session.view``: ``seen`` is when the member
    last wrote (Unix seconds, by the message's own timestamp, never later than our clock),
    ``locale`` the language of the last replies."""

    seen: float | None = None
    locale: str = ""

    @classmethod
    def load(cls, view: Mapping[str, Any]) -> ChatView:
        """The view as a session keeps it (anything unreadable is forgotten)."""
        seen, locale = view.get("seen"), view.get("locale")
        return cls(float(seen) if isinstance(seen, int | float) and not isinstance(seen, bool)
                   else None, locale if locale in LOCALES else "")

    def save(self, view: MutableMapping[str, Any]) -> None:
        """Write the view back into the session's dict (other keys are left alone)."""
        for name, value in (("seen", self.seen), ("locale", self.locale)):
            if value:
                view[name] = value
            else:
                view.pop(name, None)

    def wrote(self, sent_at: float | None, now: float) -> None:
        """The member wrote a message at ``sent_at`` (Meta's timestamp; ``now`` when unknown
        or in the future): the window runs from their latest message."""
        at = min(now, sent_at) if sent_at is not None else now
        self.seen = at if self.seen is None else max(self.seen, at)

    def window_open(self, now: float) -> bool:
        """Whether free text may still be sent (with a margin before the window closes)."""
        return self.seen is not None and now - self.seen < WINDOW - WINDOW_MARGIN

    def spoke(self, replies: Sequence[Reply]) -> str:
        """Note the language of ``replies`` (the engine sets each one's); the chat's language,
        Indonesian when never known."""
        said = next((r.locale for r in reversed(replies) if r.locale in LOCALES), "")
        self.locale = said or self.locale
        return self.locale or DEFAULT_LOCALE


@dataclass
class Turn:
    """Replies sent to a member together, and what they were sent under."""

    wa_id: str
    replies: tuple[Reply, ...]
    locale: str
    seen: float | None  # when the member last wrote, as the view said when they were sent
    template: bool  # sent as the template already
    acted: bool = False  # a failed status was acted on once: never twice for one turn
    template_name: str = ""  # the template a resend uses (an alert's); empty: the reply one


class SentTurns:
    """The :class:`Turn` each message id sent by this process belongs to, the newest
    ``size`` message ids only."""

    def __init__(self, size: int = 20_000) -> None:
        self._size = size
        self._turns: OrderedDict[str, Turn] = OrderedDict()

    def __len__(self) -> int:
        return len(self._turns)

    def add(self, message_id: str, turn: Turn) -> None:
        """Remember that ``message_id`` carried part of ``turn``."""
        self._turns[message_id] = turn
        while len(self._turns) > self._size:
            self._turns.popitem(last=False)

    def get(self, message_id: str) -> Turn | None:
        """The turn of a message this process sent, if still remembered."""
        return self._turns.get(message_id)

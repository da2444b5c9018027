"""Transport-free value types shared by the engine, the flows and every channel.

Channels turn platform updates into :class:`Event` objects and render :class:`Reply` objects.
Flows never see a platform type: they read an event and a :class:`Session` and return
:class:`Say` items holding message ids (:class:`Text`) that the engine translates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class SessionKey:
    """Identifies one conversation: a chat on one channel."""

    channel: str
    chat_id: str

    def __str__(self) -> str:
        return f"{self.channel}:{self.chat_id}"


class EventKind(StrEnum):
    """What the member did."""

    TEXT = "text"
    BUTTON = "button"
    CONTACT = "contact"
    COMMAND = "command"
    AGENT = "agent"


@dataclass(frozen=True, slots=True)
class Event:
    """One thing a member did, as a channel saw it.

    ``text`` holds typed text (for a command: the arguments after it), ``data`` the payload of a
    pressed button or the command name without the slash, ``phone`` a shared contact's number.
    ``contact_is_own`` is true only when the platform proved the contact is the sender's own.
    An ``AGENT`` event comes from the support desk, not the member: ``data`` says what
    happened (``message``, ``claimed``, ``closed``, ``reminder``, ``idle_closed``), ``text`` holds
    the agent's words and ``sender`` the agent's first name.
    """

    kind: EventKind
    text: str = ""
    data: str = ""
    phone: str = ""
    contact_is_own: bool = False
    language_code: str = ""
    update_id: str = ""
    sender: str = ""

    @classmethod
    def message(cls, text: str, *, language_code: str = "") -> Event:
        """A typed message; a leading ``/command`` becomes a command event."""
        stripped = text.strip()
        if stripped.startswith("/") and len(stripped) > 1:
            head, _, rest = stripped[1:].partition(" ")
            name = head.split("@", 1)[0].lower()
            return cls(EventKind.COMMAND, text=rest.strip(), data=name,
                       language_code=language_code)
        return cls(EventKind.TEXT, text=text, language_code=language_code)

    @classmethod
    def button(cls, data: str, *, language_code: str = "") -> Event:
        """A pressed button carrying ``data``."""
        return cls(EventKind.BUTTON, data=data, language_code=language_code)

    @classmethod
    def agent(cls, what: str, text: str = "", *, sender: str = "") -> Event:
        """Something the support desk did for this chat's ticket."""
        return cls(EventKind.AGENT, text=text, data=what, sender=sender)

    @classmethod
    def contact(cls, phone: str, *, own: bool, language_code: str = "") -> Event:
        """A shared contact card."""
        return cls(EventKind.CONTACT, phone=phone, contact_is_own=own,
                   language_code=language_code)


@dataclass(frozen=True, slots=True)
class Text:
    """A message id (the English source text) with its parameters, translated by the engine.

    ``plural`` and ``n`` select a plural form with ngettext. Parameter values that are
    :class:`Money` or :class:`datetime.date` are formatted for the member's locale.
    """

    msgid: str
    params: Mapping[str, Any] = field(default_factory=dict)
    plural: str | None = None
    n: int | None = None


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of Rupiah, formatted with Babel in the member's locale."""

    rupiah: int


@dataclass(frozen=True, slots=True)
class Month:
    """A contribution period (``"YYYY-MM"``), written as the locale names months."""

    year: int
    month: int

    @classmethod
    def parse(cls, period: str) -> Month:
        """``"2026-10"`` -> ``Month(2026, 10)``."""
        year, month = period.split("-", 1)
        return cls(int(year), int(month))

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True, slots=True)
class Option:
    """A choice offered as a button: a translatable label and the data it sends back."""

    label: Text
    data: str


class SayKind(StrEnum):
    """What a flow asks a channel to do."""

    MESSAGE = "message"
    ASK_CONTACT = "ask_contact"
    DELETE_MEMBER_MESSAGE = "delete_member_message"
    DOCUMENT = "document"
    PHOTO = "photo"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file a reply carries: its name as the member sees it, its MIME type
    (``"application/pdf"``, ``"image/png"``) and its bytes. Channels send it and keep nothing."""

    filename: str
    mime: str
    content: bytes

    def __repr__(self) -> str:  # the bytes would flood a log line or a test failure
        return (f"Attachment(filename={self.filename!r}, mime={self.mime!r}, "
                f"content=<{len(self.content)} bytes>)")


@dataclass(frozen=True, slots=True)
class Say:
    """One item of a flow's answer, before translation.

    ``options`` are rows of buttons. ``ASK_CONTACT`` asks for the member's own phone number
    (Telegram shows a share-contact button). ``DELETE_MEMBER_MESSAGE`` asks the channel to delete
    the member's last message because it held a NIK or OTP. ``DOCUMENT`` and ``PHOTO`` send
    ``attachment`` as a file or a picture, ``text`` being its caption.
    """

    text: Text | None
    options: tuple[tuple[Option, ...], ...] = ()
    kind: SayKind = SayKind.MESSAGE
    attachment: Attachment | None = None


@dataclass(frozen=True, slots=True)
class Button:
    """A rendered button: translated label and the data it sends back."""

    label: str
    data: str


@dataclass(frozen=True, slots=True)
class Reply:
    """What a channel renders: translated text, rows of buttons and the kind of action;
    ``locale`` is the language it was translated into (for a channel's own words). A
    ``DOCUMENT`` or ``PHOTO`` reply carries its file in ``attachment`` (``text`` is the
    caption)."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    kind: SayKind = SayKind.MESSAGE
    locale: str = ""
    attachment: Attachment | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """The per-chat conversation state persisted between updates (JSON in the session store).

    ``view`` is the channel's memory of the member's screen (a share-contact keyboard is up,
    the member blocked the bot); flows never read it. ``shown`` holds the ``(label, data)`` of
    the buttons the engine's last replies showed, so that a label or a button's number typed
    instead of pressed is read as the press (:mod:`flows.typed_buttons`). The chat's links
    are not kept here: they decide who sees a balance, so every update reads them from the
    database."""

    state: str
    locale: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    updated_at: float = 0.0
    view: Mapping[str, Any] = field(default_factory=dict)
    shown: tuple[tuple[str, str], ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        raw: dict[str, Any] = {"state": self.state, "locale": self.locale,
                               "data": dict(self.data), "updated_at": self.updated_at}
        if self.view:
            raw["view"] = dict(self.view)
        if self.shown:
            raw["shown"] = [list(pair) for pair in self.shown]
        return raw

    @classmethod
    def from_json_dict(cls, raw: Mapping[str, Any]) -> Session:
        """Rebuild a session from :meth:`to_json_dict` output."""
        data, view, shown = raw.get("data"), raw.get("view"), raw.get("shown")
        return cls(state=str(raw.get("state", "")), locale=str(raw.get("locale", "")),
                   data=dict(data) if isinstance(data, Mapping) else {},
                   updated_at=_number(raw.get("updated_at")),
                   view=dict(view) if isinstance(view, Mapping) else {},
                   shown=_pairs(shown))


def _pairs(raw: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list):
        return ()
    return tuple((str(p[0]), str(p[1])) for p in raw if isinstance(p, list) and len(p) == 2)


def _number(raw: object) -> float:
    return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else 0.0

"""Outbound WhatsApp messages and the Graph API client that sends them (pywa's async client).

The message types are plain values, so rendering and tests need no pywa. :class:`PywaGraph`
sends them with ``pywa_async.WhatsApp`` over an httpx client whose base URL is
``WHATSAPP_API_BASE`` (pywa fixes its own base URL; the client is ours, so it is set after pywa
has built it). Every API error becomes a :class:`GraphError` carrying Meta's error code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import httpx
from pywa.types.callback import Button, Section, SectionList, SectionRow
from pywa_async.client import WhatsApp
from pywa_async.errors import WhatsAppError
from pywa_async.types.templates import TemplateLanguage

__all__ = ["DEFAULT_API_BASE", "ButtonsMessage", "Graph", "GraphError", "ListMessage",
           "Outgoing", "PywaGraph", "TemplateMessage", "TextMessage", "template_language"]

DEFAULT_API_BASE = "https://graph.facebook.com/v21.0"
RATE_LIMIT = 130429  # the business number sends too fast
PAIR_RATE_LIMIT = 131056  # too many messages to one recipient
REENGAGEMENT = 131047  # free-form message outside the 24-hour window
UNDELIVERABLE = 131026  # not on WhatsApp, old app version, or blocked the business


@dataclass(frozen=True, slots=True)
class TextMessage:
    """A plain text message (at most 4,096 characters)."""

    text: str


@dataclass(frozen=True, slots=True)
class ButtonsMessage:
    """Interactive reply buttons: 1-3 ``(id, title)`` pairs, titles at most 20 characters,
    body at most 1,024 characters."""

    text: str
    buttons: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ListMessage:
    """An interactive list: one section of 1-10 ``(id, title)`` rows (titles at most 24
    characters) opened by a button labelled ``button`` (at most 20)."""

    text: str
    button: str
    section: str
    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class TemplateMessage:
    """An approved template with at most one body parameter."""

    name: str
    language: str
    body: str | None = None


Outgoing = TextMessage | ButtonsMessage | ListMessage | TemplateMessage


_LANGUAGES = frozenset(str(language.value) for language in TemplateLanguage
                       if str(language.value)[:1].islower())  # not pywa's UNKNOWN or None


class GraphError(Exception):
    """The Graph API refused a message: Meta's ``code`` (e.g. 131047) and its title."""

    def __init__(self, code: int, title: str = "", status: int = 0) -> None:
        super().__init__(f"WhatsApp error {code:_}: {title}")
        self.code = code
        self.title = title
        self.status = status


class Graph(Protocol):
    """Sends one message to one WhatsApp user, marks a member's message read; raises
    :class:`GraphError`."""

    async def send(self, to: str, message: Outgoing) -> str:
        """Send ``message`` to ``to`` (a wa_id); returns the new message id."""
        ...

    async def mark_read(self, message_id: str) -> None:
        """Mark a member's message (and the earlier ones of the chat) as read: blue ticks."""
        ...


def template_language(code: str) -> str:
    """``code`` when Meta knows it as a template language (``id``, ``en_US``, ...), else
    ``ValueError``."""
    if code not in _LANGUAGES:
        raise ValueError(f"{code!r} is not a WhatsApp template language")
    return code


class PywaGraph:
    """:class:`Graph` on pywa's async client, for one business phone number."""

    def __init__(self, *, token: str, phone_number_id: str, api_base: str = DEFAULT_API_BASE,
                 timeout: float = 10.0) -> None:
        # pywa logs whole requests (numbers and texts) at DEBUG: never let that through.
        logging.getLogger("pywa").setLevel(max(logging.INFO,
                                               logging.getLogger("pywa").level))
        self._http = httpx.AsyncClient(timeout=timeout)
        self._wa = WhatsApp(phone_id=phone_number_id, token=token, session=self._http)
        self._http.base_url = httpx.URL(api_base.rstrip("/") + "/")

    async def send(self, to: str, message: Outgoing) -> str:
        """Send one message; :class:`GraphError` on any API error."""
        try:
            if isinstance(message, TemplateMessage):
                body = [{"type": "body", "parameters": [{"type": "text", "text": message.body}]}]
                template = await self._wa.send_template(
                    to=to, name=message.name, language=TemplateLanguage(message.language),
                    params=body if message.body is not None else None)
                return str(template.id)
            sent = await self._wa.send_message(to=to, text=message.text,
                                               buttons=_markup(message))
        except WhatsAppError as exc:
            status = exc.raw_response.status_code if exc.raw_response is not None else 0
            raise GraphError(exc.code, exc.message or "", status) from None
        except httpx.HTTPError as exc:  # unreachable, timed out: code 0, never retried blindly
            raise GraphError(0, type(exc).__name__) from None
        return str(sent.id)

    async def mark_read(self, message_id: str) -> None:
        """``POST /{phone_number_id}/messages`` with ``status: read``; :class:`GraphError` on
        any API error."""
        try:
            await self._wa.mark_message_as_read(message_id)
        except WhatsAppError as exc:
            status = exc.raw_response.status_code if exc.raw_response is not None else 0
            raise GraphError(exc.code, exc.message or "", status) from None
        except httpx.HTTPError as exc:
            raise GraphError(0, type(exc).__name__) from None

    async def close(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()


def _markup(message: TextMessage | ButtonsMessage | ListMessage,
            ) -> list[Button] | SectionList | None:
    if isinstance(message, ButtonsMessage):
        return [Button(title=title, callback_data=ident) for ident, title in message.buttons]
    if isinstance(message, ListMessage):
        rows = [SectionRow(title=title, callback_data=ident) for ident, title in message.rows]
        return SectionList(button_title=message.button,
                           sections=[Section(title=message.section, rows=rows)])
    return None

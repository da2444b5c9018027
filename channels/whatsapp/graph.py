"""Outbound WhatsApp messages and the Graph API client that sends them (aiohttp).

The message types are plain values, so rendering and tests need no HTTP. :class:`GraphClient`
posts them as Meta's JSON to ``WHATSAPP_API_BASE`` over a bounded aiohttp connection pool, and
uploads files (``POST /{phone_number_id}/media``, multipart) for document and image messages,
which name the upload by its media id. Every API error becomes a :class:`GraphError` carrying
Meta's error code (0 when the API was unreachable or too slow).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from pywa_async.types.templates import TemplateLanguage

__all__ = ["CONNECTIONS", "DEFAULT_API_BASE", "ButtonsMessage", "DocumentMessage", "Graph",
           "GraphClient", "GraphError", "ImageMessage", "ListMessage", "Outgoing",
           "TemplateMessage", "TextMessage", "template_language"]

DEFAULT_API_BASE = "https://graph.facebook.com/v21.0"
CONNECTIONS = 64  # connections to the Graph API open at once, at most
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


@dataclass(frozen=True, slots=True)
class DocumentMessage:
    """A document uploaded before (``media_id``), shown as ``filename``, with a caption of at
    most 1,024 characters (empty: none)."""

    media_id: str
    filename: str
    caption: str = ""


@dataclass(frozen=True, slots=True)
class ImageMessage:
    """A picture uploaded before (``media_id``), with a caption of at most 1,024 characters
    (empty: none)."""

    media_id: str
    caption: str = ""


Outgoing = (TextMessage | ButtonsMessage | ListMessage | TemplateMessage | DocumentMessage
            | ImageMessage)


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

    async def upload_media(self, content: bytes, *, filename: str, mime: str) -> str:
        """Upload a file for a document or image message; returns its media id."""
        ...


def template_language(code: str) -> str:
    """``code`` when Meta knows it as a template language (``id``, ``en_US``, ...), else
    ``ValueError``."""
    if code not in _LANGUAGES:
        raise ValueError(f"{code!r} is not a WhatsApp template language")
    return code


class GraphClient:
    """:class:`Graph` on aiohttp, for one business phone number: one JSON ``POST`` per call
    to ``{api_base}/{phone_number_id}/messages``.

    The client has explicit bounds, so an overloaded or silent API can slow the channel but
    never wedge it: at most ``connections`` connections (the channel serves at most that
    many messages at once); ``timeout`` seconds for a whole call, waiting for a pooled
    connection included, and ``connect_timeout`` to open one. A call that times out gives its
    connection back (aiohttp closes it) and raises :class:`GraphError` code 0.

    Why not pywa's client: it builds pydantic models for every call and answer and sends
    through httpx, whose pool (httpcore 1.0.9, encode/httpcore#1093) loses a connection
    for good with each request cancelled or timed out while waiting: under load every later
    send failed with ``PoolTimeout``. The request bodies are Meta's documented JSON, written
    here; pywa still supplies the list of template languages.
    """

    def __init__(self, *, token: str, phone_number_id: str, api_base: str = DEFAULT_API_BASE,
                 timeout: float = 10.0, connect_timeout: float = 5.0,
                 connections: int = CONNECTIONS) -> None:
        if connections < 1 or timeout <= 0 or connect_timeout <= 0:
            raise ValueError("connections and timeouts must be positive")
        self._url = f"{api_base.rstrip('/')}/{phone_number_id}/messages"
        self._media_url = f"{api_base.rstrip('/')}/{phone_number_id}/media"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    @property
    def connections(self) -> int:
        """The most connections open at once."""
        return self._connections

    async def send(self, to: str, message: Outgoing) -> str:
        """Send one message; :class:`GraphError` on any API error."""
        answer = await self._post(_payload(to, message))
        try:
            return str(answer["messages"][0]["id"])
        except (KeyError, IndexError, TypeError):
            raise GraphError(0, "no message id in the answer") from None

    async def mark_read(self, message_id: str) -> None:
        """``POST /{phone_number_id}/messages`` with ``status: read``; :class:`GraphError` on
        any API error."""
        await self._post({"messaging_product": "whatsapp", "status": "read",
                          "message_id": message_id})

    async def upload_media(self, content: bytes, *, filename: str, mime: str) -> str:
        """``POST /{phone_number_id}/media`` as multipart form data (``messaging_product``,
        ``type`` and the ``file`` part): the media id Meta answers, for a
        :class:`DocumentMessage` or :class:`ImageMessage`; :class:`GraphError` on any API
        error. The bytes are not kept."""
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", mime)
        # A stream, not the bytes: aiohttp writes a large bytes value in one go on the loop.
        form.add_field("file", io.BytesIO(content), filename=filename, content_type=mime)
        answer = await self._request(self._media_url, form, None)
        media_id = answer.get("id")
        if not isinstance(media_id, str) or not media_id:
            raise GraphError(0, "no media id in the answer")
        return media_id

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections,
                                             limit_per_host=self._connections)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, headers=self._headers,
                skip_auto_headers=("User-Agent",))
        return self._session

    async def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._request(self._url, _dumps(payload).encode(), _JSON)

    async def _request(self, url: str, data: bytes | aiohttp.FormData,
                       headers: dict[str, str] | None) -> dict[str, Any]:
        try:
            async with self._client().post(url, data=data, headers=headers) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:  # unreachable, timed out: code 0
            raise GraphError(0, type(exc).__name__) from None
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        if status >= 400 or "error" in answer:
            error = answer.get("error")
            error = error if isinstance(error, dict) else {}
            code = error.get("code")
            raise GraphError(code if isinstance(code, int) else 0,
                             str(error.get("message") or f"HTTP {status}"), status)
        return answer


_JSON = {"Content-Type": "application/json"}


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _payload(to: str, message: Outgoing) -> dict[str, Any]:
    """Meta's JSON for one message (what pywa sent, field for field)."""
    base: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual",
                            "to": to}
    if isinstance(message, TemplateMessage):
        template: dict[str, Any] = {"name": message.name,
                                    "language": {"code": message.language}}
        if message.body is not None:
            template["components"] = [{"type": "body", "parameters": [
                {"type": "text", "text": message.body}]}]
        return {**base, "type": "template", "template": template}
    if isinstance(message, ButtonsMessage):
        buttons = [{"type": "reply", "reply": {"id": ident, "title": title}}
                   for ident, title in message.buttons]
        return {**base, "type": "interactive", "interactive": {
            "type": "button", "body": {"text": message.text}, "action": {"buttons": buttons}}}
    if isinstance(message, DocumentMessage):
        document = {"id": message.media_id, "filename": message.filename}
        return {**base, "type": "document", "document": _captioned(document, message.caption)}
    if isinstance(message, ImageMessage):
        image = {"id": message.media_id}
        return {**base, "type": "image", "image": _captioned(image, message.caption)}
    if isinstance(message, ListMessage):
        rows = [{"id": ident, "title": title} for ident, title in message.rows]
        return {**base, "type": "interactive", "interactive": {
            "type": "list", "body": {"text": message.text},
            "action": {"button": message.button,
                       "sections": [{"title": message.section, "rows": rows}]}}}
    return {**base, "type": "text", "text": {"body": message.text, "preview_url": False}}


def _captioned(media: dict[str, str], caption: str) -> dict[str, str]:
    return {**media, "caption": caption} if caption.strip() else media

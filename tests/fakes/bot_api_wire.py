"""The Bot API wire format for the fake server: decoding requests, shaping answers.

aiogram's ``AiohttpSession`` posts ``multipart/form-data``: strings as they are, every other
value JSON-encoded (numbers, booleans, and nested objects such as ``reply_markup``), uploads as
file parts referenced by ``attach://<key>``. Other clients send JSON bodies, urlencoded forms or a
query string; all four decode to the same typed ``dict``. A multipart body is read part by part
with aiohttp's multipart reader (no size cap of its own: the methods enforce Telegram's), each
upload kept as an :class:`UploadedFile` with its bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, ClientResponse, MultipartReader, web

# Parameters that are strings even when they look like JSON ("123", "true"): never decoded.
STRING_FIELDS = frozenset(
    {
        "action",
        "animation",
        "audio",
        "business_connection_id",
        "callback_query_id",
        "caption",
        "currency",
        "custom_title",
        "description",
        "document",
        "emoji",
        "first_name",
        "icon_custom_emoji_id",
        "inline_message_id",
        "inline_query_id",
        "ip_address",
        "language_code",
        "last_name",
        "message_effect_id",
        "name",
        "parse_mode",
        "payload",
        "phone_number",
        "photo",
        "query",
        "secret_token",
        "short_description",
        "sticker",
        "text",
        "thumbnail",
        "title",
        "url",
        "vcard",
        "video",
        "video_note",
        "voice",
    }
)
_JSON_SCALAR = re.compile(r"^(true|false|null|-?\d+(\.\d+)?([eE][-+]?\d+)?)$")
_TOKEN = re.compile(r"^\d+:[\w-]+$")


class ApiError(Exception):
    """An error answer: ``{"ok": false, "error_code": status, "description": ...}``."""

    def __init__(self, status: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        """The JSON body Telegram answers with."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def too_many_requests(retry_after: int) -> ApiError:
    """A flood-control answer, as Telegram words it."""
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request: its name, bytes and declared type (aiogram sends
    ``application/octet-stream``; not compared)."""

    filename: str
    content: bytes
    content_type: str = field(default="", compare=False)

    def __repr__(self) -> str:
        return f"UploadedFile({self.filename!r}, <{len(self.content)} bytes>)"


def bad_request(description: str) -> ApiError:
    """A 400 answer with Telegram's ``Bad Request:`` prefix."""
    return ApiError(400, f"Bad Request: {description}")


def check_token(token: str) -> None:
    """Telegram answers 401 to anything that is not ``<digits>:<secret>``."""
    if not _TOKEN.match(token):
        raise ApiError(401, "Unauthorized")


def bot_id(token: str) -> int:
    """The bot's user id is the token's numeric prefix."""
    return int(token.split(":", 1)[0])


def decode_field(name: str, value: str) -> Any:
    """One form field: JSON-looking values of non-string parameters are decoded."""
    if name in STRING_FIELDS:
        return value
    if value[:1] in "{[" or _JSON_SCALAR.match(value):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


async def decode_request(request: web.Request) -> dict[str, Any]:
    """The call's parameters, whatever the encoding (query string merged in)."""
    params: dict[str, Any] = {k: decode_field(k, v) for k, v in request.query.items()}
    if not request.can_read_body:
        return params
    if request.content_type == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise bad_request("request body must be a JSON object")
        params.update(body)
        return params
    if request.content_type == "multipart/form-data":
        params.update(await _read_multipart(await request.multipart()))
        return params
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, str):
            params[key] = decode_field(key, value)
    return params


def _resolve_attachments(params: dict[str, Any]) -> dict[str, Any]:
    """Replace ``attach://key`` strings by the uploaded file they name."""
    for key, value in list(params.items()):
        if isinstance(value, str) and value.startswith("attach://"):
            params[key] = params.get(value.removeprefix("attach://"), value)
    return params


def ok(result: Any) -> web.Response:
    """A successful answer."""
    return web.json_response({"ok": True, "result": result})


def failed(error: ApiError) -> web.Response:
    """An error answer with the matching HTTP status."""
    return web.json_response(error.body(), status=error.status)


async def webhook_reply(response: ClientResponse) -> tuple[str, dict[str, Any]] | None:
    """A method call the bot answered a webhook delivery with (Bot API "reply in webhook")."""
    if response.status != 200:
        return None
    if response.content_type == "application/json":
        body = await response.json()
        if isinstance(body, dict) and isinstance(body.get("method"), str):
            params = dict(body)
            return str(params.pop("method")), params
        return None
    if response.content_type != "multipart/form-data":
        return None
    params = await _read_multipart(MultipartReader(response.headers, response.content))
    method = params.pop("method", None)
    return (method, params) if isinstance(method, str) else None


async def _read_multipart(reader: MultipartReader) -> dict[str, Any]:
    params: dict[str, Any] = {}
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.filename:
            content_type = part.headers.get("Content-Type", "")
            params[part.name] = UploadedFile(part.filename, bytes(await part.read()),
                                             content_type)
        else:
            params[part.name] = decode_field(part.name, await part.text())
    return _resolve_attachments(params)

"""A fake WhatsApp Cloud API (Graph API) on loopback, for tests with the real pywa client.

    async with FakeGraphApi() as graph:
        client = GraphClient(token=graph.token, phone_number_id=graph.phone_number_id,
                           api_base=graph.api_base)
        await client.send("6281234567890", TextMessage("halo"))
        assert graph.texts("6281234567890") == ["halo"]

It records every ``POST /{version}/{phone_number_id}/messages``, checks the bearer token, and
enforces what Meta enforces: reply buttons (1-3, titles at most 20 characters, body at most
1,024), lists (at most 10 rows of at most 24 characters, button label at most 20), text at
most 4,096 characters, templates that exist in the given language, and (``enforce_window``)
no free-form message to a member whose 24-hour window is closed: error 131047
"Re-engagement message". Faults are injected per error code: 130429 (rate limit), 131056
(pair rate limit) or any other, for a number of calls and optionally one recipient.

Read receipts (``{"status": "read", "message_id": ...}`` on the same path) are answered
``{"success": true}`` and recorded in :attr:`FakeGraphApi.reads`, apart from :attr:`calls`;
with ``known_reads_only`` a message id the member never sent (see
:meth:`FakeGraphApi.member_sent`) is refused with error 100; :meth:`FakeGraphApi.fail_reads`
refuses the next ones.

Media: ``POST /{version}/{phone_number_id}/media`` takes a multipart upload (``messaging_product``
``whatsapp``, ``type`` the MIME type, the ``file`` part of that type), read with aiohttp's
multipart reader, keeps its bytes in :attr:`FakeGraphApi.uploads` and answers its media id;
a type Meta does not take, a file over its size limit (images 5 MB, documents 100 MB) or
:meth:`FakeGraphApi.fail_uploads` answer error 131053 "Media upload error". Document and image
messages must name an uploaded media id of a fitting type (images: JPEG or PNG) and carry a
caption of at most 1,024 characters; :meth:`FakeGraphApi.files` gives the files a member got.

Authentication templates (names in :attr:`FakeGraphApi.authentication`, languages in
``templates`` as for any template) must carry the code as Meta documents for copy-code
templates: one body text parameter and one ``button`` component (``sub_type`` ``url``,
``index`` ``"0"``) with the same text, at most 15 characters; else error 132000. ``GET
/{version}/{phone_number_id}`` answers the number's profile (counted in
:attr:`FakeGraphApi.lookups`), 190 with a wrong token.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes.loopback import LoopbackServer

__all__ = ["FakeGraphApi", "GraphCall", "ReceivedFile", "Upload"]

TOKEN = "EAAG-test-token"
PHONE_NUMBER_ID = "106540352242922"
VERSION = "v21.0"
TITLES = {
    130429: "Rate limit hit",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    131047: "Re-engagement message",
    131026: "Message Undeliverable",
    131000: "Something went wrong",
    131009: "Parameter value is not valid",
    131053: "Media upload error",
    100: "Invalid parameter",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    132015: "Template is Paused",
    132016: "Template is Disabled",
    190: "Invalid OAuth access token",
}


IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})
DOCUMENT_TYPES = frozenset({"application/pdf", "text/plain", "application/msword",
                            "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
                            "application/vnd.openxmlformats-officedocument.wordprocessingml"
                            ".document",
                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                            "application/vnd.openxmlformats-officedocument.presentationml"
                            ".presentation"})
MAX_IMAGE = 5 * 1024 * 1024
MAX_DOCUMENT = 100 * 1024 * 1024
MAX_CAPTION = 1024


@dataclass(frozen=True)
class Upload:
    """A file uploaded to ``/media``: the ``type`` field, the file part's name, type and
    bytes."""

    media_id: str
    mime: str
    filename: str
    content_type: str
    content: bytes = field(repr=False)


@dataclass(frozen=True)
class ReceivedFile:
    """A file a member got: ``type`` is ``document`` or ``image``; ``filename`` the document's
    name as shown (the upload's for an image)."""

    type: str
    filename: str
    mime: str
    content: bytes = field(repr=False)
    caption: str


@dataclass
class GraphCall:
    """One message call: the JSON body, arrival time (``time.monotonic()``), the HTTP status
    answered and, when refused, Meta's error code; when accepted, the message id answered."""

    phone_number_id: str
    body: dict[str, Any]
    at: float
    status: int = 200
    error: int | None = None
    message_id: str = ""  # the id answered for an accepted message

    @property
    def ok(self) -> bool:
        """Whether Meta would have accepted the message."""
        return self.status == 200

    @property
    def to(self) -> str:
        """The recipient's wa_id."""
        return str(self.body.get("to", ""))

    @property
    def type(self) -> str:
        """``text``, ``interactive`` or ``template``."""
        return str(self.body.get("type", ""))

    @property
    def text(self) -> str:
        """What the member reads first: the text, the interactive body, the template param,
        a file's caption."""
        if self.type == "text":
            return str(self.body["text"]["body"])
        if self.type in ("document", "image"):
            return str(self.body[self.type].get("caption", ""))
        if self.type == "interactive":
            return str(self.body["interactive"]["body"]["text"])
        params = [p.get("text", "") for c in self.body["template"].get("components", [])
                  for p in c.get("parameters", [])]
        return " ".join(params)

    @property
    def choices(self) -> list[tuple[str, str]]:
        """``(id, title)`` of the buttons or list rows of an interactive message."""
        if self.type != "interactive":
            return []
        interactive = self.body["interactive"]
        action = interactive["action"]
        if interactive["type"] == "button":
            return [(b["reply"]["id"], b["reply"]["title"]) for b in action["buttons"]]
        return [(r["id"], r["title"]) for s in action["sections"] for r in s["rows"]]


@dataclass
class _Fault:
    code: int
    times: int | None
    to: str | None
    status: int


@dataclass
class FakeGraphApi(LoopbackServer):
    """The fake server; ``templates`` maps approved template names to their languages."""

    token: str = TOKEN
    phone_number_id: str = PHONE_NUMBER_ID
    enforce_window: bool = True
    templates: dict[str, set[str]] = field(
        default_factory=lambda: {"balas_petugas": {"id", "en_US"}})
    window_seconds: float = 24 * 3600.0
    known_reads_only: bool = False  # refuse read receipts for ids not given to member_sent
    authentication: set[str] = field(default_factory=set)  # copy-code authentication templates
    lookups: int = field(default=0, init=False)  # GET of the phone number id answered
    calls: list[GraphCall] = field(default_factory=list, init=False)
    reads: list[str] = field(default_factory=list, init=False)  # message ids marked read
    refused_reads: list[str] = field(default_factory=list, init=False)
    _inbound: set[str] = field(default_factory=set, init=False)
    _read_faults: int = field(default=0, init=False)
    _windows: dict[str, float] = field(default_factory=dict, init=False)
    _faults: list[_Fault] = field(default_factory=list, init=False)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1), init=False)
    uploads: dict[str, Upload] = field(default_factory=dict, init=False)  # by media id
    refused_uploads: int = field(default=0, init=False)
    _upload_faults: list[_Fault] = field(default_factory=list, init=False)

    # --- the server -----------------------------------------------------------------------

    def app(self) -> web.Application:
        """``POST /{version}/{phone_number_id}/messages``, ``GET /{version}/{phone_number_id}``."""
        app = web.Application(client_max_size=MAX_DOCUMENT + 1024 * 1024)  # Meta's limits
        app.router.add_post("/{version}/{phone_id}/messages", self._handle)
        app.router.add_post("/{version}/{phone_id}/media", self._upload)
        app.router.add_get("/{version}/{phone_id}", self._phone)
        return app

    @property
    def api_base(self) -> str:
        """``WHATSAPP_API_BASE`` pointing here."""
        return self.url(f"/{VERSION}")

    # --- the member's side -----------------------------------------------------------------

    def member_wrote(self, wa_id: str) -> None:
        """The member sent a message now: their 24-hour window opens."""
        self._windows[wa_id] = time.monotonic()

    def member_sent(self, message_id: str) -> None:
        """Meta knows this message of a member: it may be marked as read."""
        self._inbound.add(message_id)

    def close_window(self, wa_id: str) -> None:
        """More than 24 hours pass for this member."""
        self._windows.pop(wa_id, None)

    # --- faults ---------------------------------------------------------------------------

    def fail(self, code: int, *, times: int | None = 1, to: str | None = None,
             status: int = 400) -> None:
        """The next ``times`` calls (to ``to`` only, when given) answer error ``code``."""
        self._faults.append(_Fault(code, times, to, status))

    def fail_uploads(self, code: int = 131053, *, times: int | None = 1,
                     status: int = 400) -> None:
        """The next ``times`` media uploads answer error ``code``."""
        self._upload_faults.append(_Fault(code, times, None, status))

    def fail_reads(self, times: int = 1) -> None:
        """The next ``times`` read receipts answer error 131000 (500)."""
        self._read_faults += times

    # --- records --------------------------------------------------------------------------

    def sent(self, wa_id: str | None = None) -> list[GraphCall]:
        """Accepted messages (to ``wa_id`` when given), oldest first."""
        return [c for c in self.calls if c.ok and (wa_id is None or c.to == wa_id)]

    def texts(self, wa_id: str) -> list[str]:
        """What the member read, message by message."""
        return [c.text for c in self.sent(wa_id)]

    def files(self, wa_id: str) -> list[ReceivedFile]:
        """The documents and images the member got, oldest first, with the uploaded bytes."""
        found = []
        for call in self.sent(wa_id):
            if call.type in ("document", "image"):
                media = call.body[call.type]
                upload = self.uploads[media["id"]]
                found.append(ReceivedFile(call.type, str(media.get("filename", upload.filename)),
                                          upload.mime, upload.content,
                                          str(media.get("caption", ""))))
        return found

    def last_choices(self, wa_id: str) -> list[tuple[str, str]]:
        """Buttons or rows of the newest interactive message to the member."""
        found = [c for c in self.sent(wa_id) if c.type == "interactive"]
        return found[-1].choices if found else []

    # --- serving --------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("status") == "read":
            return self._read(request, body)
        call = GraphCall(request.match_info["phone_id"], body, time.monotonic())
        self.calls.append(call)
        code, status = self._verdict(request, call)
        if code is not None:
            call.status, call.error = status, code
            return _error(code, status)
        ident = call.message_id = f"wamid.fake{next(self._ids):08d}"
        answer: dict[str, Any] = {"messaging_product": "whatsapp",
                                  "contacts": [{"input": call.to, "wa_id": call.to}],
                                  "messages": [{"id": ident}]}
        if call.type == "template":
            answer["messages"][0]["message_status"] = "accepted"
        return web.json_response(answer)

    async def _upload(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(190, 401)
        fields, file = await _read_upload(request)
        fault = next((f for f in self._upload_faults if f.times != 0), None)
        if fault is not None and fault.times is not None:
            fault.times -= 1
        code = (fault.code, fault.status) if fault is not None else _check_upload(fields, file)
        if (request.match_info["phone_id"] != self.phone_number_id
                or fields.get("messaging_product") != "whatsapp"):
            code = (100, 400)
        if code is not None or file is None:
            self.refused_uploads += 1
            return _error(*(code or (100, 400)))
        media_id = f"{next(self._ids):016d}"
        self.uploads[media_id] = Upload(media_id, fields["type"], *file)
        return web.json_response({"id": media_id})

    async def _phone(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(190, 401)
        if request.match_info["phone_id"] != self.phone_number_id:
            return _error(100, 400)
        self.lookups += 1
        return web.json_response({"id": self.phone_number_id, "verified_name": "BPJS Test",
                                  "display_phone_number": "+62 21 5000 000",
                                  "quality_rating": "GREEN"})

    def _read(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        ident = str(body.get("message_id", ""))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            self.refused_reads.append(ident)
            return _error(190, 401)
        if self._read_faults:
            self._read_faults -= 1
            self.refused_reads.append(ident)
            return _error(131000, 500)
        if (request.match_info["phone_id"] != self.phone_number_id
                or body.get("messaging_product") != "whatsapp"
                or set(body) != {"messaging_product", "status", "message_id"}
                or not ident or (self.known_reads_only and ident not in self._inbound)):
            self.refused_reads.append(ident)
            return _error(100, 400)
        self.reads.append(ident)
        return web.json_response({"success": True})

    def _verdict(self, request: web.Request, call: GraphCall) -> tuple[int | None, int]:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return 190, 401
        fault = self._injected(call)
        if fault is not None:
            return fault
        if call.phone_number_id != self.phone_number_id or not _valid(call):
            return 131009, 400
        if call.type in ("document", "image") and not self._valid_media(call):
            return 131053, 400
        return self._policy(call)

    def _injected(self, call: GraphCall) -> tuple[int, int] | None:
        for fault in self._faults:
            if fault.times != 0 and fault.to in (None, call.to):
                if fault.times is not None:
                    fault.times -= 1
                return fault.code, fault.status
        return None

    def _policy(self, call: GraphCall) -> tuple[int | None, int]:
        if call.type == "template":
            template = call.body["template"]
            if template["language"]["code"] not in self.templates.get(template["name"], set()):
                return 132001, 404
            if template["name"] in self.authentication and not _copy_code(template):
                return 132000, 400
            return None, 200
        if self.enforce_window and not self._window_open(call.to):
            return 131047, 400
        return None, 200

    def _valid_media(self, call: GraphCall) -> bool:
        media = call.body[call.type]
        upload = self.uploads.get(str(media.get("id", "")))
        if upload is None or len(str(media.get("caption", ""))) > MAX_CAPTION:
            return False
        return call.type == "document" or upload.mime in IMAGE_TYPES

    def _window_open(self, wa_id: str) -> bool:
        opened = self._windows.get(wa_id)
        return opened is not None and time.monotonic() - opened < self.window_seconds


def _valid(call: GraphCall) -> bool:
    body = call.body
    if body.get("messaging_product") != "whatsapp" or not call.to.isdigit():
        return False
    if call.type == "text":
        return 0 < len(body["text"]["body"]) <= 4096
    if call.type == "interactive":
        return _valid_interactive(body["interactive"])
    if call.type in ("document", "image"):
        return isinstance(body.get(call.type), dict) and "id" in body[call.type]
    return call.type == "template"


FileParts = tuple[str, str, bytes]  # the file part's name, type and bytes


async def _read_upload(request: web.Request) -> tuple[dict[str, str], FileParts | None]:
    """The form fields and the ``file`` part of a multipart upload."""
    fields: dict[str, str] = {}
    file: FileParts | None = None
    if request.content_type != "multipart/form-data":
        return fields, None
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.name == "file" and part.filename:
            file = (part.filename, part.headers.get("Content-Type", ""),
                    bytes(await part.read()))
        else:
            fields[part.name] = await part.text()
    return fields, file


def _check_upload(fields: dict[str, str], file: FileParts | None) -> tuple[int, int] | None:
    """Meta's verdict on an upload: ``None`` when taken, else ``(code, status)``."""
    mime = fields.get("type", "")
    if file is None or file[1] != mime:
        return 100, 400
    if mime in IMAGE_TYPES:
        return None if len(file[2]) <= MAX_IMAGE else (131053, 400)
    if mime in DOCUMENT_TYPES:
        return None if len(file[2]) <= MAX_DOCUMENT else (131053, 400)
    return 131053, 400


def _copy_code(template: dict[str, Any]) -> bool:
    """The code as a body parameter and as the copy-code (``url``) button's parameter."""
    components = template.get("components", [])
    if len(components) != 2:
        return False
    body, button = components
    texts = [p.get("text") for c in components for p in c.get("parameters", [])
             if p.get("type") == "text"]
    return (body.get("type") == "body" and len(body.get("parameters", [])) == 1
            and button.get("type") == "button" and button.get("sub_type") == "url"
            and button.get("index") == "0" and len(button.get("parameters", [])) == 1
            and len(texts) == 2 and texts[0] == texts[1]
            and isinstance(texts[0], str) and 0 < len(texts[0]) <= 15)


def _valid_interactive(interactive: dict[str, Any]) -> bool:
    action, text = interactive["action"], interactive["body"]["text"]
    if interactive["type"] == "button":
        buttons = action["buttons"]
        ids = [b["reply"]["id"] for b in buttons]
        return (1 <= len(buttons) <= 3 and 0 < len(text) <= 1024 and len(set(ids)) == len(ids)
                and all(0 < len(b["reply"]["title"]) <= 20 for b in buttons))
    rows = [r for s in action["sections"] for r in s["rows"]]
    ids = [r["id"] for r in rows]
    return (1 <= len(rows) <= 10 and 0 < len(text) <= 4096 and len(set(ids)) == len(ids)
            and 0 < len(action["button"]) <= 20
            and all(0 < len(r["title"]) <= 24 for r in rows)
            and all(len(s.get("title", "")) <= 24 for s in action["sections"]))


def _error(code: int, status: int) -> web.Response:
    title = TITLES.get(code, "Error")
    return web.json_response({"error": {
        "message": f"(#{code}) {title}", "type": "OAuthException", "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": title},
        "fbtrace_id": "AbCdEfGhIjKlMnOp"}}, status=status)

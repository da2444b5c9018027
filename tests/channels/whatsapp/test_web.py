"""The WhatsApp webhook route: the signature is checked on the raw body first, then what is
malformed (wrong content type, oversized, not UTF-8 JSON, nested too deep) is refused with a
4xx, no stack trace and nothing processed; lone surrogates never reach the channel."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field
from typing import cast

import pytest
from aiohttp import web

from app.metrics import Metrics
from app.web import MAX_BODY, MAX_DEPTH, create_web_app
from channels.whatsapp.channel import WhatsAppChannel
from channels.whatsapp.inbound import SIGNATURE_HEADER, Notification, parse_notification, sign
from channels.whatsapp.web import WHATSAPP_PATH, add_whatsapp_routes
from flows.ports import StoreUnavailable
from tests.conftest import WebClient
from tests.fakes.graph_webhooks import button_reply, text_message
from tests.fakes.loopback import raw_post

APP_SECRET = "test-app-secret"
WA_ID = "6281234567890"


@dataclass
class _Config:
    app_secret: str = APP_SECRET
    phone_number_id: str = ""


@dataclass
class StubChannel:
    """Records what the webhook parsed and accepted."""

    config: _Config = field(default_factory=_Config)
    payloads: list[object] = field(default_factory=list)
    accepted: list[Notification] = field(default_factory=list)

    def challenge(self, mode: str, token: str, challenge: str) -> str | None:
        return None

    def parse(self, payload: object) -> Notification:
        self.payloads.append(payload)
        return parse_notification(payload)

    down: bool = False
    started: int = 0

    async def take(self, notification: Notification) -> bool:
        if self.down:
            raise StoreUnavailable("the inbox is down")
        self.accepted.append(notification)
        return True

    def start(self) -> None:
        self.started += 1

    async def drain(self, timeout: float = 30.0, *, reopen: bool = True) -> None:
        return None


@pytest.fixture
def channel() -> StubChannel:
    return StubChannel()


def _app(channel: StubChannel) -> web.Application:
    app = create_web_app(metrics=Metrics(), checks={})
    add_whatsapp_routes(app, cast(WhatsAppChannel, channel))
    return app


def _headers(body: bytes, content_type: str = "application/json") -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(APP_SECRET, body), "Content-Type": content_type}


def _nested(depth: int) -> bytes:
    """A text notification with a field nested ``depth`` arrays deep inside its value
    (the notification nests six levels down to its value: ``6 + depth`` levels in all)."""
    payload = text_message(WA_ID, "halo")
    text = json.dumps(payload)
    return text.replace('"messages": [', '"x": ' + "[" * depth + "]" * depth + ', "messages": [',
                        1).encode()


BODY = json.dumps(text_message(WA_ID, "halo")).encode()
MALFORMED: dict[str, tuple[bytes, str, int]] = {
    "nested past the recursion limit": (_nested(100_000), "application/json", 400),
    "nested one past MAX_DEPTH": (_nested(MAX_DEPTH - 5), "application/json", 400),
    "not JSON": (b"{not json", "application/json", 400),
    "not UTF-8": (b'{"object": "\xff"}', "application/json", 400),
    "UTF-16": (BODY.decode().encode("utf-16"), "application/json", 400),
    "text/plain": (BODY, "text/plain", 415),
    "a form": (b"object=whatsapp_business_account", "application/x-www-form-urlencoded", 415),
    "octet-stream": (BODY, "application/octet-stream", 415),
    "JSON in another charset": (BODY, "application/json; charset=iso-8859-1", 415),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_a_malformed_body_with_a_valid_signature_is_a_4xx_and_nothing_processed(
        web_client: WebClient, channel: StubChannel, caplog: pytest.LogCaptureFixture,
        case: str) -> None:
    body, content_type, status = MALFORMED[case]
    caplog.set_level(logging.DEBUG)
    http = await web_client(_app(channel))
    response = await http.post(WHATSAPP_PATH, data=io.BytesIO(body),
                               headers=_headers(body, content_type))
    assert response.status == status
    assert channel.payloads == [] and channel.accepted == []
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_an_oversized_body_is_413_and_nothing_processed(
        web_client: WebClient, channel: StubChannel, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = json.dumps({**text_message(WA_ID, "halo"), "pad": "x" * MAX_BODY}).encode()
    http = await web_client(_app(channel))
    response = await http.post(WHATSAPP_PATH, data=io.BytesIO(body), headers=_headers(body))
    assert response.status == 413
    assert channel.payloads == [] and channel.accepted == []
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_the_signature_is_checked_before_the_content_type_and_the_body(
        web_client: WebClient, channel: StubChannel) -> None:
    http = await web_client(_app(channel))
    for body, content_type in ((_nested(100_000), "application/json"), (BODY, "text/plain")):
        headers = {SIGNATURE_HEADER: sign("not-the-app-secret", body),
                   "Content-Type": content_type}
        response = await http.post(WHATSAPP_PATH, data=io.BytesIO(body), headers=headers)
        assert response.status == 401
    assert channel.payloads == []


async def test_a_signature_header_that_is_not_utf8_is_refused_without_a_trace(
        web_client: WebClient, channel: StubChannel, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    http = await web_client(_app(channel))
    status = await raw_post(http.host, http.port, WHATSAPP_PATH,
                            (SIGNATURE_HEADER, sign(APP_SECRET, BODY).encode() + b"\xff"), BODY)
    assert status in (b"400", b"401")  # the parser or the webhook refuses it
    assert channel.payloads == []
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_deep_but_allowed_body_and_a_utf8_charset_are_taken(
        web_client: WebClient, channel: StubChannel) -> None:
    http = await web_client(_app(channel))
    deep = _nested(MAX_DEPTH - 6)  # MAX_DEPTH levels in all
    for body, content_type in ((BODY, "application/json; charset=utf-8"),
                               (deep, "application/json")):
        response = await http.post(WHATSAPP_PATH, data=body,
                                   headers=_headers(body, content_type))
        assert response.status == 200, content_type
    assert [len(n.messages) for n in channel.accepted] == [1, 1]


async def test_an_unreachable_inbox_is_503_and_meta_delivers_again(
        web_client: WebClient, channel: StubChannel) -> None:
    http = await web_client(_app(channel))
    channel.down = True
    response = await http.post(WHATSAPP_PATH, data=BODY, headers=_headers(BODY))
    assert response.status == 503 and response.headers["Retry-After"] == "5"
    assert channel.accepted == []
    channel.down = False
    again = await http.post(WHATSAPP_PATH, data=BODY, headers=_headers(BODY))
    assert again.status == 200 and len(channel.accepted) == 1
    assert channel.started == 1


async def test_lone_surrogates_are_replaced_before_the_channel_sees_them(
        web_client: WebClient, channel: StubChannel) -> None:
    http = await web_client(_app(channel))
    payload = button_reply(WA_ID, "reg:agree\ud800", "Saya setuju\udfff",
                           message_id="wamid.x\ud83d")
    body = json.dumps(payload).encode()  # escaped, as JSON carries them
    assert b"\\ud800" in body
    response = await http.post(WHATSAPP_PATH, data=body, headers=_headers(body))
    assert response.status == 200
    [notification] = channel.accepted
    [message] = notification.messages
    assert (message.data, message.text) == ("reg:agree\ufffd", "Saya setuju\ufffd")
    assert message.id == "wamid.x\ufffd"
    assert message.id.encode() and message.data.encode()  # encodable: no UnicodeEncodeError

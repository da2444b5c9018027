"""OTP codes by WhatsApp: the copy-code authentication template sent to the fake Graph API on
loopback (what arrived, the language picked), every failure reason, the health check and its
cache, the settings, and no code or number in any log record."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from pydantic import SecretStr

from app.settings import OtpSettings, WhatsAppSettings
from channels.whatsapp.graph import GraphClient, GraphError, TemplateMessage
from channels.whatsapp.otp import WhatsAppOtpSender, failure_reason
from flows.ports import OtpDeliveryFailed, OtpDestination
from tests.fakes.graph_api import FakeGraphApi

TEMPLATE = "kode_otp"
ON_FILE = "081234567890"
WA_ID = "6281234567890"
CODE = "482913"
TO = OtpDestination("whatsapp", ON_FILE)


@dataclass
class SlowGraphApi(FakeGraphApi):
    """The fake Graph API answering messages and lookups ``delay`` seconds late."""

    delay: float = 0.0

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(self.delay)
        return await super()._handle(request)

    async def _phone(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        return await super()._phone(request)


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphApi]:
    async with FakeGraphApi(templates={TEMPLATE: {"id", "en_US"}, "balas_petugas": {"id"}},
                            authentication={TEMPLATE}) as server:
        yield server


def _sender(graph: FakeGraphApi, *, languages: str = "id,en_US", token: str = "",
            api_base: str = "", timeout: float = 10.0) -> WhatsAppOtpSender:
    return WhatsAppOtpSender(template=TEMPLATE, languages=languages,
                             token=token or graph.token, phone_number_id=graph.phone_number_id,
                             api_base=api_base or graph.api_base, timeout=timeout)


@pytest.fixture
async def sender(graph: FakeGraphApi) -> AsyncIterator[WhatsAppOtpSender]:
    otp = _sender(graph)
    yield otp
    await otp.aclose()


async def _reason(sender: WhatsAppOtpSender, to: OtpDestination = TO,
                  locale: str = "id") -> str:
    with pytest.raises(OtpDeliveryFailed) as failed:
        await sender.send(to, CODE, locale)
    assert CODE not in str(failed.value) and "1234567890" not in str(failed.value)
    return failed.value.reason


async def test_the_code_goes_as_the_copy_code_authentication_template(
        graph: FakeGraphApi, sender: WhatsAppOtpSender) -> None:
    await sender.send(TO, CODE, "id")
    [call] = graph.sent()
    assert call.to == WA_ID and call.type == "template" and call.message_id
    template = call.body["template"]
    assert template["name"] == TEMPLATE and template["language"] == {"code": "id"}
    body, button = template["components"]
    assert body == {"type": "body", "parameters": [{"type": "text", "text": CODE}]}
    assert button == {"type": "button", "sub_type": "url", "index": "0",
                      "parameters": [{"type": "text", "text": CODE}]}
    assert call.body["recipient_type"] == "individual"
    assert sender.kind == "whatsapp" and not hasattr(sender, "warn")


async def test_the_member_locale_picks_the_template_language(
        graph: FakeGraphApi, sender: WhatsAppOtpSender) -> None:
    await sender.send(OtpDestination("whatsapp", "+62 812-3456-7890"), CODE, "en")
    await sender.send(TO, CODE, "jv")  # no Javanese template: the first language
    await sender.send(TO, CODE, "en-US")
    assert [c.body["template"]["language"]["code"] for c in graph.sent(WA_ID)] == [
        "en_US", "id", "en_US"]
    assert sender.language("id") == "id" and sender.language("EN") == "en_US"


async def test_a_template_error_answer_is_a_template_failure(graph: FakeGraphApi) -> None:
    english_only = _sender(graph, languages="en")  # "en" is not approved, "en_US" is
    assert await _reason(english_only, locale="en") == "template"
    assert graph.calls[-1].error == 132001
    await english_only.aclose()
    sender = _sender(graph)
    graph.fail(132015)  # paused
    assert await _reason(sender) == "template"
    await sender.aclose()


async def test_the_fake_refuses_an_authentication_template_without_its_button(
        graph: FakeGraphApi) -> None:
    client = GraphClient(token=graph.token, phone_number_id=graph.phone_number_id,
                         api_base=graph.api_base)
    with pytest.raises(GraphError) as mismatch:
        await client.send(WA_ID, TemplateMessage(TEMPLATE, "id", CODE))
    assert mismatch.value.code == 132000 and failure_reason(mismatch.value) == "template"
    await client.close()


async def test_a_number_not_on_whatsapp_is_rejected(
        graph: FakeGraphApi, sender: WhatsAppOtpSender) -> None:
    graph.fail(131026, to=WA_ID)
    assert await _reason(sender) == "rejected"
    calls = len(graph.calls)
    assert await _reason(sender, OtpDestination("whatsapp", "021-5551234")) == "rejected"
    assert len(graph.calls) == calls  # not a mobile number: nothing sent


async def test_rate_limits_are_throttled(graph: FakeGraphApi,
                                         sender: WhatsAppOtpSender) -> None:
    graph.fail(130429, status=429)
    assert await _reason(sender) == "throttled"
    graph.fail(131056)
    assert await _reason(sender) == "throttled"


async def test_a_server_error_and_a_refused_token(graph: FakeGraphApi,
                                                  sender: WhatsAppOtpSender) -> None:
    graph.fail(131000, status=500)
    assert await _reason(sender) == "server"
    wrong = _sender(graph, token="EAAG-revoked")
    assert await _reason(wrong) == "auth"
    await wrong.aclose()
    await sender.send(TO, CODE, "id")  # the faults were for one call each
    assert len(graph.sent()) == 1


async def test_an_unreachable_api_is_refused(graph: FakeGraphApi) -> None:
    gone = _sender(graph, api_base="http://127.0.0.1:9/v21.0", timeout=1.0)
    assert await _reason(gone) == "refused"
    with pytest.raises(OtpDeliveryFailed) as down:
        await gone.check()
    assert down.value.reason == "refused"
    await gone.aclose()


async def test_a_slow_api_times_out() -> None:
    async with SlowGraphApi(templates={TEMPLATE: {"id"}}, authentication={TEMPLATE},
                            delay=2.0) as slow:
        sender = _sender(slow, timeout=0.3)
        started = time.monotonic()
        assert await _reason(sender) == "timeout"
        assert time.monotonic() - started < 1.5
        await sender.aclose()


async def test_the_check_looks_up_the_number_and_keeps_its_answer(
        graph: FakeGraphApi, sender: WhatsAppOtpSender) -> None:
    await sender.check()
    await sender.check()
    assert graph.lookups == 1  # cached for 30 s
    wrong = _sender(graph, token="EAAG-revoked")
    with pytest.raises(OtpDeliveryFailed) as refused:
        await wrong.check()
    assert refused.value.reason == "auth"
    await wrong.aclose()


async def test_a_slow_check_gives_up_after_a_second_and_keeps_the_failure() -> None:
    async with SlowGraphApi(delay=3.0) as slow:
        sender = _sender(slow)
        started = time.monotonic()
        with pytest.raises(OtpDeliveryFailed) as slow_check:
            await sender.check()
        assert slow_check.value.reason == "timeout"
        assert time.monotonic() - started < 1.5
        slow.delay = 0.0
        started = time.monotonic()
        with pytest.raises(OtpDeliveryFailed):  # the failure is kept: no second call
            await sender.check()
        assert time.monotonic() - started < 0.1 and slow.lookups == 0
        await sender.aclose()


async def test_a_shared_graph_client_stays_open(graph: FakeGraphApi) -> None:
    client = GraphClient(token=graph.token, phone_number_id=graph.phone_number_id,
                         api_base=graph.api_base)
    sender = WhatsAppOtpSender(client, template=TEMPLATE)
    await sender.send(TO, CODE, "id")
    await sender.check()
    await sender.aclose()
    await client.send(WA_ID, TemplateMessage("balas_petugas", "id", "halo"))  # still open
    assert len(graph.sent(WA_ID)) == 2 and graph.lookups == 1
    await client.close()


def test_from_settings_needs_the_template_and_the_token() -> None:
    wa = WhatsAppSettings(whatsapp_token=SecretStr("EAAG-x"),
                          whatsapp_phone_number_id="106540352242922")
    assert WhatsAppOtpSender.from_settings(OtpSettings(whatsapp_otp_template=""), wa) is None
    no_token = WhatsAppSettings(whatsapp_token=SecretStr(""))
    otp = OtpSettings(whatsapp_otp_template=TEMPLATE, whatsapp_otp_template_languages="id, en")
    assert WhatsAppOtpSender.from_settings(otp, no_token) is None
    sender = WhatsAppOtpSender.from_settings(otp, wa)
    assert sender is not None and sender.template == TEMPLATE
    assert sender.languages == ("id", "en")
    with pytest.raises(ValueError, match="WHATSAPP_PHONE_NUMBER_ID"):
        WhatsAppOtpSender.from_settings(
            otp, WhatsAppSettings(whatsapp_token=SecretStr("EAAG-x"),
                                  whatsapp_phone_number_id=""))
    with pytest.raises(ValueError, match="WHATSAPP_OTP_TEMPLATE_LANGUAGES"):
        WhatsAppOtpSender.from_settings(
            OtpSettings(whatsapp_otp_template=TEMPLATE,
                        whatsapp_otp_template_languages="id,bahasa"), wa)


def test_graph_errors_map_to_reasons() -> None:
    cases = {132001: "template", 132000: "template", 132005: "template", 132007: "template",
             132012: "template", 132015: "template", 132016: "template",
             131026: "rejected", 130429: "throttled", 131056: "throttled", 190: "auth",
             131000: "server"}
    for code, reason in cases.items():
        assert failure_reason(GraphError(code, "", 400)) == reason, code
    assert failure_reason(GraphError(0, "HTTP 502", 502)) == "server"
    assert failure_reason(GraphError(0, "TimeoutError")) == "timeout"
    assert failure_reason(GraphError(0, "ClientConnectorError")) == "refused"


async def test_no_code_and_no_number_in_any_log_record(
        graph: FakeGraphApi, sender: WhatsAppOtpSender,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await sender.send(TO, CODE, "id")
    for code in (131026, 130429, 132001, 190):
        graph.fail(code)
        await _reason(sender)
    await _reason(sender, OtpDestination("whatsapp", "12345"))
    await sender.check()
    wrong = _sender(graph, token="EAAG-revoked")
    with pytest.raises(OtpDeliveryFailed):
        await wrong.check()
    await wrong.aclose()
    assert caplog.records  # the failures were logged
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + (record.exc_text or "")
        for secret in (CODE, ON_FILE, WA_ID, "1234567890", "12345"):
            assert secret not in text, record.getMessage()

"""Registrations on Telegram whose code really travels: through a real SMTP server (aiosmtpd
on loopback), the fake Twilio and WhatsApp's authentication template on the fake Graph API.

The senders are built from the settings as ``serve`` builds them (``otp_sender_for``), with
the routing of ``OTP_CHANNELS``; the member reads the code where it arrived (the email, the
SMS body, the template's parameter) and types it. Then: the fallback when WhatsApp answers a
template error, "Code didn't arrive?" (Indonesian "Belum menerima kode?") sending a new
code by the next way, the channel metrics,
``/healthz`` over a real runtime, and no code or contact in any log record.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.smtp import SMTP, Envelope, Session

from app.compose import OtpDelivery, otp_sender_for, runtime
from app.metrics import Metrics
from app.serve import health_checks
from app.settings import Settings
from app.web import create_web_app
from flows.i18n import Catalog
from flows.types import SessionKey, Text
from tests.e2e.harness import Harness, Member, harness
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.flows.conftest import SITI

CHAT = 5551234
TEMPLATE = "kode_otp"
MAIL_FROM = "BPJS Ketenagakerjaan <otp@bpjs.example>"
ON_FILE_EMAIL = "siti@example.com"  # the demo member's contacts on file (balance/demo.py)
ON_FILE_E164 = "+6281234567890"
SENT_SMS = ("Kode verifikasi 6 digit sudah dikirim lewat SMS ke 0812****7890. Ketik kode "
            "tersebut di sini; kode berlaku 5 menit.")
SENT_EMAIL = ("Kode verifikasi 6 digit sudah dikirim lewat email ke s***@example.com. Ketik "
              "kode tersebut di sini; kode berlaku 5 menit.")
SENT_WHATSAPP = ("Kode verifikasi 6 digit sudah dikirim lewat WhatsApp ke 0812****7890. Ketik "
                 "kode tersebut di sini; kode berlaku 5 menit.")
# The "Code didn't arrive?" button (issue 14's "Kode tidak masuk?"), as the catalog words it
RESEND_LABEL = Catalog(strict=True).render(Text("Code didn't arrive?"), "id")
_CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")


# --- the SMTP server --------------------------------------------------------------------------

@dataclass
class Mailbox:
    """An aiosmtpd handler keeping every message that arrives."""

    received: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    port: int = 0

    async def handle_DATA(self, server: SMTP, session: Session,  # noqa: N802
                          envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(message)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK queued"

    def code(self) -> str:
        """The code in the plain text part of the newest email."""
        text = self.received[-1].get_body(("plain",))
        assert isinstance(text, EmailMessage)
        return _only_code(text.get_content())


@asynccontextmanager
async def smtp_server() -> AsyncIterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 on a free port, in the test's loop."""
    mailbox = Mailbox()
    sessions: list[SMTP] = []

    def session() -> SMTP:
        sessions.append(SMTP(mailbox, hostname="mail.test"))
        return sessions[-1]

    server = await asyncio.get_running_loop().create_server(session, "127.0.0.1", 0)
    mailbox.port = server.sockets[0].getsockname()[1]
    try:
        yield mailbox
    finally:
        server.close()
        await server.wait_closed()
        for smtp in sessions:
            if smtp.transport is not None:
                smtp.transport.close()
        await asyncio.sleep(0.01)


def _only_code(text: str) -> str:
    """The one 6-digit code in ``text``."""
    [code] = _CODE.findall(text)
    return str(code)


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture
async def mailbox() -> AsyncIterator[Mailbox]:
    async with smtp_server() as server:
        yield server


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as server:
        yield server


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphApi]:
    async with FakeGraphApi(templates={TEMPLATE: {"id", "en_US"}},
                            authentication={TEMPLATE}) as server:
        yield server


@dataclass
class Services:
    """The three ways a code travels, each on loopback."""

    mailbox: Mailbox
    twilio: FakeTwilio
    graph: FakeGraphApi

    def all(self) -> dict[str, object]:
        """The settings of every sender."""
        return {**_email(self.mailbox), **_sms(self.twilio), **_whatsapp(self.graph)}


@pytest.fixture
def services(mailbox: Mailbox, twilio: FakeTwilio, graph: FakeGraphApi) -> Services:
    return Services(mailbox, twilio, graph)


def _settings(tmp_path: Path, **values: object) -> Settings:
    base: dict[str, object] = {"data_dir": tmp_path / "data",
                               "database_url": f"sqlite:///{tmp_path / 'runtime.db'}",
                               "seed_demo_members": True}
    return Settings(_env_file=None, **{**base, **values})  # type: ignore[arg-type]


def _email(mailbox: Mailbox) -> dict[str, object]:
    return {"smtp_url": f"smtp://127.0.0.1:{mailbox.port}", "otp_email_from": MAIL_FROM}


def _sms(twilio: FakeTwilio) -> dict[str, object]:
    return {"sms_gateway": "twilio", "sms_gateway_url": twilio.url(),
            "sms_gateway_token": f"{ACCOUNT_SID}:{AUTH_TOKEN}", "sms_sender": "BPJSTK"}


def _whatsapp(graph: FakeGraphApi) -> dict[str, object]:
    return {"whatsapp_otp_template": TEMPLATE, "whatsapp_otp_template_languages": "id,en_US",
            "whatsapp_token": graph.token, "whatsapp_phone_number_id": graph.phone_number_id,
            "whatsapp_api_base": graph.api_base}


@asynccontextmanager
async def bot(tmp_path: Path, fake: FakeBotApi,
              settings: Settings) -> AsyncIterator[tuple[Harness, OtpDelivery]]:
    """One Telegram bot process whose codes go by the senders the settings configure."""
    delivery = otp_sender_for(settings, [])
    try:
        async with harness(tmp_path, fake=fake, otp_sender=delivery.sender,
                           otp_channels=delivery.channels) as world:
            yield world, delivery
    finally:
        for sender in delivery.senders:
            await sender.aclose()


async def reach_code(member: Member) -> list[str]:
    """Register up to the code: consent, NIK, KPJ, birth date, the member's own contact.
    Returns what the bot answered the contact with."""
    await member.say("/daftar")
    await member.press("reg:agree")
    for answer in (SITI["nik"], SITI["kpj"], SITI["birth"]):
        await member.say(answer)
    return await member.share_contact(SITI["phone"])


async def linked(tg: Harness) -> list[str]:
    return await tg.accounts.linked_kpjs(SessionKey("telegram", str(CHAT)))


def _verified(texts: list[str]) -> bool:
    return any(text.startswith("Verifikasi berhasil") for text in texts)


def _whatsapp_code(graph: FakeGraphApi) -> str:
    template = graph.sent()[-1].body["template"]
    body, button = template["components"]
    code = str(body["parameters"][0]["text"])
    assert button["parameters"][0]["text"] == code  # the copy-code button carries it too
    return _only_code(code)


# --- each way a code travels ------------------------------------------------------------------

async def test_a_member_registers_with_a_code_that_travelled_through_the_smtp_server(
        tmp_path: Path, fake: FakeBotApi, mailbox: Mailbox) -> None:
    settings = _settings(tmp_path, otp_channels="email", **_email(mailbox))
    async with bot(tmp_path, fake, settings) as (tg, delivery):
        assert delivery.channels == ("email",)
        assert [s.kind for s in delivery.senders] == ["email"]
        member = tg.member(CHAT)
        assert await reach_code(member) == [SENT_EMAIL]
        [email] = mailbox.received
        assert mailbox.recipients == [[ON_FILE_EMAIL]] and email["To"] == ON_FILE_EMAIL
        assert "otp@bpjs.example" in str(email["From"])
        code = mailbox.code()
        html = email.get_body(("html",))
        assert isinstance(html, EmailMessage) and code in html.get_content()

        done = await member.say(code)
        assert _verified(done)
        assert await linked(tg) == [SITI["kpj"]]
        assert tg.metrics.value("bot_otp_sent_total", channel="email") == 1.0
        assert tg.codes() == []  # nothing went to an outbox file


async def test_a_member_registers_with_a_code_sent_by_sms_through_twilio(
        tmp_path: Path, fake: FakeBotApi, twilio: FakeTwilio) -> None:
    settings = _settings(tmp_path, otp_channels="sms", **_sms(twilio))
    async with bot(tmp_path, fake, settings) as (tg, _):
        member = tg.member(CHAT)
        assert await reach_code(member) == [SENT_SMS]
        [sms] = twilio.sent()
        assert (sms.to, sms.from_) == (ON_FILE_E164, "BPJSTK")
        assert sms.body.startswith("Kode verifikasi BPJS")  # the member's language

        assert _verified(await member.say(_only_code(sms.body)))
        assert await linked(tg) == [SITI["kpj"]]
        assert tg.metrics.value("bot_otp_sent_total", channel="sms") == 1.0


async def test_a_member_registers_with_a_code_from_the_whatsapp_authentication_template(
        tmp_path: Path, fake: FakeBotApi, graph: FakeGraphApi) -> None:
    settings = _settings(tmp_path, otp_channels="whatsapp", **_whatsapp(graph))
    async with bot(tmp_path, fake, settings) as (tg, _):
        member = tg.member(CHAT)
        assert await reach_code(member) == [SENT_WHATSAPP]
        [call] = graph.sent()
        assert call.to == ON_FILE_E164.lstrip("+") and call.type == "template"
        assert call.body["template"]["name"] == TEMPLATE
        assert call.body["template"]["language"] == {"code": "id"}

        assert _verified(await member.say(_whatsapp_code(graph)))
        assert await linked(tg) == [SITI["kpj"]]
        assert tg.metrics.value("bot_otp_sent_total", channel="whatsapp") == 1.0


async def test_every_configured_way_is_tried_in_the_default_order_whatsapp_first(
        tmp_path: Path, fake: FakeBotApi, services: Services) -> None:
    async with bot(tmp_path, fake, _settings(tmp_path, **services.all())) as (tg, delivery):
        assert delivery.channels == ("whatsapp", "sms", "email")
        assert await reach_code(tg.member(CHAT)) == [SENT_WHATSAPP]
        assert len(services.graph.sent()) == 1
        assert services.twilio.calls == [] and services.mailbox.received == []


# --- fallback and "Code didn't arrive?" -------------------------------------------------------

async def _fall_back_then_resend(tg: Harness, member: Member,
                                 services: Services) -> tuple[str, str]:
    """WhatsApp refuses the template, the code goes by SMS; 61 s later "Code didn't arrive?"
    sends a new one by email, which links the chat. Returns both codes."""
    mailbox, twilio, graph = services.mailbox, services.twilio, services.graph
    graph.fail(132001, times=None)  # the template does not exist in that language
    assert await reach_code(member) == [SENT_SMS]
    [refused] = graph.calls
    assert refused.error == 132001 and graph.sent() == []
    [sms] = twilio.sent()
    by_sms = _only_code(sms.body)
    assert mailbox.received == []
    assert _resend_label(tg) == RESEND_LABEL

    tg.clock.advance(61)
    assert await member.press("otp:resend") == [SENT_EMAIL]
    assert len(graph.calls) == 1 and len(twilio.calls) == 1  # the next way, not again
    by_email = mailbox.code()
    assert mailbox.recipients == [[ON_FILE_EMAIL]]

    if by_sms != by_email:  # the new code replaced the one sent by SMS
        assert not _verified(await member.say(by_sms))
        assert await linked(tg) == []
    done = await member.say(by_email)
    assert _verified(done)
    assert await linked(tg) == [SITI["kpj"]]
    return by_sms, by_email


def _resend_label(tg: Harness) -> str:
    markup = tg.fake.last_markup(CHAT) or {}
    labels = [str(key["text"]) for row in markup.get("inline_keyboard", []) for key in row
              if str(key.get("callback_data", "")).startswith("1otp:resend|")]
    assert len(labels) == 1
    return labels[0]


async def test_a_template_error_falls_through_to_sms_and_code_didnt_arrive_sends_by_email(
        tmp_path: Path, fake: FakeBotApi, services: Services) -> None:
    settings = _settings(tmp_path, otp_channels="whatsapp,sms,email", **services.all())
    async with bot(tmp_path, fake, settings) as (tg, delivery):
        assert delivery.channels == ("whatsapp", "sms", "email")
        await _fall_back_then_resend(tg, tg.member(CHAT), services)
        value = tg.metrics.value
        assert value("bot_otp_failed_total", channel="whatsapp", reason="template") == 1.0
        assert value("bot_otp_sent_total", channel="sms") == 1.0
        assert value("bot_otp_sent_total", channel="email") == 1.0
        assert value("bot_otp_sent_total", channel="whatsapp") == 0.0
        exposition = tg.metrics.render().decode()
        assert 'bot_otp_failed_total{channel="whatsapp",reason="template"} 1.0' in exposition


async def test_a_stopped_smtp_server_falls_through_to_sms(
        tmp_path: Path, fake: FakeBotApi, twilio: FakeTwilio) -> None:
    async with smtp_server() as stopped:
        pass  # nothing listens on its port any more
    settings = _settings(tmp_path, otp_channels="email,sms", **_email(stopped),
                         **_sms(twilio))
    async with bot(tmp_path, fake, settings) as (tg, _):
        member = tg.member(CHAT)
        assert await reach_code(member) == [SENT_SMS]
        assert _verified(await member.say(_only_code(twilio.sent()[-1].body)))
        assert tg.metrics.value("bot_otp_failed_total", channel="email", reason="refused") == 1.0
        assert tg.metrics.value("bot_otp_sent_total", channel="sms") == 1.0


async def test_code_didnt_arrive_within_a_minute_waits_and_sends_nothing(
        tmp_path: Path, fake: FakeBotApi, mailbox: Mailbox, twilio: FakeTwilio) -> None:
    settings = _settings(tmp_path, otp_channels="sms,email", **_email(mailbox),
                         **_sms(twilio))
    async with bot(tmp_path, fake, settings) as (tg, _):
        member = tg.member(CHAT)
        assert await reach_code(member) == [SENT_SMS]
        tg.clock.advance(30)
        [early] = await member.press("otp:resend")
        assert early.startswith("Kode terakhir dikirim kurang dari satu menit yang lalu.")
        assert len(twilio.calls) == 1 and mailbox.received == []
        tg.clock.advance(31)
        assert await member.press("otp:resend") == [SENT_EMAIL]
        assert _verified(await member.say(mailbox.code()))


async def test_when_no_way_works_the_member_hears_the_alternatives_and_keeps_the_step(
        tmp_path: Path, fake: FakeBotApi, twilio: FakeTwilio, graph: FakeGraphApi) -> None:
    settings = _settings(tmp_path, otp_channels="whatsapp,sms", **_sms(twilio),
                         **_whatsapp(graph))
    async with bot(tmp_path, fake, settings) as (tg, _):
        member = tg.member(CHAT)
        graph.fail(132015, times=None)  # the template is paused
        twilio.fail(500)  # the gateway's server error
        [sorry] = await reach_code(member)
        assert sorry.startswith("Maaf, kode belum") and "JMO" in sorry and "175" in sorry
        assert RESEND_LABEL in sorry and _resend_label(tg) == RESEND_LABEL
        assert [c.status for c in twilio.calls] == [500]
        value = tg.metrics.value
        assert value("bot_otp_failed_total", channel="whatsapp", reason="template") == 1.0
        assert value("bot_otp_failed_total", channel="sms", reason="server") == 1.0

        tg.clock.advance(61)  # the gateway is back: the button sends a new code
        assert await member.press("otp:resend") == [SENT_SMS]  # WhatsApp first, still paused
        assert [c.status for c in twilio.calls] == [500, 201]
        assert _verified(await member.say(_only_code(twilio.sent()[-1].body)))


# --- /healthz ---------------------------------------------------------------------------------

@asynccontextmanager
async def healthz(settings: Settings) -> AsyncIterator[TestClient[Any, Any]]:
    """The web app ``serve`` builds, its checks from :func:`app.serve.health_checks` over a
    real runtime (SQLite, the in-process store) with the senders the settings configure."""
    delivery = otp_sender_for(settings, [])
    async with runtime(settings, delivery) as built:  # closes the senders on exit
        app = create_web_app(metrics=Metrics(), checks=health_checks(settings, built))
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield client


async def test_healthz_reports_each_otp_sender_ok_when_its_service_answers(
        tmp_path: Path, services: Services) -> None:
    twilio, graph = services.twilio, services.graph
    async with healthz(_settings(tmp_path, **services.all())) as client:
        response = await client.get("/healthz")
        body = await response.json()
        assert response.status == 200, body
        assert {body["otp_email"], body["otp_sms"], body["otp_whatsapp"]} == {"ok"}
        assert twilio.fetches == 1 and graph.lookups == 1
        await client.get("/healthz")  # cached: no second probe within 30 s
        assert twilio.fetches == 1 and graph.lookups == 1


async def test_healthz_warns_of_a_stopped_smtp_server_and_stays_healthy(
        tmp_path: Path, twilio: FakeTwilio, graph: FakeGraphApi) -> None:
    """Codes fall through to the next way: a load balancer must not take every process out
    because one OTP provider is down."""
    async with smtp_server() as stopped:
        pass  # started and stopped: nothing listens on its port any more
    settings = _settings(tmp_path, **_email(stopped), **_sms(twilio), **_whatsapp(graph))
    async with healthz(settings) as client:
        response = await client.get("/healthz")
        body = await response.json()
        assert response.status == 200, body
        assert body["status"] == "ok"
        assert body["warnings"]["otp_email"] == "email sender unreachable (refused)"
        assert (body["otp_sms"], body["otp_whatsapp"]) == ("ok", "ok")


async def test_healthz_lists_only_the_configured_senders(
        tmp_path: Path, twilio: FakeTwilio) -> None:
    async with healthz(_settings(tmp_path, **_sms(twilio))) as client:
        body = await (await client.get("/healthz")).json()
        assert body["otp_sms"] == "ok"
        assert "otp_email" not in body and "otp_whatsapp" not in body


# --- logs -------------------------------------------------------------------------------------

async def test_no_code_number_or_address_reaches_a_log_record(
        tmp_path: Path, fake: FakeBotApi, services: Services,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for driver in DRIVERS:  # as app.logsetup.configure_logging keeps them, at any LOG_LEVEL
        caplog.set_level(logging.WARNING, logger=driver)
    settings = _settings(tmp_path, otp_channels="whatsapp,sms,email", **services.all())
    async with bot(tmp_path, fake, settings) as (tg, _):
        await tg.use_webhook()  # the webhook's access log is captured too
        member = tg.member(CHAT, webhook=True)
        codes = await _fall_back_then_resend(tg, member, services)
        member.new_texts()
        await member.say("cek saldo")
    records = [r for r in caplog.records if r.name != "mail" and not r.name.startswith("mail.")]
    assert any(r.name == "channels.whatsapp.otp" for r in records)  # the refusal, captured
    secrets = [*codes, "1234567890", "81234567890", ON_FILE_EMAIL, "siti@", SITI["nik"],
               SITI["kpj"]]
    for record in records:
        text = _record_text(record)
        leaked = [secret for secret in secrets if secret in text]
        assert not leaked, f"{record.name}: {leaked} in {text!r}"


# Database drivers log SQL parameters at DEBUG; configure_logging holds them at WARNING.
DRIVERS = ("aiosqlite", "sqlalchemy.engine", "asyncpg")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)))


def _record_text(record: logging.LogRecord) -> str:
    """The message, its arguments, a traceback, and any extra fields of the record."""
    parts = [record.getMessage(), repr(record.args), record.exc_text or ""]
    parts.extend(f"{key}={value!r}" for key, value in vars(record).items()
                 if key not in _STANDARD)
    return "\n".join(parts)

"""The SMTP OTP sender against a real SMTP server (aiosmtpd) on loopback in the test's loop.

TLS uses a throwaway self-signed certificate made with the ``openssl`` command (the
``cryptography`` package is not in the environment); the TLS tests skip without it.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import SecretStr

from app.otp_delivery import lock_notice
from app.otp_email import SmtpOtpSender, SmtpServer, parse_smtp_url
from app.settings import OtpSettings
from flows.i18n import Catalog
from flows.ports import OtpDeliveryFailed, OtpDestination

CATALOG = Catalog(strict=True)
CODE = "482916"
TO = OtpDestination("email", "siti.rahayu@example.com")
SENDER = "BPJS Ketenagakerjaan <otp@bpjs.example>"
USER, PASSWORD = "otp-bot", "s3cret/pa ss"
QUOTED_PASSWORD = "s3cret%2Fpa%20ss"


@dataclass
class Received:
    message: EmailMessage
    mail_from: str
    rcpt_tos: list[str]
    tls: bool
    authenticated: bool


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps what arrives; ``rcpt_answers`` and ``data_answers`` are
    given (one each, in order) before it accepts."""

    rcpt_answers: list[str] = field(default_factory=list)
    data_answers: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    rcpt_tries: int = 0
    data_tries: int = 0
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)
    connections: int = 0

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,  # noqa: N802
                          address: str, rcpt_options: list[str]) -> str:
        self.rcpt_tries += 1
        if self.rcpt_answers:
            return self.rcpt_answers.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session,  # noqa: N802
                          envelope: Envelope) -> str:
        self.data_tries += 1
        if self.data_answers:
            return self.data_answers.pop(0)
        assert isinstance(envelope.content, bytes)
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(message, str(envelope.mail_from), list(envelope.rcpt_tos),
                                      session.ssl is not None, bool(session.authenticated)))
        return "250 OK queued"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.logins.append((auth_data.login, auth_data.password))
        ok = (auth_data.login, auth_data.password) == (USER.encode(), PASSWORD.encode())
        return AuthResult(success=ok, handled=False)


@asynccontextmanager
async def smtp_server(inbox: Inbox, *, implicit_tls: ssl.SSLContext | None = None,
                      **options: Any) -> AsyncIterator[int]:
    """An aiosmtpd server on 127.0.0.1 on a free port; yields the port."""
    sessions: list[SMTP] = []

    def session() -> SMTP:
        sessions.append(SMTP(inbox, hostname="mail.test", **options))
        inbox.connections += 1
        return sessions[-1]

    server = await asyncio.get_running_loop().create_server(session, "127.0.0.1", 0,
                                                            ssl=implicit_tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
        for smtp in sessions:  # a client that gave up may leave its session open
            if smtp.transport is not None:
                smtp.transport.close()
        await asyncio.sleep(0.01)


@asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[int, list[int]]]:
    """Accepts connections and never answers; yields the port and a connection count."""
    accepted: list[int] = []
    writers: list[asyncio.StreamWriter] = []
    holding: list[asyncio.Task[None]] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        holding.append(task)
        try:
            await reader.read()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()
        await server.wait_closed()
        for writer in writers:
            writer.close()
        await asyncio.gather(*holding)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext  # trusts the test certificate only


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed for a test certificate")
    folder: Path = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return Tls(server, ssl.create_default_context(cafile=str(cert)))


def sender(url: str, **options: Any) -> SmtpOtpSender:
    options.setdefault("retry_pause", 0)
    return SmtpOtpSender(url, SENDER, catalog=CATALOG, **options)


async def failure(send: Callable[[], Any]) -> OtpDeliveryFailed:
    with pytest.raises(OtpDeliveryFailed) as caught:
        await send()
    return caught.value


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    return text.get_content(), html.get_content()


# Delivered and read back


async def test_a_code_arrives_in_indonesian_with_a_text_and_an_html_part() -> None:
    inbox = Inbox()
    async with smtp_server(inbox) as port:
        await sender(f"smtp://127.0.0.1:{port}").send(TO, CODE, "id")
    [got] = inbox.received
    assert (got.mail_from, got.rcpt_tos, got.tls) == ("otp@bpjs.example", [TO.address], False)
    message = got.message
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "Kode verifikasi BPJS Ketenagakerjaan Anda"
    assert (message["From"], message["To"]) == (SENDER, TO.address)
    assert message["Content-Language"] == "id"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].endswith("@bpjs.example>")
    text, html = parts(message)
    assert CODE in text and "Berlaku 5 menit" in text
    assert "Jangan berikan kode ini kepada siapa pun" in text
    assert "Jika Anda tidak merasa meminta kode ini, silakan abaikan email ini." in text
    assert f">{CODE}</strong>" in html and '<html lang="id">' in html
    assert "Berlaku 5 menit" in html and "Jangan berikan kode ini" in html


async def test_a_code_arrives_in_english() -> None:
    inbox = Inbox()
    async with smtp_server(inbox) as port:
        await sender(f"smtp://127.0.0.1:{port}").send(TO, CODE, "en")
    message = inbox.received[0].message
    assert message["Subject"] == "Your BPJS Ketenagakerjaan verification code"
    assert message["Content-Language"] == "en"
    text, html = parts(message)
    assert f"verification code: {CODE}. Valid for 5 minutes." in text
    assert "Never share this code with anyone" in text
    assert f">{CODE}</strong>" in html and "If you did not ask for this code" in html


async def test_the_email_has_no_link_image_or_tracking() -> None:
    inbox = Inbox()
    async with smtp_server(inbox) as port:
        await sender(f"smtp://127.0.0.1:{port}").send(TO, CODE, "id")
    text, html = parts(inbox.received[0].message)
    for needle in ("http", "<a", "href", "<img", "src=", "url("):
        assert needle not in html.lower() and needle not in text.lower(), needle
    assert [p.get_content_type() for p in inbox.received[0].message.iter_parts()] == \
        ["text/plain", "text/html"]


async def test_the_lock_notice_is_plain_text_in_both_languages_without_a_code() -> None:
    inbox = Inbox()
    async with smtp_server(inbox) as port:
        await sender(f"smtp://127.0.0.1:{port}").warn(TO)
    message = inbox.received[0].message
    subject = " ".join(str(message["Subject"]).split())  # unfolded
    assert subject == "BPJS Ketenagakerjaan: Verifikasi dikunci sementara / Verification locked"
    assert message.get_content_type() == "text/plain"
    body = message.get_content()
    indonesian, english = lock_notice(CATALOG).split("\n")
    assert body.split() == f"{indonesian}\n\n{english}".split()
    assert "Verifikasi dikunci" in indonesian and "175" in english and CODE not in body


# TLS and credentials


async def test_a_relay_that_offers_starttls_gets_it_without_certificate_checks(tls: Tls) -> None:
    inbox = Inbox()
    async with smtp_server(inbox, tls_context=tls.server) as port:
        await sender(f"smtp://127.0.0.1:{port}").send(TO, CODE, "id")  # self-signed: accepted
    assert inbox.received[0].tls


async def test_credentials_go_over_starttls_with_a_verified_certificate(tls: Tls) -> None:
    inbox = Inbox()
    async with smtp_server(inbox, tls_context=tls.server, require_starttls=True,
                           authenticator=inbox.authenticate, auth_required=True) as port:
        url = f"smtp://{USER}:{QUOTED_PASSWORD}@127.0.0.1:{port}"
        await sender(url, tls_context=tls.client).send(TO, CODE, "id")
    [got] = inbox.received
    assert got.tls and got.authenticated and CODE in parts(got.message)[0]


async def test_an_untrusted_certificate_stops_the_credentials(tls: Tls) -> None:
    inbox = Inbox()
    async with smtp_server(inbox, tls_context=tls.server, require_starttls=True,
                           authenticator=inbox.authenticate) as port:
        url = f"smtp://{USER}:{QUOTED_PASSWORD}@127.0.0.1:{port}"
        error = await failure(lambda: sender(url).send(TO, CODE, "id"))  # the system's trust
    assert error.reason == "server" and inbox.logins == [] and inbox.received == []


async def test_credentials_are_never_sent_where_starttls_is_not_offered() -> None:
    inbox = Inbox()
    async with smtp_server(inbox, authenticator=inbox.authenticate,
                           auth_require_tls=False) as port:
        url = f"smtp://{USER}:{QUOTED_PASSWORD}@127.0.0.1:{port}"
        error = await failure(lambda: sender(url).send(TO, CODE, "id"))
    assert error.reason == "server" and inbox.logins == [] and inbox.received == []


async def test_smtps_speaks_tls_from_the_first_byte(tls: Tls) -> None:
    inbox = Inbox()
    async with smtp_server(inbox, implicit_tls=tls.server, authenticator=inbox.authenticate,
                           auth_require_tls=False) as port:
        url = f"smtps://{USER}:{QUOTED_PASSWORD}@127.0.0.1:{port}"
        await sender(url, tls_context=tls.client).send(TO, CODE, "en")
    assert inbox.received[0].authenticated
    assert inbox.logins == [(USER.encode(), PASSWORD.encode())]


async def test_wrong_credentials_are_auth(tls: Tls) -> None:
    inbox = Inbox()
    async with smtp_server(inbox, tls_context=tls.server, authenticator=inbox.authenticate,
                           auth_required=True) as port:
        url = f"smtp://{USER}:wrong@127.0.0.1:{port}"
        error = await failure(lambda: sender(url, tls_context=tls.client).send(TO, CODE, "id"))
    assert error.reason == "auth" and inbox.connections == 1, "535 is not tried again"
    assert inbox.logins and inbox.received == []


# Failures


async def test_a_closed_port_is_refused() -> None:
    error = await failure(lambda: sender(f"smtp://127.0.0.1:{closed_port()}").send(TO, CODE, "id"))
    assert error.reason == "refused"


async def test_a_server_that_never_answers_times_out() -> None:
    async with silent_server() as (port, accepted):
        started = time.monotonic()
        error = await failure(
            lambda: sender(f"smtp://127.0.0.1:{port}", timeout=0.3).send(TO, CODE, "id"))
        elapsed = time.monotonic() - started
    assert error.reason == "timeout" and accepted == [1], "a timeout is not tried again"
    assert elapsed < 1.0


@pytest.mark.parametrize("stage", ["rcpt", "data"])
async def test_a_temporary_answer_is_tried_once_more_and_delivered(stage: str) -> None:
    inbox = Inbox()
    getattr(inbox, f"{stage}_answers").append("451 4.3.0 Try again later")
    async with smtp_server(inbox) as port:
        await sender(f"smtp://127.0.0.1:{port}").send(TO, CODE, "id")
    assert len(inbox.received) == 1 and CODE in parts(inbox.received[0].message)[0]
    assert getattr(inbox, f"{stage}_tries") == 2


@pytest.mark.parametrize("stage", ["rcpt", "data"])
async def test_two_temporary_answers_give_server(stage: str) -> None:
    inbox = Inbox()
    getattr(inbox, f"{stage}_answers").extend(["451 4.3.0 Try again later"] * 3)
    async with smtp_server(inbox) as port:
        error = await failure(lambda: sender(f"smtp://127.0.0.1:{port}").send(TO, CODE, "id"))
    assert error.reason == "server" and getattr(inbox, f"{stage}_tries") == 2
    assert inbox.received == []


async def test_a_retry_waits_the_pause_first() -> None:
    inbox = Inbox(rcpt_answers=["452 4.2.2 Mailbox full, try later"])
    async with smtp_server(inbox) as port:
        started = time.monotonic()
        await sender(f"smtp://127.0.0.1:{port}", retry_pause=0.2).send(TO, CODE, "id")
    assert time.monotonic() - started >= 0.2 and inbox.rcpt_tries == 2


async def test_a_permanent_answer_is_rejected_without_a_retry() -> None:
    inbox = Inbox(rcpt_answers=["550 5.1.1 <siti.rahayu@example.com>: mailbox unavailable"])
    async with smtp_server(inbox) as port:
        error = await failure(lambda: sender(f"smtp://127.0.0.1:{port}").send(TO, CODE, "id"))
    assert error.reason == "rejected" and inbox.rcpt_tries == 1


async def test_a_permanent_answer_to_the_data_is_rejected() -> None:
    inbox = Inbox(data_answers=["554 5.6.0 Message refused"])
    async with smtp_server(inbox) as port:
        error = await failure(lambda: sender(f"smtp://127.0.0.1:{port}").send(TO, CODE, "id"))
    assert error.reason == "rejected" and inbox.data_tries == 1


async def test_an_address_with_a_line_break_is_rejected_before_connecting() -> None:
    broken = OtpDestination("email", "a@example.com\r\nBcc: b@example.com")
    error = await failure(lambda: sender(f"smtp://127.0.0.1:{closed_port()}")
                          .send(broken, CODE, "id"))
    assert error.reason == "rejected"


# Health check


async def test_the_check_logs_in_and_its_result_is_kept_30_seconds(tls: Tls) -> None:
    inbox, now = Inbox(), [1000.0]
    async with smtp_server(inbox, tls_context=tls.server, authenticator=inbox.authenticate,
                           auth_required=True) as port:
        url = f"smtp://{USER}:{QUOTED_PASSWORD}@127.0.0.1:{port}"
        checked = sender(url, tls_context=tls.client, clock=lambda: now[0])
        await checked.check()
        now[0] += 29
        await checked.check()
        assert len(inbox.logins) == 1
        now[0] += 2
        await checked.check()
    assert len(inbox.logins) == 2 and inbox.received == []


async def test_a_failed_check_takes_at_most_a_second_and_is_kept_too() -> None:
    now = [1000.0]
    async with silent_server() as (port, accepted):
        checked = sender(f"smtp://127.0.0.1:{port}", clock=lambda: now[0])
        started = time.monotonic()
        assert (await failure(checked.check)).reason == "timeout"
        assert time.monotonic() - started < 1.5
        now[0] += 29
        assert (await failure(checked.check)).reason == "timeout"
        assert accepted == [1]
        now[0] += 2
        assert (await failure(checked.check)).reason == "timeout"
        assert accepted == [1, 1]


async def test_the_check_reports_wrong_credentials(tls: Tls) -> None:
    inbox = Inbox()
    async with smtp_server(inbox, tls_context=tls.server,
                           authenticator=inbox.authenticate) as port:
        checked = sender(f"smtp://{USER}:wrong@127.0.0.1:{port}", tls_context=tls.client)
        assert (await failure(checked.check)).reason == "auth"


async def test_the_check_reports_a_closed_port() -> None:
    checked = sender(f"smtp://127.0.0.1:{closed_port()}")
    assert (await failure(checked.check)).reason == "refused"
    await checked.aclose()


# Settings


@pytest.mark.parametrize(("url", "expected"), [
    ("smtp://relay.local", SmtpServer("relay.local", 25, "", "", False)),
    ("smtp://u:p@mail.example:2525", SmtpServer("mail.example", 2525, "u", "p", False)),
    ("smtp://u%40x:p%3Aq@mail.example", SmtpServer("mail.example", 587, "u@x", "p:q", False)),
    ("smtps://u:p@mail.example", SmtpServer("mail.example", 465, "u", "p", True)),
])
def test_smtp_urls(url: str, expected: SmtpServer) -> None:
    assert parse_smtp_url(url) == expected


def test_starttls_is_required_with_credentials_and_opportunistic_without() -> None:
    assert parse_smtp_url("smtp://u:p@h").starttls is True
    assert parse_smtp_url("smtp://h").starttls is None
    assert parse_smtp_url("smtps://u:p@h").starttls is False


def _settings(**values: Any) -> OtpSettings:
    return OtpSettings(_env_file=None, **values)


def test_no_smtp_url_means_no_sender() -> None:
    assert SmtpOtpSender.from_settings(_settings(smtp_url=SecretStr(""))) is None


def test_the_from_address_is_required() -> None:
    with pytest.raises(SystemExit, match="OTP_EMAIL_FROM must be set"):
        SmtpOtpSender.from_settings(_settings(smtp_url=SecretStr("smtp://h:25"),
                                              otp_email_from=""))
    with pytest.raises(SystemExit, match="OTP_EMAIL_FROM must be an email address"):
        SmtpOtpSender.from_settings(_settings(smtp_url=SecretStr("smtp://h:25"),
                                              otp_email_from="BPJS"))


@pytest.mark.parametrize("url", ["http://u:hunter2@h", "smtp://u:hunter2@h:port", "smtp://"])
def test_a_bad_smtp_url_names_the_setting_not_the_password(url: str) -> None:
    with pytest.raises(SystemExit) as caught:
        SmtpOtpSender.from_settings(_settings(smtp_url=SecretStr(url),
                                              otp_email_from="otp@example.go.id"))
    assert "SMTP_URL" in str(caught.value) and "hunter2" not in str(caught.value)


async def test_from_settings_uses_the_timeout_and_the_from_address() -> None:
    inbox = Inbox()
    async with smtp_server(inbox) as port:
        built = SmtpOtpSender.from_settings(
            _settings(smtp_url=SecretStr(f"smtp://127.0.0.1:{port}"), smtp_timeout=2.5,
                      otp_email_from=" otp@example.go.id "), catalog=CATALOG)
        assert built is not None and built.kind == "email"
        await built.send(TO, CODE, "id")
    assert inbox.received[0].mail_from == "otp@example.go.id"


# No leaks


async def test_no_log_record_or_error_holds_the_code_the_address_or_the_password(
        tls: Tls, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[OtpDeliveryFailed] = []
    inbox = Inbox(rcpt_answers=["451 4.3.0 <siti.rahayu@example.com> later", "550 5.1.1 "
                                "<siti.rahayu@example.com> unknown", "451 later", "451 later"])
    async with smtp_server(inbox, tls_context=tls.server,
                           authenticator=inbox.authenticate) as port:
        good = sender(f"smtp://{USER}:{QUOTED_PASSWORD}@127.0.0.1:{port}",
                      tls_context=tls.client)
        bad = sender(f"smtp://{USER}:wrong-{QUOTED_PASSWORD}@127.0.0.1:{port}",
                     tls_context=tls.client)
        attempts: list[Callable[[], Awaitable[None]]] = [
            lambda: good.send(TO, CODE, "id"), lambda: good.send(TO, CODE, "en"),
            lambda: good.send(TO, CODE, "id"), lambda: bad.send(TO, CODE, "id"), bad.check]
        for send in attempts:
            try:
                await send()
            except OtpDeliveryFailed as exc:
                errors.append(exc)
        await good.warn(TO)
        await good.check()
    async with silent_server() as (port, _):
        errors.append(await failure(
            lambda: sender(f"smtp://127.0.0.1:{port}", timeout=0.2).send(TO, CODE, "id")))
    assert [e.reason for e in errors] == ["rejected", "server", "auth", "auth", "timeout"]
    assert len(inbox.received) == 2  # the retried code and the lock notice
    formatter = logging.Formatter("%(name)s %(message)s")
    ours = [r for r in caplog.records if not r.name.startswith("mail.")]  # not aiosmtpd's
    assert any(r.name == "app.otp_email" for r in ours)
    texts = [formatter.format(r) for r in ours] + [repr(e) for e in errors]
    secrets = (CODE, TO.address, "siti.rahayu", PASSWORD, QUOTED_PASSWORD, "s3cret")
    leaks = [(secret, text) for text in texts for secret in secrets if secret in text]
    assert leaks == []
    assert all(e.__cause__ is None and (e.__context__ is None or e.__suppress_context__)
               for e in errors), "no chained SMTP answer (it may quote the address)"

"""The SMS sender against a fake Twilio on loopback: what arrives, each failure's reason label,
the one retry it allows, the cached health check, and logs that never hold a code or number."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from pydantic import SecretStr

from app.otp_delivery import lock_notice
from app.otp_sms import SmsOtpSender, TwilioSmsSender, e164
from app.settings import OtpSettings
from flows.i18n import Catalog
from flows.ports import OtpDeliveryFailed, OtpDestination
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, SERVICE_SID, FakeTwilio

NUMBER = "081234567890"
E164 = "+6281234567890"
TO = OtpDestination("sms", NUMBER)
CODE = "493817"
SENDER = "BPJSTK"

MakeSender = Callable[..., TwilioSmsSender]


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as fake:
        yield fake


@pytest.fixture
async def make_sender(twilio: FakeTwilio) -> AsyncIterator[MakeSender]:
    made: list[TwilioSmsSender] = []

    def make(sender: str = SENDER, *, token: str = AUTH_TOKEN, api_base: str = "",
             timeout: float = 5.0, clock: Callable[[], float] = time.monotonic,
             ) -> TwilioSmsSender:
        made.append(TwilioSmsSender(ACCOUNT_SID, token, sender, api_base=api_base or twilio.url(),
                                    timeout=timeout, clock=clock))
        return made[-1]

    yield make
    for sender in made:
        await sender.aclose()


async def _reason(call: Awaitable[None]) -> str:
    with pytest.raises(OtpDeliveryFailed) as failed:
        await call
    return failed.value.reason


# --- sent ---------------------------------------------------------------------------------

async def test_a_code_arrives_in_indonesian_at_the_number_in_e164(
        twilio: FakeTwilio, make_sender: MakeSender) -> None:
    await make_sender().send(TO, CODE, "id")
    [message] = twilio.sent()
    assert (message.to, message.from_, message.service) == (E164, SENDER, "")
    assert CODE in message.body and message.body.startswith("Kode verifikasi BPJS")


async def test_a_code_arrives_in_english(twilio: FakeTwilio, make_sender: MakeSender) -> None:
    await make_sender().send(OtpDestination("sms", E164), CODE, "en")
    [message] = twilio.sent()
    assert message.to == E164
    assert message.body.startswith(f"Your BPJS Ketenagakerjaan verification code: {CODE}.")


async def test_a_messaging_service_sender_goes_as_messaging_service_sid(
        twilio: FakeTwilio, make_sender: MakeSender) -> None:
    await make_sender(SERVICE_SID).send(TO, CODE, "id")
    [message] = twilio.sent()
    assert (message.service, message.from_) == (SERVICE_SID, "")


async def test_a_twilio_number_goes_as_from(twilio: FakeTwilio,
                                            make_sender: MakeSender) -> None:
    await make_sender("+15005550006").send(TO, CODE, "id")
    assert twilio.sent()[0].from_ == "+15005550006"


async def test_the_lock_notice_goes_as_an_sms_without_a_code(
        twilio: FakeTwilio, make_sender: MakeSender) -> None:
    await make_sender().warn(TO)
    [message] = twilio.sent()
    assert message.to == E164 and message.body == lock_notice(Catalog())


def test_numbers_on_file_become_e164() -> None:
    assert {e164(n) for n in ("081234567890", "+62 812-3456-7890", "6281234567890")} == {E164}
    assert e164("+1 415 555 0100") == "+14155550100", "a foreign number is Twilio's to judge"


def test_the_sender_serves_the_sms_kind() -> None:
    assert TwilioSmsSender.kind == "sms"


# --- refused by Twilio --------------------------------------------------------------------

async def test_wrong_credentials_are_auth(twilio: FakeTwilio, make_sender: MakeSender) -> None:
    sender = make_sender(token="0" * 32)
    assert await _reason(sender.send(TO, CODE, "id")) == "auth"
    assert await _reason(sender.check()) == "auth"
    assert [c.status for c in twilio.calls] == [401], "never retried"


async def test_an_invalid_number_is_rejected_with_21211(
        twilio: FakeTwilio, make_sender: MakeSender) -> None:
    assert await _reason(make_sender().send(OtpDestination("sms", "0812-34"), CODE, "id")) \
        == "rejected"
    assert [(c.status, c.code) for c in twilio.calls] == [(400, 21211)]


@pytest.mark.parametrize("code", [21614, 21610, 21408])
async def test_a_recipient_twilio_will_not_send_to_is_rejected(
        twilio: FakeTwilio, make_sender: MakeSender, code: int) -> None:
    twilio.refuse(E164, code)
    assert await _reason(make_sender().send(TO, CODE, "id")) == "rejected"
    assert [(c.status, c.code) for c in twilio.calls] == [(400, code)]


async def test_another_client_error_is_error(twilio: FakeTwilio,
                                             make_sender: MakeSender) -> None:
    assert await _reason(make_sender("MG" + "1" * 32).send(TO, CODE, "id")) == "error"
    assert twilio.calls[0].code == 21701, "an unknown Messaging Service"


# --- throttling and server faults ---------------------------------------------------------

async def test_a_429_without_retry_after_is_throttled_at_once(
        twilio: FakeTwilio, make_sender: MakeSender) -> None:
    twilio.fail(429)
    assert await _reason(make_sender().send(TO, CODE, "id")) == "throttled"
    assert len(twilio.calls) == 1


async def test_a_429_with_a_long_retry_after_is_throttled_at_once(
        twilio: FakeTwilio, make_sender: MakeSender) -> None:
    twilio.fail(429, retry_after="30")
    started = time.monotonic()
    assert await _reason(make_sender().send(TO, CODE, "id")) == "throttled"
    assert len(twilio.calls) == 1 and time.monotonic() - started < 1.0


async def test_a_short_retry_after_is_honoured_once(twilio: FakeTwilio,
                                                   make_sender: MakeSender) -> None:
    twilio.fail(429, retry_after="0.3")
    await make_sender().send(TO, CODE, "id")
    first, second = twilio.calls
    assert (first.status, second.status) == (429, 201)
    assert second.at - first.at >= 0.3


async def test_a_second_429_is_throttled(twilio: FakeTwilio, make_sender: MakeSender) -> None:
    twilio.fail(429, retry_after="0.1", times=3)
    assert await _reason(make_sender().send(TO, CODE, "id")) == "throttled"
    assert len(twilio.calls) == 2


async def test_a_503_is_retried_once_after_half_a_second(
        twilio: FakeTwilio, make_sender: MakeSender) -> None:
    twilio.fail(503)
    await make_sender().send(TO, CODE, "id")
    first, second = twilio.calls
    assert (first.status, second.status) == (503, 201)
    assert second.at - first.at >= 0.5


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_a_gateway_fault_twice_is_server(twilio: FakeTwilio, make_sender: MakeSender,
                                              status: int) -> None:
    twilio.fail(status, times=2)
    assert await _reason(make_sender().send(TO, CODE, "id")) == "server"
    assert [c.status for c in twilio.calls] == [status, status]


async def test_a_500_is_server_without_retry(twilio: FakeTwilio,
                                            make_sender: MakeSender) -> None:
    twilio.fail(500)
    assert await _reason(make_sender().send(TO, CODE, "id")) == "server"
    assert len(twilio.calls) == 1


@pytest.mark.parametrize("status", [200, 400])
async def test_a_non_json_answer_is_server(twilio: FakeTwilio, make_sender: MakeSender,
                                          status: int) -> None:
    twilio.fail(status, text="<html><body>Bad gateway of a proxy</body></html>")
    assert await _reason(make_sender().send(TO, CODE, "id")) == "server"


# --- transport ----------------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_closed_port_is_refused(make_sender: MakeSender) -> None:
    sender = make_sender(api_base=f"http://127.0.0.1:{_closed_port()}")
    assert await _reason(sender.send(TO, CODE, "id")) == "refused"
    assert await _reason(sender.check()) == "refused"


async def test_a_slow_gateway_is_a_timeout(twilio: FakeTwilio,
                                           make_sender: MakeSender) -> None:
    twilio.delay = 1.5
    started = time.monotonic()
    assert await _reason(make_sender(timeout=0.3).send(TO, CODE, "id")) == "timeout"
    assert time.monotonic() - started < 1.0


# --- check --------------------------------------------------------------------------------

class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_check_is_cached_for_30_seconds(twilio: FakeTwilio,
                                              make_sender: MakeSender) -> None:
    clock = _Clock()
    sender = make_sender(clock=clock)
    await sender.check()
    await sender.check()
    clock.now += 29
    await sender.check()
    assert twilio.fetches == 1
    clock.now += 2
    await sender.check()
    assert twilio.fetches == 2


async def test_a_failed_check_is_cached_too(twilio: FakeTwilio,
                                            make_sender: MakeSender) -> None:
    clock = _Clock()
    sender = make_sender(token="0" * 32, clock=clock)
    assert await _reason(sender.check()) == "auth"
    assert await _reason(sender.check()) == "auth"
    assert twilio.fetches == 1
    clock.now += 31
    assert await _reason(sender.check()) == "auth"
    assert twilio.fetches == 2


async def test_check_gives_up_after_a_second(twilio: FakeTwilio,
                                             make_sender: MakeSender) -> None:
    twilio.delay = 3.0
    started = time.monotonic()
    assert await _reason(make_sender().check()) == "timeout"
    assert time.monotonic() - started < 1.5


async def test_a_suspended_account_fails_the_check(twilio: FakeTwilio,
                                                   make_sender: MakeSender) -> None:
    twilio.account_status = "suspended"
    assert await _reason(make_sender().check()) == "auth"


# --- settings -----------------------------------------------------------------------------

def _settings(**values: str) -> OtpSettings:
    fields: dict[str, object] = {
        "sms_gateway": "twilio", "sms_gateway_url": "", "sms_sender": SENDER,
        "sms_gateway_token": SecretStr(f"{ACCOUNT_SID}:{AUTH_TOKEN}"), **values}
    if isinstance(fields["sms_gateway_token"], str):
        fields["sms_gateway_token"] = SecretStr(fields["sms_gateway_token"])
    return OtpSettings(**fields)  # type: ignore[arg-type]


def test_no_gateway_is_no_sender() -> None:
    assert SmsOtpSender.from_settings(_settings(sms_gateway="")) is None


def test_an_unknown_gateway_stops_start_up_naming_the_accepted_ones() -> None:
    with pytest.raises(SystemExit, match="twilio"):
        SmsOtpSender.from_settings(_settings(sms_gateway="nexmo"))


@pytest.mark.parametrize("token", ["", "ACxx:token", f"{ACCOUNT_SID}", f"{ACCOUNT_SID}:",
                                   f"SK{'0' * 32}:secret"])
def test_a_malformed_token_stops_start_up(token: str) -> None:
    with pytest.raises(SystemExit, match="SMS_GATEWAY_TOKEN"):
        SmsOtpSender.from_settings(_settings(sms_gateway_token=token))


@pytest.mark.parametrize("sender", ["", "BPJS Ketenagakerjaan", "12345", "MG123"])
def test_a_malformed_sender_stops_start_up(sender: str) -> None:
    with pytest.raises(SystemExit, match="SMS_SENDER"):
        SmsOtpSender.from_settings(_settings(sms_sender=sender))


async def test_the_configured_sender_sends_through_the_gateway_url(twilio: FakeTwilio) -> None:
    sender = SmsOtpSender.from_settings(_settings(sms_gateway="Twilio",
                                                  sms_gateway_url=twilio.url(),
                                                  sms_sender=SERVICE_SID))
    assert isinstance(sender, TwilioSmsSender)
    try:
        await sender.send(TO, CODE, "en")
        await sender.check()
    finally:
        await sender.aclose()
    assert twilio.sent()[0].service == SERVICE_SID


# --- logs ---------------------------------------------------------------------------------

async def test_no_log_record_holds_a_code_a_number_or_the_text(
        twilio: FakeTwilio, make_sender: MakeSender, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sender = make_sender()
    await sender.send(TO, CODE, "id")
    await sender.warn(TO)
    twilio.fail(429, retry_after="0.05")
    await sender.send(TO, CODE, "en")
    twilio.fail(503, times=2)
    failures = [await _reason(sender.send(TO, CODE, "id"))]
    twilio.refuse(E164, 21614)
    failures.append(await _reason(sender.send(TO, CODE, "id")))
    failures.append(await _reason(sender.send(OtpDestination("sms", "0812-34"), CODE, "id")))
    failures.append(await _reason(make_sender(token="0" * 32).send(TO, CODE, "id")))
    assert failures == ["server", "rejected", "rejected", "auth"]
    assert "21211" in caplog.text, "the error code is logged, never Twilio's message"
    texts = [r.getMessage() + repr(r.args) + str(r.exc_info) for r in caplog.records]
    secrets = [CODE, NUMBER, E164, E164[1:], NUMBER[1:], "081234", "Kode verifikasi",
               "verification code", "someone typed"]
    leaks = [(s, t) for t in texts for s in secrets if s in t]
    assert not leaks
    assert len(twilio.sent()) == 3

"""Prometheus metrics on their own registry, and the OTP counting decorator."""

from __future__ import annotations

import pytest

from app.metrics import CountingOtpSender, Metrics
from flows.ports import OtpDeliveryFailed, OtpDestination

TO = OtpDestination("sms", "081234567890")


class Sender:
    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[str] = []

    async def send(self, to: OtpDestination, code: str, locale: str) -> None:
        if self.fail:
            raise OtpDeliveryFailed("gateway down", reason="server")
        self.sent.append(code)


def test_every_metric_is_exposed_with_its_name() -> None:
    metrics = Metrics()
    metrics.updates.labels("telegram").inc()
    metrics.replies.labels("telegram").inc(2)
    metrics.errors.labels("internal").inc()
    metrics.duplicates.inc()
    metrics.handoffs.inc()
    metrics.update_seconds.labels("telegram").observe(0.02)
    text = metrics.render().decode()
    for line in ('bot_updates_total{channel="telegram"} 1.0',
                 'bot_replies_total{channel="telegram"} 2.0',
                 'bot_errors_total{kind="internal"} 1.0', "bot_duplicates_total 1.0",
                 "bot_handoffs_total 1.0",
                 'bot_update_seconds_bucket{channel="telegram",le="0.025"} 1.0',
                 'bot_update_seconds_count{channel="telegram"} 1.0'):
        assert line in text


def test_two_instances_do_not_share_counts_or_the_global_registry() -> None:
    first, second = Metrics(), Metrics()
    first.duplicates.inc()
    assert first.value("bot_duplicates_total") == 1.0
    assert second.value("bot_duplicates_total") == 0.0
    assert second.value("bot_updates_total", channel="telegram") == 0.0


async def test_the_counting_sender_counts_sent_codes() -> None:
    metrics, inner = Metrics(), Sender()
    await CountingOtpSender(inner, metrics).send(TO, "123456", "id")
    assert inner.sent == ["123456"]
    assert metrics.value("bot_otp_sent_total", channel="sms") == 1.0
    assert metrics.value("bot_otp_failed_total", channel="sms", reason="server") == 0.0
    assert 'bot_otp_sent_total{channel="sms"} 1.0' in metrics.render().decode()


async def test_the_counting_sender_counts_and_reraises_failures() -> None:
    metrics = Metrics()
    with pytest.raises(OtpDeliveryFailed):
        await CountingOtpSender(Sender(fail=True), metrics).send(TO, "123456", "id")
    assert metrics.value("bot_otp_failed_total", channel="sms", reason="server") == 1.0
    assert metrics.value("bot_otp_sent_total", channel="sms") == 0.0
    assert 'bot_otp_failed_total{channel="sms",reason="server"} 1.0' in metrics.render().decode()

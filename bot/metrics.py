"""Prometheus metrics of the bot, on a registry of its own (never the process-global one).

Channels count updates, replies, duplicates, errors and latency; :class:`CountingOtpSender`
counts OTP deliveries around whatever sender is configured. ``/metrics`` serves
:meth:`Metrics.render`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from flows.ports import OtpDeliveryFailed, OtpDestination, OtpSender

__all__ = ["CONTENT_TYPE", "CountingOtpSender", "Metrics"]

# The classic text format, which every Prometheus version scrapes (generate_latest writes it).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Update-to-last-reply latency: most updates take milliseconds, a flood-controlled one seconds.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The bot's counters and latency histogram."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.updates = Counter("bot_updates", "Updates received from members.", ["channel"],
                               registry=reg)
        self.replies = Counter("bot_replies", "Messages sent or edited for members.",
                               ["channel"], registry=reg)
        self.errors = Counter("bot_errors", "Faults while handling updates, by kind.", ["kind"],
                              registry=reg)
        self.duplicates = Counter("bot_duplicates", "Repeated deliveries of an update, dropped.",
                                  registry=reg)
        self.otp_sent = Counter("bot_otp_sent", "OTP codes handed to a sender.", registry=reg)
        self.otp_failed = Counter("bot_otp_failed", "OTP codes that could not be sent.",
                                  registry=reg)
        self.handoffs = Counter("bot_handoffs", "Conversations handed to a human agent.",
                                registry=reg)
        self.update_seconds = Histogram("bot_update_seconds",
                                        "Seconds from an update received to its last reply.",
                                        ["channel"], buckets=_BUCKETS, registry=reg)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """One sample's current value (``0.0`` when never observed); for tests and tools."""
        found = self.registry.get_sample_value(name, labels or None)
        return 0.0 if found is None else found


class CountingOtpSender:
    """An :class:`~flows.ports.OtpSender` that counts sent and failed codes around another."""

    def __init__(self, inner: OtpSender, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def send(self, to: OtpDestination, code: str, locale: str) -> None:
        """Send through the wrapped sender and count the outcome."""
        try:
            await self._inner.send(to, code, locale)
        except OtpDeliveryFailed:
            self._metrics.otp_failed.inc()
            raise
        self._metrics.otp_sent.inc()

"""Prometheus metrics of the bot, on a registry of its own (never the process-global one).

Channels count updates, replies, duplicates, errors and latency; :class:`CountingOtpSender`
counts OTP deliveries around whatever sender is configured; :class:`CountingTicketStore` counts
handoffs (tickets opened by this process). :class:`TicketGauges` mirrors the ticket table
(shared by every process) from ``TicketStore.stats()``, refreshed by a background task of the
long-running commands. ``/metrics`` serves :meth:`Metrics.render`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from flows.ports import (
    Clock,
    OtpDeliveryFailed,
    OtpDestination,
    OtpSender,
    OtpWarner,
    Ticket,
    TicketStore,
    TranscriptLine,
)
from flows.types import SessionKey

__all__ = ["CONTENT_TYPE", "CountingOtpSender", "CountingTicketStore", "Metrics",
           "TicketGauges"]

log = logging.getLogger(__name__)
FIRST_REPLY_WINDOW = timedelta(days=7)  # the window of the median time to first reply

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
        self.otp_sent = Counter("bot_otp_sent", "OTP codes handed to a sender, by channel.",
                                ["channel"], registry=reg)
        self.otp_failed = Counter("bot_otp_failed",
                                  "OTP codes a channel could not send, by channel and reason.",
                                  ["channel", "reason"], registry=reg)
        self.handoffs = Counter("bot_handoffs", "Conversations handed to a human agent.",
                                registry=reg)
        self.update_seconds = Histogram("bot_update_seconds",
                                        "Seconds from an update received to its last reply.",
                                        ["channel"], buckets=_BUCKETS, registry=reg)
        # Contribution alerts (issue 16): outcome is planned, sent, blocked, skipped or failed.
        self.alerts = Counter("bot_alerts", "Contribution alerts by kind, channel and outcome.",
                              ["kind", "channel", "outcome"], registry=reg)
        self.alert_queue_depth = Gauge("bot_alert_queue_depth",
                                       "Alert jobs enqueued and not finished.", registry=reg)
        self.alert_oldest_pending = Gauge(
            "bot_alert_oldest_pending_seconds",
            "Seconds since the oldest unfinished alert job was enqueued.", registry=reg)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """One sample's current value (``0.0`` when never observed); for tests and tools."""
        found = self.registry.get_sample_value(name, labels or None)
        return 0.0 if found is None else found


class CountingOtpSender:
    """An :class:`~flows.ports.OtpSender` that counts sent and failed codes around another:
    ``bot_otp_sent_total{channel}`` and ``bot_otp_failed_total{channel,reason}``, the
    channel being the destination's kind (``sms``, ``whatsapp``, ``email``)."""

    def __init__(self, inner: OtpSender, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def send(self, to: OtpDestination, code: str, locale: str) -> None:
        """Send through the wrapped sender and count the outcome."""
        try:
            await self._inner.send(to, code, locale)
        except OtpDeliveryFailed as exc:
            self._metrics.otp_failed.labels(to.kind, exc.reason).inc()
            raise
        self._metrics.otp_sent.labels(to.kind).inc()

    async def warn(self, to: OtpDestination) -> None:
        """Pass an OTP lock notice on to the wrapped sender, when it can send one."""
        if isinstance(self._inner, OtpWarner):
            await self._inner.warn(to)


class CountingTicketStore:
    """A :class:`~flows.ports.TicketStore` that counts ``bot_handoffs_total`` when ``open``
    creates a ticket (not when it returns the chat's ticket that is still open)."""

    def __init__(self, inner: TicketStore, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def open(self, key: SessionKey, locale: str, reason: str, at: datetime) -> Ticket:
        """Open through the wrapped store; count a new ticket."""
        before = await self._inner.active_for(key)
        ticket = await self._inner.open(key, locale, reason, at)
        if before is None or before.id != ticket.id:
            self._metrics.handoffs.inc()
        return ticket

    async def active_for(self, key: SessionKey) -> Ticket | None:
        """The chat's queued or open ticket."""
        return await self._inner.active_for(key)

    async def get(self, ticket_id: int) -> Ticket | None:
        """A ticket by number."""
        return await self._inner.get(ticket_id)

    async def by_topic(self, topic_id: int) -> Ticket | None:
        """The ticket whose desk thread is ``topic_id``."""
        return await self._inner.by_topic(topic_id)

    async def set_topic(self, ticket_id: int, topic_id: int) -> None:
        """Remember the desk thread of a ticket."""
        await self._inner.set_topic(ticket_id, topic_id)

    async def claim(self, ticket_id: int, agent: str, at: datetime) -> Ticket:
        """Assign an agent."""
        return await self._inner.claim(ticket_id, agent, at)

    async def touch(self, ticket_id: int, who: str, at: datetime) -> None:
        """Record activity."""
        await self._inner.touch(ticket_id, who, at)

    async def close(self, ticket_id: int, at: datetime, resolution: str) -> Ticket:
        """Close the ticket."""
        return await self._inner.close(ticket_id, at, resolution)

    async def rate(self, ticket_id: int, rating: int) -> None:
        """Store the member's rating."""
        await self._inner.rate(ticket_id, rating)

    async def add_line(self, ticket_id: int, who: str, text: str, at: datetime) -> None:
        """Append to the transcript."""
        await self._inner.add_line(ticket_id, who, text, at)

    async def last_lines(self, ticket_id: int, limit: int = 10) -> list[TranscriptLine]:
        """The newest transcript lines, oldest first."""
        return await self._inner.last_lines(ticket_id, limit)

    async def queue_position(self, ticket_id: int) -> int:
        """The ticket's place in the queue."""
        return await self._inner.queue_position(ticket_id)

    async def median_first_reply(self, since: datetime) -> float | None:
        """Median seconds to the first agent reply."""
        return await self._inner.median_first_reply(since)

    async def waiting(self) -> list[Ticket]:
        """Tickets not closed, oldest first."""
        return await self._inner.waiting()

    async def purge_transcripts(self, before: datetime) -> int:
        """Delete old transcript lines."""
        return await self._inner.purge_transcripts(before)

    async def erase(self, key: SessionKey, at: datetime) -> list[Ticket]:
        """Forget the chat's tickets."""
        return await self._inner.erase(key, at)

    async def stats(self) -> dict[str, float]:
        """Counts and averages for /metrics."""
        return await self._inner.stats()


class TicketGauges:
    """Ticket metrics from the shared ticket table, as gauges refreshed by :meth:`run`:
    ``bot_tickets_opened``, ``bot_tickets_claimed``, ``bot_tickets_closed`` (all time),
    ``bot_tickets_waiting`` (queued now), ``bot_tickets_open`` (with an agent now),
    ``bot_ticket_first_reply_seconds`` (median over the tickets opened in the last 7 days),
    ``bot_ticket_rating_average`` and ``bot_tickets_rated``."""

    _STATS = (("opened", "Support tickets ever opened."),
              ("claimed", "Support tickets claimed by an agent."),
              ("closed", "Support tickets closed."),
              ("waiting", "Support tickets queued now, waiting for an agent."),
              ("open", "Support tickets being handled by an agent now."),
              ("rated", "Closed support tickets the member rated."))

    def __init__(self, metrics: Metrics, tickets: TicketStore, clock: Clock) -> None:
        self._tickets = tickets
        self._clock = clock
        reg = metrics.registry
        self._counts = {name: Gauge(f"bot_tickets_{name}", text, registry=reg)
                        for name, text in self._STATS}
        self._first_reply = Gauge("bot_ticket_first_reply_seconds",
                                  "Median seconds from opening to the first agent reply "
                                  "(tickets opened in the last 7 days).", registry=reg)
        self._rating = Gauge("bot_ticket_rating_average",
                             "Average 1-5 rating of rated tickets (0 when none).", registry=reg)

    async def refresh(self) -> None:
        """Read the ticket table once."""
        stats = await self._tickets.stats()
        for name, gauge in self._counts.items():
            gauge.set(float(stats.get(name, 0.0)))
        self._rating.set(float(stats.get("rating_avg", 0.0)))
        median = await self._tickets.median_first_reply(self._clock.now() - FIRST_REPLY_WINDOW)
        self._first_reply.set(median or 0.0)

    async def run(self, interval: float = 15.0) -> None:
        """Refresh forever (until cancelled); a failing read is logged and retried."""
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - metrics never stop the bot
                log.warning("could not refresh the ticket metrics: %s", type(exc).__name__)
            await asyncio.sleep(interval)

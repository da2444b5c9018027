"""What the alert planner and workers talk to, as protocols: the balance service's change
feed, the directory of subscribed chats, the planner's cursors, the queue and the shared
pacing. The backends: :mod:`balance` (feed), :mod:`storage.alerts` (directory, cursors),
:mod:`alerts.queue_redis`, :mod:`alerts.queue_sql` and :mod:`alerts.queue_memory` (queue,
marks), :mod:`alerts.pacing`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from domain.alerts import AlertJob
from flows.ports import BalanceService
from flows.types import SessionKey

__all__ = ["AlertQueue", "BalanceBackend", "ChangesPage", "ChatState", "ContributionFeed",
           "CursorStore", "Delivery", "MissingMembership", "MissingPage", "Pacer",
           "PostedContribution", "Recipient", "Result", "SubscriberDirectory"]


# ------------------------------------------------------------------ the change feed


@dataclass(frozen=True, slots=True)
class PostedContribution:
    """One contribution of the feed (inserted or changed), with the membership's segment."""

    kpj: str
    period: str  # "YYYY-MM"
    segment: str  # PU, BPU, PMI
    employer_part: int
    employee_part: int
    paid_on: date


@dataclass(frozen=True, slots=True)
class ChangesPage:
    """A page of the feed in insertion order; ``cursor`` is passed back as ``since`` for the
    next page (the same cursor when nothing is new); ``more`` says whether another page is
    ready now."""

    items: tuple[PostedContribution, ...]
    cursor: str
    more: bool


@dataclass(frozen=True, slots=True)
class MissingMembership:
    """An active membership whose contribution for the asked month is not recorded, though
    it has contributions before that month."""

    kpj: str
    segment: str


@dataclass(frozen=True, slots=True)
class MissingPage:
    """A page of :class:`MissingMembership`, by KPJ ascending; ``after`` is passed back for
    the next page, ``None`` on the last one."""

    items: tuple[MissingMembership, ...]
    after: str | None


class ContributionFeed(Protocol):
    """The part of the balance service contract that lets a pass read changes in bulk instead
    of asking every member (``GET /v1/contributions/changes``, ``/v1/contributions/missing``,
    ``/v1/development-rates``). Raises ``BalanceServiceUnavailable`` when unreachable."""

    async def contribution_changes(self, since: str = "", limit: int = 1000) -> ChangesPage:
        """Contributions inserted or changed after cursor ``since`` (``""``: from the start),
        at most ``limit`` (1 to 10,000) in insertion order."""
        ...

    async def missing_contributions(self, period: str, *, after: str = "",
                                    limit: int = 1000) -> MissingPage:
        """Active memberships without a contribution for ``period`` (``"YYYY-MM"``) that have
        one before it, KPJ after ``after``, at most ``limit`` (1 to 10,000)."""
        ...

    async def development_rates(self) -> Mapping[int, Decimal]:
        """The development rate credited for each configured year, in percent."""
        ...


class BalanceBackend(BalanceService, ContributionFeed, Protocol):
    """A balance service that also serves the change feed: the reference service, its cache
    and the HTTP client all do."""


# ----------------------------------------------------------------- subscribed chats


@dataclass(frozen=True, slots=True, order=True)
class Recipient:
    """A chat to alert about one of its linked memberships."""

    channel: str
    chat_id: str
    kpj: str

    @property
    def key(self) -> SessionKey:
        """The chat."""
        return SessionKey(self.channel, self.chat_id)


@dataclass(frozen=True, slots=True)
class ChatState:
    """What a worker checks just before sending: the kinds the chat is subscribed to, the
    memberships linked to it, and its language."""

    kinds: frozenset[str]
    kpjs: frozenset[str]
    locale: str


class SubscriberDirectory(Protocol):
    """The subscribed chats (SQL: ``alert_subscription`` joined to ``chat_link``). Raises
    ``DatabaseUnavailable`` when the database fails."""

    async def subscribed(self, kind: str, kpjs: Sequence[str]) -> list[Recipient]:
        """The chats subscribed to ``kind`` and linked to any of ``kpjs`` (one per chat and
        KPJ), in one query."""
        ...

    async def every_subscribed(self, kind: str, after: Recipient | None,
                               limit: int) -> list[Recipient]:
        """Every chat subscribed to ``kind`` with each linked KPJ, ordered, after ``after``."""
        ...

    async def states(self, keys: Sequence[SessionKey]) -> dict[SessionKey, ChatState]:
        """Each chat's :class:`ChatState` (a chat with neither subscription nor link is
        absent), in one or two queries; the locale defaults to ``"id"``."""
        ...


class CursorStore(Protocol):
    """Where the planner keeps its place (SQL: ``alert_cursor``)."""

    async def cursor(self, name: str) -> str | None:
        """The stored value, or ``None``."""
        ...

    async def set_cursor(self, name: str, value: str, at: datetime) -> None:
        """Store ``value`` under ``name``."""
        ...


# ------------------------------------------------------------------------- the queue


class Result(StrEnum):
    """How one delivery ended."""

    SENT = "sent"
    SKIPPED = "skipped"  # unsubscribed, unlinked or erased between planning and sending
    BLOCKED = "blocked"  # the member blocked the bot or cannot be reached on the platform
    FAILED = "failed"  # gave up after the allowed attempts


@dataclass(frozen=True, slots=True)
class Delivery:
    """A job taken from the queue: its queue id, the job and how many times it was handed
    out (1 the first time; a job reclaimed from a dead worker counts up)."""

    id: str
    job: AlertJob
    attempts: int
    planned_at: float = 0.0  # epoch seconds when it was enqueued


class AlertQueue(Protocol):
    """A durable queue of alert jobs with an idempotency mark per job identity (chat, kind,
    period, KPJ), shared by every process. Raises ``StoreUnavailable`` when the store fails.

    The marks make delivery exactly-once whatever the retries: :meth:`enqueue` appends only
    identities never planned; :meth:`begin` lets through only jobs not finished (a job handed
    out twice, by a reclaim after a worker died, is sent by one); :meth:`finish` records the
    end and removes the job."""

    async def enqueue(self, jobs: Sequence[AlertJob]) -> int:
        """Mark and append the jobs whose identity was never planned, atomically per job;
        returns how many were appended."""
        ...

    async def unplanned(self, jobs: Sequence[AlertJob]) -> list[AlertJob]:
        """The jobs :meth:`enqueue` would append (nothing is written: ``notify --dry-run``)."""
        ...

    async def receive(self, consumer: str, count: int, block: float) -> list[Delivery]:
        """Up to ``count`` jobs never handed out, waiting up to ``block`` seconds."""
        ...

    async def reclaim(self, consumer: str, idle: float, count: int) -> list[Delivery]:
        """Up to ``count`` jobs handed out to any consumer more than ``idle`` seconds ago and
        not finished (their worker died or hung), now handed to ``consumer``."""
        ...

    async def begin(self, consumer: str, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Mark the deliveries as being sent by ``consumer``; returns those that may be sent.
        A delivery whose identity is already finished is removed and not returned."""
        ...

    async def finish(self, outcomes: Sequence[tuple[Delivery, Result]]) -> None:
        """Record each outcome on its identity's mark, then acknowledge and remove the job."""
        ...

    async def depth(self) -> int:
        """Jobs enqueued and not finished."""
        ...

    async def oldest_age(self, now: float) -> float:
        """Seconds since the oldest unfinished job was enqueued (0 when there is none)."""
        ...

    async def sent_count(self, key: SessionKey) -> int:
        """How many alerts were sent to the chat (kept for the exactly-once marks)."""
        ...

    async def forget(self, key: SessionKey) -> int:
        """Erase the chat's marks (``/hapusdata``); returns how many there were. Its queued
        jobs are skipped when their turn comes (the subscription is gone)."""
        ...


class Pacer(Protocol):
    """Platform pacing shared by every process: at most the platform's rate of alert sends
    per second, counted across processes."""

    async def acquire(self, channel: str) -> None:
        """Wait until one more send on ``channel`` fits under its rate."""
        ...


RATE_DEFAULTS: Mapping[str, float] = {"telegram": 30.0, "whatsapp": 80.0}

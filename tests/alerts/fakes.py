"""Stand-ins for the planner's and workers' ports: a scripted change feed, a directory of
subscribed chats, cursors, an outbox that records what it sends, and a clock."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from alerts.ports import (
    ChangesPage,
    ChatState,
    MissingMembership,
    MissingPage,
    PostedContribution,
    Recipient,
)
from domain.alerts import AlertJob
from flows.types import Reply, SessionKey


class FakeFeed:
    """A change feed over a list: the cursor is the index of the next item as text."""

    def __init__(self) -> None:
        self.posted: list[PostedContribution] = []
        self.missing: dict[str, list[MissingMembership]] = {}
        self.rates: dict[int, Decimal] = {}
        self.changes_calls = 0
        self.missing_asked: list[str] = []

    def post(self, kpj: str, period: str, paid_on: date, *, segment: str = "PU",
             employer: int = 250_046, employee: int = 135_160) -> None:
        """Append a contribution to the feed."""
        self.posted.append(PostedContribution(kpj, period, segment, employer, employee, paid_on))

    async def contribution_changes(self, since: str = "", limit: int = 1000) -> ChangesPage:
        """The items after index ``since``."""
        self.changes_calls += 1
        start = int(since or 0)
        items = tuple(self.posted[start:start + limit])
        end = start + len(items)
        return ChangesPage(items, str(end) if end else since, end < len(self.posted))

    async def missing_contributions(self, period: str, *, after: str = "",
                                    limit: int = 1000) -> MissingPage:
        """The memberships listed for ``period``, KPJ after ``after``."""
        self.missing_asked.append(period)
        rows = sorted((m for m in self.missing.get(period, []) if m.kpj > after),
                      key=lambda m: m.kpj)
        page = tuple(rows[:limit])
        return MissingPage(page, page[-1].kpj if len(rows) > limit else None)

    async def development_rates(self) -> Mapping[int, Decimal]:
        """The configured rates."""
        return dict(self.rates)


@dataclass
class Chat:
    """A chat of the fake directory."""

    kinds: set[str]
    kpjs: set[str]
    locale: str = "id"


class FakeDirectory:
    """Subscribed chats in a dict."""

    def __init__(self) -> None:
        self.chats: dict[SessionKey, Chat] = {}
        self.subscribed_calls = 0
        self.states_calls = 0

    def add(self, channel: str, chat_id: str, kpjs: Sequence[str],
            kinds: Sequence[str] = ("posted", "missing", "development"),
            locale: str = "id") -> SessionKey:
        """Link and subscribe a chat."""
        key = SessionKey(channel, chat_id)
        self.chats[key] = Chat(set(kinds), set(kpjs), locale)
        return key

    def _recipients(self, kind: str) -> list[Recipient]:
        return sorted(Recipient(key.channel, key.chat_id, kpj)
                      for key, chat in self.chats.items() if kind in chat.kinds
                      for kpj in chat.kpjs)

    async def subscribed(self, kind: str, kpjs: Sequence[str]) -> list[Recipient]:
        """The recipients of ``kind`` linked to any of ``kpjs``."""
        self.subscribed_calls += 1
        wanted = set(kpjs)
        return [r for r in self._recipients(kind) if r.kpj in wanted]

    async def every_subscribed(self, kind: str, after: Recipient | None,
                               limit: int) -> list[Recipient]:
        """Every recipient of ``kind`` after ``after``."""
        return [r for r in self._recipients(kind) if after is None or r > after][:limit]

    async def states(self, keys: Sequence[SessionKey]) -> dict[SessionKey, ChatState]:
        """The chats' states."""
        self.states_calls += 1
        return {key: ChatState(frozenset(chat.kinds), frozenset(chat.kpjs), chat.locale)
                for key in keys if (chat := self.chats.get(key)) is not None}


class FakeCursors:
    """Cursors in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def cursor(self, name: str) -> str | None:
        """The stored value."""
        return self.values.get(name)

    async def set_cursor(self, name: str, value: str, at: datetime) -> None:
        """Store it."""
        self.values[name] = value


@dataclass
class FakeOutbox:
    """Records each delivery; chats in ``blocked`` are unreachable; ``failures`` makes the
    next sends raise; ``delay`` makes each send take that long."""

    sent: list[tuple[SessionKey, str]] = field(default_factory=list)
    blocked: set[SessionKey] = field(default_factory=set)
    failures: int = 0
    delay: float = 0.0
    in_flight: set[SessionKey] = field(default_factory=set)
    overlapped: bool = False
    peak: int = 0

    async def deliver(self, key: SessionKey, replies: list[Reply]) -> bool:
        """Send (record) the replies."""
        if key in self.in_flight:
            self.overlapped = True
        self.in_flight.add(key)
        self.peak = max(self.peak, len(self.in_flight))
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.failures:
                self.failures -= 1
                raise ConnectionError("the platform is down")
            if key in self.blocked:
                return False
            self.sent.extend((key, reply.text) for reply in replies)
            return True
        finally:
            self.in_flight.discard(key)


def render(job: AlertJob, locale: str) -> list[Reply]:
    """One reply naming the job's identity (the tests read it back)."""
    return [Reply(f"{job.kind.value} {job.period} {job.kpj}", locale=locale)]


class FakeClock:
    """A settable clock; ``sleep`` advances it instead of waiting."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        """Advance instead of sleeping (and let other tasks run)."""
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


def at(text: str) -> datetime:
    """An aware datetime from ISO text (UTC when it names no offset)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

